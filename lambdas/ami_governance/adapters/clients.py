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
    created = _session().client(service, region_name=region, config=RETRY_CONFIG)  # type: ignore[call-overload]
    if service == "ec2" and service not in _models_checked:
        _models_checked.add(service)
        _check_ec2_model(created.meta.service_model)
    return created


# Once per container, on the model the first EC2 client has just loaded: the check costs a few dictionary lookups.
_models_checked: set[str] = set()


def _check_ec2_model(service_model: Any) -> None:
    from ami_governance.observability import warn_if_model_lacks

    warn_if_model_lacks(service_model)


def reset_clients() -> None:
    """Forget cached clients (tests switch AWS backends and credentials between cases)."""
    client.cache_clear()
