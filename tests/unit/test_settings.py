"""Each Lambda's settings: read from the environment its template gives it, checked when the handler module is
imported (the cold start), a missing or malformed variable named."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator

import pytest

from ami_governance.settings import (
    CleanupSettings,
    CopySettings,
    EnforceSettings,
    FunctionSettings,
    ReplicateSettings,
    SettingsError,
    forget_settings,
)

TOPIC = "arn:aws:sns:eu-west-1:111122223333:ami-governance-notifications"
QUEUE = "https://sqs.eu-west-1.amazonaws.com/111122223333/ami-governance-copy-jobs"
COMMON = {
    "POLICY_PARAMETER_NAME": "/ami-governance/policy",
    "INVENTORY_TABLE_NAME": "ami-governance-inventory",
    "NOTIFICATION_TOPIC_ARN": TOPIC,
    "AWS_REGION": "eu-west-1",
}
# What the functions EventBridge invokes are told besides: where each event's handling is recorded.
IDEMPOTENCY = {"IDEMPOTENCY_TABLE_NAME": "ami-governance-idempotency"}
COMMON_ONLY = [EnforceSettings, CleanupSettings, CopySettings]
EVENT_DRIVEN = {EnforceSettings, CleanupSettings}
HANDLERS = {
    "handlers.enforce": EnforceSettings,
    "handlers.cleanup": CleanupSettings,
    "handlers.replicate": ReplicateSettings,
    "handlers.copy": CopySettings,
}


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    forget_settings()
    yield
    forget_settings()


def cold_start(monkeypatch: pytest.MonkeyPatch, module: str) -> None:
    """Make the next import of `module` run it again, as a new container does; the test's end restores it."""
    package, _, name = module.rpartition(".")
    monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.delattr(importlib.import_module(package), name, raising=False)


@pytest.mark.parametrize("model", COMMON_ONLY)
def test_a_function_with_the_common_environment_gets_its_settings(model: type[FunctionSettings]) -> None:
    # Given the environment the template gives the enforce, cleanup and copy functions, and the runtime's region
    # When their settings are read
    settings = model.from_environment({**COMMON, **IDEMPOTENCY})

    # Then each has the policy, inventory, topic and region, and nothing else (enforce and cleanup: their
    # idempotency table too)
    assert type(settings) is model
    expected = {
        "policy_parameter_name": "/ami-governance/policy",
        "inventory_table_name": "ami-governance-inventory",
        "notification_topic_arn": TOPIC,
        "region": "eu-west-1",
    }
    if model in EVENT_DRIVEN:
        expected["idempotency_table_name"] = "ami-governance-idempotency"
    assert vars(settings) == expected


def test_the_replicate_function_gets_the_copy_queue_too() -> None:
    # Given the replicate function's environment: the common one and the copy queue's URL
    # When its settings are read
    settings = ReplicateSettings.from_environment({**COMMON, **IDEMPOTENCY, "COPY_QUEUE_URL": QUEUE})

    # Then it knows where to send copy jobs, besides the common settings
    assert settings.copy_queue_url == QUEUE
    assert settings.notification_topic_arn == TOPIC
    assert repr(settings).startswith("ReplicateSettings(policy_parameter_name='/ami-governance/policy', ")


def test_the_replicate_function_requires_the_copy_queue() -> None:
    # Given the common environment without COPY_QUEUE_URL
    # When the replicate function's settings are read, Then they fail, naming the variable
    with pytest.raises(SettingsError, match=r"^missing environment variables: COPY_QUEUE_URL$"):
        ReplicateSettings.from_environment({**COMMON, **IDEMPOTENCY})


def test_the_copy_function_does_not_read_the_copy_queue() -> None:
    # Given the copy function's environment, with a COPY_QUEUE_URL that is not even a URL
    # When its settings are read, Then they load: it answers to the queue each record names, not to this one
    settings = CopySettings.from_environment({**COMMON, "COPY_QUEUE_URL": "not a URL"})

    assert not hasattr(settings, "copy_queue_url")


@pytest.mark.parametrize("model", [*COMMON_ONLY, ReplicateSettings])
@pytest.mark.parametrize("variable", list(COMMON))
def test_every_function_names_a_missing_or_empty_common_variable(model: type[FunctionSettings], variable: str) -> None:
    # Given a function's environment with one common variable missing, or set but empty
    environment = {**COMMON, **IDEMPOTENCY, "COPY_QUEUE_URL": QUEUE}
    for broken in ({k: v for k, v in environment.items() if k != variable}, {**environment, variable: ""}):
        # When its settings are read, Then they fail, naming that variable
        with pytest.raises(SettingsError, match=rf"^missing environment variables: {variable}$"):
            model.from_environment(broken)


def test_every_missing_variable_is_named_at_once() -> None:
    # Given an environment with only the region
    # When the replicate settings are read, Then one error names all the others, in the model's order
    with pytest.raises(SettingsError) as raised:
        ReplicateSettings.from_environment({"AWS_REGION": "eu-west-1"})

    assert str(raised.value) == (
        "missing environment variables: POLICY_PARAMETER_NAME, INVENTORY_TABLE_NAME, NOTIFICATION_TOPIC_ARN, "
        "IDEMPOTENCY_TABLE_NAME, COPY_QUEUE_URL"
    )


