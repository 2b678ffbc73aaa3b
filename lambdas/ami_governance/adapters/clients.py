"""boto3 clients, one per (service, region), with botocore's retry modes instead of hand loops."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

# "standard" retries throttling (RequestLimitExceeded, Throttling) and 5xx with jittered backoff.
# The Lambda's own retries and the DLQ take over after the last attempt.
RETRY_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    connect_timeout=5,
    read_timeout=20,
    user_agent_extra="ami-governance",
)


@cache
def _session() -> boto3.session.Session:
    # One session for all clients: botocore loads each service model once per session.
    return boto3.session.Session()


@cache
def client(service: str, region: str) -> Any:
    """A cached client: a warm Lambda re-uses connections to every region it has talked to."""
    return _session().client(service, region_name=region, config=RETRY_CONFIG)  # type: ignore[call-overload]


def reset_clients() -> None:
    """Forget cached clients (tests switch AWS backends and credentials between cases)."""
    client.cache_clear()
