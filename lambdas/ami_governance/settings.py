"""Each Lambda's settings, from the environment its template gives it (stacks/home_stack.py) and the runtime's.

A handler loads its model when its module is imported, at the cold start: a function deployed without a variable,
or with a malformed one, fails its init with the variable named, instead of failing at the first event that needs
it. Only `os.environ` is read here, and nothing heavier than the standard library is imported: this runs in every
cold start before any event.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Self


class SettingsError(RuntimeError):
    pass


def _variable(name: str) -> Any:
    return field(metadata={"variable": name})


@dataclass(frozen=True)
class FunctionSettings:
    """What every governed function is told: the policy, the inventory and the notifications (the template's
    common environment), and its region (the runtime's AWS_REGION)."""

    policy_parameter_name: str = _variable("POLICY_PARAMETER_NAME")
    inventory_table_name: str = _variable("INVENTORY_TABLE_NAME")
    notification_topic_arn: str = _variable("NOTIFICATION_TOPIC_ARN")
    region: str = _variable("AWS_REGION")

    def __post_init__(self) -> None:
        _check_arn(self.notification_topic_arn, "sns", "NOTIFICATION_TOPIC_ARN", "an SNS topic ARN")

    @classmethod
    def variables(cls) -> dict[str, str]:
        """Field name -> the environment variable it is read from."""
        return {spec.name: spec.metadata["variable"] for spec in fields(cls)}

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Self:
        """The settings in `environ`; SettingsError names every variable that is missing (or empty) at once."""
        variables = cls.variables()
        missing = [variable for variable in variables.values() if not environ.get(variable)]
        if missing:
            raise SettingsError(f"missing environment variables: {', '.join(missing)}")
        return cls(**{name: environ[variable] for name, variable in variables.items()})

    @classmethod
    def load(cls) -> Self:
        """This function's settings, read from the environment once per container (again after `forget_settings`)."""
        loaded = _loaded.get(cls)
        if isinstance(loaded, cls):
            return loaded
        fresh = cls.from_environment()
        _loaded[cls] = fresh
        return fresh


@dataclass(frozen=True)
class EnforceSettings(FunctionSettings):
    """The enforce Lambda: the common settings only."""


@dataclass(frozen=True)
class CleanupSettings(FunctionSettings):
    """The cleanup Lambda: the common settings only."""


@dataclass(frozen=True)
class ReplicateSettings(FunctionSettings):
    """The replicate Lambda: the common settings and the queue it sends one copy job to per source AMI and region."""

    copy_queue_url: str = _variable("COPY_QUEUE_URL")

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_queue_url(self.copy_queue_url, "COPY_QUEUE_URL")


@dataclass(frozen=True)
class CopySettings(FunctionSettings):
    """The copy Lambda: the common settings only. It answers to the queue each SQS record names (its event source),
    so it is not told the copy queue's URL."""


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
