"""Each Lambda's settings, from the environment its template gives it (stacks/home_stack.py) and the runtime's.

A handler loads its model when its module is imported, at the cold start: a function deployed without a variable,
or with a malformed one, fails its init with the variable named, instead of failing at the first event that needs
it. Only `os.environ` is read here, and nothing heavier than the standard library is imported: this runs in every
cold start before any event.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import ClassVar, Self


class SettingsError(RuntimeError):
    pass


class FunctionSettings:
    """What every governed function is told: the policy, the inventory and the notifications (the template's
    common environment), and its region (the runtime's AWS_REGION).

    Plain classes rather than dataclasses: generating a dataclass's methods costs about a millisecond per class,
    paid by every cold start.
    """

    # Attribute -> the environment variable it is read from; a function's model adds its own.
    VARIABLES: ClassVar[Mapping[str, str]] = {
        "policy_parameter_name": "POLICY_PARAMETER_NAME",
        "inventory_table_name": "INVENTORY_TABLE_NAME",
        "notification_topic_arn": "NOTIFICATION_TOPIC_ARN",
        "region": "AWS_REGION",
    }

    policy_parameter_name: str
    inventory_table_name: str
    notification_topic_arn: str
    region: str

    def __init__(self, **values: str) -> None:
        if values.keys() != self.VARIABLES.keys():
            raise TypeError(f"{type(self).__name__} takes {', '.join(self.VARIABLES)}, not {', '.join(values)}")
        self.__dict__.update(values)
        self.check()

    def check(self) -> None:
        """Raise SettingsError, naming the variable, for a value of the wrong shape."""
        _check_arn(self.notification_topic_arn, "sns", "NOTIFICATION_TOPIC_ARN", "an SNS topic ARN")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{name}={value!r}' for name, value in vars(self).items())})"

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Self:
        """The settings in `environ`; SettingsError names every variable that is missing (or empty) at once."""
        missing = [variable for variable in cls.VARIABLES.values() if not environ.get(variable)]
        if missing:
            raise SettingsError(f"missing environment variables: {', '.join(missing)}")
        return cls(**{name: environ[variable] for name, variable in cls.VARIABLES.items()})

    @classmethod
    def load(cls) -> Self:
        """This function's settings, read from the environment once per container (again after `forget_settings`)."""
        loaded = _loaded.get(cls)
        if isinstance(loaded, cls):
            return loaded
        fresh = cls.from_environment()
        _loaded[cls] = fresh
        return fresh


class EventDrivenSettings(FunctionSettings):
    """A function EventBridge invokes with one event at a time: the common settings and the table where each
    event's handling is recorded once (adapters/idempotency.py), so that a redelivered event is answered from it."""

    VARIABLES: ClassVar[Mapping[str, str]] = {
        **FunctionSettings.VARIABLES,
        "idempotency_table_name": "IDEMPOTENCY_TABLE_NAME",
    }

    idempotency_table_name: str

    def check(self) -> None:
        super().check()
        _check_table_name(self.idempotency_table_name, "IDEMPOTENCY_TABLE_NAME")


class EnforceSettings(EventDrivenSettings):
    """The enforce Lambda: the common settings and its idempotency table."""


class CleanupSettings(EventDrivenSettings):
    """The cleanup Lambda: the common settings and its idempotency table."""


class ReplicateSettings(EventDrivenSettings):
    """The replicate Lambda: the common settings, its idempotency table and the queue it sends one copy job to per
    source AMI and region."""

    VARIABLES: ClassVar[Mapping[str, str]] = {**EventDrivenSettings.VARIABLES, "copy_queue_url": "COPY_QUEUE_URL"}

    copy_queue_url: str

    def check(self) -> None:
        super().check()
        _check_queue_url(self.copy_queue_url, "COPY_QUEUE_URL")


class CopySettings(FunctionSettings):
    """The copy Lambda: the common settings only. It answers to the queue each SQS record names (its event source),
    so it is not told the copy queue's URL. No idempotency table: a redelivered copy job is harmless by design (the
    region's claim in the lineage and CopyImage's client token; adapters/idempotency.py says why)."""


class ReportSettings(FunctionSettings):
    """The report Lambda: the common settings and the bucket it publishes each run's report to. No idempotency
    table: every run is a fresh report, and the sweep re-reads AWS before it acts (adapters/idempotency.py)."""

    VARIABLES: ClassVar[Mapping[str, str]] = {
        **FunctionSettings.VARIABLES,
        "reports_bucket_name": "REPORTS_BUCKET_NAME",
    }

    reports_bucket_name: str

    def check(self) -> None:
        super().check()
        _check_bucket_name(self.reports_bucket_name, "REPORTS_BUCKET_NAME")


_loaded: dict[type[FunctionSettings], FunctionSettings] = {}


def forget_settings() -> None:
    """Forget the loaded settings (tests change the environment between cases)."""
    _loaded.clear()


def _check_arn(value: str, service: str, variable: str, what: str) -> None:
    # arn:<partition>:<service>:<region>:<account>:<resource>
    parts = value.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != service or not all(parts[1:2] + parts[3:]):
        raise SettingsError(f"{variable} is not {what}: {value!r}")


def _check_queue_url(value: str, variable: str) -> None:
    # https://sqs.<region>.<domain>/<account>/<name>; an emulator's endpoint may be plain http.
    scheme, _, rest = value.partition("://")
    host, _, path = rest.partition("/")
    segments = path.split("/")
    if scheme not in ("https", "http") or not host or len(segments) != 2 or not all(segments):
        raise SettingsError(f"{variable} is not an SQS queue URL: {value!r}")


# 3-255 characters: letters, digits, underscores, hyphens and dots (DynamoDB developer guide, "Supported data
# types and naming rules"). An ARN is the likely mistake.
_TABLE_NAME_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


def _check_table_name(value: str, variable: str) -> None:
    if not 3 <= len(value) <= 255 or not set(value) <= _TABLE_NAME_CHARACTERS:
        raise SettingsError(f"{variable} is not a DynamoDB table name: {value!r}")


# 3-63 characters: lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit
# (S3 User Guide, "General purpose bucket naming rules"). A whole ARN, or an s3:// URL, is a common mistake.
_BUCKET_NAME_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-")


def _check_bucket_name(value: str, variable: str) -> None:
    if (
        not 3 <= len(value) <= 63
        or not set(value) <= _BUCKET_NAME_CHARACTERS
        or not (value[0].isalnum() and value[-1].isalnum())
    ):
        raise SettingsError(f"{variable} is not an S3 bucket name: {value!r}")
