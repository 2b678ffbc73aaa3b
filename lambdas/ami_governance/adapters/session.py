"""The operator CLI's AWS access: clients from one boto3 session of the caller's credentials.

The Lambdas use `clients.client()`, cached per process on the default session (their role). An operator's run names a
profile and, for the local emulator, an endpoint URL: every client of that run comes from here, with the report
Lambda's adaptive retries (a run is mostly the report's listings). Clients are created under a lock: the report
scans regions on a thread pool, and a botocore session is not safe to create clients from concurrently.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, overload

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ProfileNotFound

from ami_governance.adapters.clients import ADAPTIVE_RETRY_CONFIG
from ami_governance.adapters.errors import error_code

if TYPE_CHECKING:
    from botocore.client import BaseClient
    from mypy_boto3_autoscaling import AutoScalingClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ssm import SSMClient

    from ami_governance.models.policy import GovernancePolicy

SessionService = Literal["autoscaling", "dynamodb", "ec2", "ssm", "sts"]

# What AWS (or botocore) answers when the credentials are missing, wrong or expired.
CREDENTIAL_ERROR_CODES = frozenset(
    {
        "AuthFailure",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "UnrecognizedClientException",
    }
)


class SessionError(Exception):
    """The session cannot be used: no such profile, no credentials, or AWS refuses them. One line, for stderr."""


class OperatorSession:
    def __init__(
        self, profile: str | None = None, endpoint_url: str | None = None, config: Config | None = None
    ) -> None:
        """`config`: botocore's client configuration; by default the report Lambda's adaptive retries."""
        try:
            self._session = boto3.session.Session(profile_name=profile)
        except ProfileNotFound as error:
            raise SessionError(str(error)) from None
        self.profile = profile
        self.endpoint_url = endpoint_url
        self._config = config or ADAPTIVE_RETRY_CONFIG
        self._clients: dict[tuple[str, str], BaseClient] = {}
        self._lock = threading.Lock()

    @property
    def region_name(self) -> str | None:
        """The profile's (or AWS_DEFAULT_REGION's) region, if any."""
        return self._session.region_name

    def register(self, event_name: str, handler: Callable[..., Any]) -> None:
        """A botocore event handler on every client made from now on (the benchmark counts calls this way)."""
        self._session.events.register(event_name, handler)

    @overload
    def client(self, service: Literal["autoscaling"], region: str) -> AutoScalingClient: ...
    @overload
    def client(self, service: Literal["dynamodb"], region: str) -> DynamoDBClient: ...
    @overload
    def client(self, service: Literal["ec2"], region: str) -> EC2Client: ...
    @overload
    def client(self, service: Literal["ssm"], region: str) -> SSMClient: ...
    # No stubs are pinned for STS (one GetCallerIdentity a run): its client is untyped.
    @overload
    def client(self, service: Literal["sts"], region: str) -> Any: ...
    def client(self, service: SessionService, region: str) -> BaseClient:
        key = (service, region)
        with self._lock:
            if key not in self._clients:
                self._clients[key] = self._session.client(
                    service, region_name=region, endpoint_url=self.endpoint_url, config=self._config
                )
            return self._clients[key]

    def account_id(self, region: str) -> str:
        """The caller's account (STS GetCallerIdentity): also the check that the credentials work."""
        try:
            return str(self.client("sts", region).get_caller_identity()["Account"])
        except NoCredentialsError:
            raise SessionError(
                "no AWS credentials found (give --profile, or set AWS_ACCESS_KEY_ID / AWS_PROFILE)"
            ) from None
        except ClientError as error:
            raise SessionError(f"AWS refused the credentials: {_describe(error)}") from None
        except BotoCoreError as error:
            raise SessionError(f"cannot reach AWS STS in {region}: {error}") from None

    def policy_parameter(self, name: str, region: str) -> GovernancePolicy:
        """The deployed policy: the JSON document the stack stores in its SSM parameter, validated."""
        from ami_governance.models.policy import PolicyError, parse_policy

        try:
            raw = self.client("ssm", region).get_parameter(Name=name)["Parameter"].get("Value", "")
        except ClientError as error:
            if error_code(error) in CREDENTIAL_ERROR_CODES:
                raise SessionError(f"AWS refused the credentials: {_describe(error)}") from None
            raise PolicyError(f"{name} ({region}): cannot read the policy parameter: {_describe(error)}") from None
        except NoCredentialsError:
            raise SessionError("no AWS credentials found (give --profile, or set AWS_ACCESS_KEY_ID)") from None
        except BotoCoreError as error:
            raise PolicyError(f"{name} ({region}): cannot read the policy parameter: {error}") from None
        try:
            document = json.loads(raw)
        except json.JSONDecodeError as error:
            raise PolicyError(f"{name}: the policy parameter is not JSON: {error}") from None
        return parse_policy(document, source=name)


def _describe(error: ClientError) -> str:
    message = str(error.response.get("Error", {}).get("Message", ""))
    return f"{error_code(error)}: {message}" if message else error_code(error)