@pytest.mark.parametrize("model", [*COMMON_ONLY, ReplicateSettings])
@pytest.mark.parametrize(
    "topic",
    [
        "ami-governance-notifications",  # a name, not an ARN
        "arn:aws:sqs:eu-west-1:111122223333:ami-governance-notifications",  # another service's ARN
        "arn:aws:sns:eu-west-1:111122223333",  # no topic name
        "arn:aws:sns::111122223333:ami-governance-notifications",  # no region (the notifier's client needs it)
    ],
)
def test_a_malformed_topic_arn_is_named(model: type[FunctionSettings], topic: str) -> None:
    # Given a function's environment whose topic is not an SNS topic ARN
    environment = {**COMMON, **IDEMPOTENCY, "COPY_QUEUE_URL": QUEUE, "NOTIFICATION_TOPIC_ARN": topic}

    # When its settings are read, Then they fail, naming the variable and the value
    with pytest.raises(SettingsError, match=r"^NOTIFICATION_TOPIC_ARN is not an SNS topic ARN: "):
        model.from_environment(environment)


@pytest.mark.parametrize(
    "url",
    [
        "ami-governance-copy-jobs",  # a queue name
        "arn:aws:sqs:eu-west-1:111122223333:ami-governance-copy-jobs",  # the queue's ARN
        "https://sqs.eu-west-1.amazonaws.com/ami-governance-copy-jobs",  # no account
        "https://sqs.eu-west-1.amazonaws.com/111122223333/",  # no queue name
    ],
)
def test_a_malformed_copy_queue_url_is_named(url: str) -> None:
    # Given the replicate function's environment whose copy queue is not a queue URL
    # When its settings are read, Then they fail, naming the variable and the value
    with pytest.raises(SettingsError, match=r"^COPY_QUEUE_URL is not an SQS queue URL: "):
        ReplicateSettings.from_environment({**COMMON, **IDEMPOTENCY, "COPY_QUEUE_URL": url})


def test_an_emulators_plain_http_queue_url_is_accepted() -> None:
    settings = ReplicateSettings.from_environment(
        {**COMMON, **IDEMPOTENCY, "COPY_QUEUE_URL": "http://127.0.0.1:4566/111122223333/q"}
    )

    assert settings.copy_queue_url == "http://127.0.0.1:4566/111122223333/q"


def test_settings_are_read_once_per_container_until_forgotten(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the enforce settings loaded once
    monkeypatch.setenv("INVENTORY_TABLE_NAME", "first-table")
    first = EnforceSettings.load()

    # When the environment changes (only a test does that), Then a warm container keeps what it read
    monkeypatch.setenv("INVENTORY_TABLE_NAME", "second-table")
    assert EnforceSettings.load() is first
    # And each function's model is loaded on its own
    assert CleanupSettings.load().inventory_table_name == "second-table"

    # And after forget_settings (wiring.reset) the environment is read again
    forget_settings()
    assert EnforceSettings.load().inventory_table_name == "second-table"


@pytest.mark.parametrize(("module", "model"), HANDLERS.items())
def test_importing_a_handler_loads_its_settings(
    monkeypatch: pytest.MonkeyPatch, module: str, model: type[FunctionSettings]
) -> None:
    # Given a fresh import of the handler module (a cold start), in the local Lambda environment
    cold_start(monkeypatch, module)
    monkeypatch.setenv("INVENTORY_TABLE_NAME", "at-cold-start")

    # When it is imported, and the environment changes afterwards
    importlib.import_module(module)
    monkeypatch.setenv("INVENTORY_TABLE_NAME", "later")

    # Then its invocations use the settings read at import
    assert model.load().inventory_table_name == "at-cold-start"


@pytest.mark.parametrize(
    ("module", "variable"),
    [
        ("handlers.enforce", "INVENTORY_TABLE_NAME"),
        ("handlers.cleanup", "POLICY_PARAMETER_NAME"),
        ("handlers.replicate", "COPY_QUEUE_URL"),
        ("handlers.copy", "NOTIFICATION_TOPIC_ARN"),
        ("handlers.enforce", "IDEMPOTENCY_TABLE_NAME"),
        ("handlers.cleanup", "IDEMPOTENCY_TABLE_NAME"),
        ("handlers.replicate", "IDEMPOTENCY_TABLE_NAME"),
    ],
)
def test_a_handler_whose_variable_is_missing_fails_at_import_naming_it(
    monkeypatch: pytest.MonkeyPatch, module: str, variable: str
) -> None:
    # Given a function deployed without one of the variables it needs
    monkeypatch.delenv(variable)
    cold_start(monkeypatch, module)

    # When its handler module is imported (the cold start), Then the import fails, naming the variable
    with pytest.raises(SettingsError, match=rf"^missing environment variables: {variable}$"):
        importlib.import_module(module)


@pytest.mark.parametrize("model", [EnforceSettings, CleanupSettings, ReplicateSettings])
@pytest.mark.parametrize(
    "table", ["arn:aws:dynamodb:eu-west-1:111122223333:table/idempotency", "ab", "idem potency", f"t{'x' * 255}"]
)
def test_an_idempotency_table_that_is_not_a_table_name_is_named(model: type[FunctionSettings], table: str) -> None:
    # Given an event-driven function's environment whose idempotency table is not a DynamoDB table name (an ARN,
    # too short, a space, too long)
    environment = {**COMMON, "COPY_QUEUE_URL": QUEUE, "IDEMPOTENCY_TABLE_NAME": table}

    # When its settings are read, Then they fail, naming the variable and the value
    with pytest.raises(SettingsError, match=rf"^IDEMPOTENCY_TABLE_NAME is not a DynamoDB table name: {table!r}$"):
        model.from_environment(environment)
