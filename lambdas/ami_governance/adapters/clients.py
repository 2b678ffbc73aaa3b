"""boto3 clients, one per (service, region), with botocore's retry modes instead of hand loops.

`client("ec2", region)` is typed as the service's own client (`mypy_boto3_ec2.EC2Client`, ...), so strict mypy
checks every call's parameters and every response key. The stubs are imported for the type checker only: the
Lambda runtime has no mypy_boto3 packages, and importing them would cost cold-start time for nothing.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Literal, overload

import boto3
from botocore.config import Config

from ami_governance.observability import warn_if_model_lacks

if TYPE_CHECKING:
    from botocore.client import BaseClient
    from mypy_boto3_autoscaling import AutoScalingClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_ssm import SSMClient

# The services the adapters talk to; a new one gets its overload below (and its stubs in requirements-dev.txt).
Service = Literal["autoscaling", "dynamodb", "ec2", "s3", "sns", "sqs", "ssm"]

# "standard" retries throttling (RequestLimitExceeded, Throttling) and 5xx with jittered backoff.
# The Lambda's own retries and the DLQ take over after the last attempt.
RETRY_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    connect_timeout=5,
    read_timeout=20,
    user_agent_extra="ami-governance",
)

# The report's listings: "adaptive" also paces the client itself once EC2 throttles it (a token bucket that
# shrinks on throttling errors), so a scan of several regions at once backs off instead of spending its retries.
ADAPTIVE_RETRY_CONFIG = Config(
    retries={"mode": "adaptive", "max_attempts": 10},
    connect_timeout=5,
    read_timeout=30,
    user_agent_extra="ami-governance",
)


@cache
def _session() -> boto3.session.Session:
    # One session for all clients: botocore loads each service model once per session.
    return boto3.session.Session()


@overload
def client(service: Literal["autoscaling"], region: str, *, adaptive: bool = False) -> AutoScalingClient: ...
@overload
def client(service: Literal["dynamodb"], region: str, *, adaptive: bool = False) -> DynamoDBClient: ...
@overload
def client(service: Literal["ec2"], region: str, *, adaptive: bool = False) -> EC2Client: ...
@overload
def client(service: Literal["s3"], region: str, *, adaptive: bool = False) -> S3Client: ...
@overload
def client(service: Literal["sns"], region: str, *, adaptive: bool = False) -> SNSClient: ...
@overload
def client(service: Literal["sqs"], region: str, *, adaptive: bool = False) -> SQSClient: ...
@overload
def client(service: Literal["ssm"], region: str, *, adaptive: bool = False) -> SSMClient: ...
def client(service: Service, region: str, *, adaptive: bool = False) -> BaseClient:
    """A cached client: a warm Lambda re-uses connections to every region it has talked to. `adaptive`: the
    report's client, with adaptive retries (a separate client: the mode is fixed when a client is made)."""
    return _cached_client(service, region, adaptive)


@cache
def _cached_client(service: Service, region: str, adaptive: bool = False) -> BaseClient:
    config = ADAPTIVE_RETRY_CONFIG if adaptive else RETRY_CONFIG
    created: BaseClient = _session().client(service, region_name=region, config=config)
    if service == "ec2" and service not in _models_checked:
        # Once per container, on the model the first EC2 client has just loaded: a few dictionary lookups.
        _models_checked.add(service)
        warn_if_model_lacks(created.meta.service_model)
    return created


_models_checked: set[str] = set()


def reset_clients() -> None:
    """Forget cached clients (tests switch AWS backends and credentials between cases)."""
    _cached_client.cache_clear()
