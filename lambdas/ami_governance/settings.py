"""Lambda settings from environment variables, checked once at cold start (fail fast, name the variable)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache


class SettingsError(RuntimeError):
    pass


@dataclass(frozen=True)
class Settings:
    policy_parameter_name: str
    inventory_table_name: str
    notification_topic_arn: str
    region: str
    # The replicate Lambda's queue of copy jobs (one message per source AMI and target region); unset elsewhere.
    copy_queue_url: str | None = None

    @classmethod
    def from_environment(cls) -> Settings:
        missing = [
            name
            for name in ("POLICY_PARAMETER_NAME", "INVENTORY_TABLE_NAME", "NOTIFICATION_TOPIC_ARN", "AWS_REGION")
            if not os.environ.get(name)
        ]
        if missing:
            raise SettingsError(f"missing environment variables: {', '.join(missing)}")
        topic = os.environ["NOTIFICATION_TOPIC_ARN"]
        if not topic.startswith("arn:") or topic.count(":") < 5:
            raise SettingsError(f"NOTIFICATION_TOPIC_ARN is not an SNS topic ARN: {topic!r}")
        return cls(
            policy_parameter_name=os.environ["POLICY_PARAMETER_NAME"],
            inventory_table_name=os.environ["INVENTORY_TABLE_NAME"],
            notification_topic_arn=topic,
            region=os.environ["AWS_REGION"],
            copy_queue_url=os.environ.get("COPY_QUEUE_URL") or None,
        )


@cache
def settings() -> Settings:
    return Settings.from_environment()
