"""boto3 clients for the emulator's own endpoint, one per (service, region), from one session (one model load).

Typed per service for the type checker (the mypy_boto3 stubs, imported only while type-checking).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, overload

import boto3

if TYPE_CHECKING:
    from botocore.client import BaseClient
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_ssm import SSMClient

# The services the deployer and the router call; a new one gets its overload below (and its stubs pinned).
Service = Literal["cloudwatch", "dynamodb", "events", "iam", "kms", "logs", "rbin", "s3", "sns", "sqs", "ssm"]


class EmulatorClients:
    def __init__(self, endpoint_url: str, access_key: str) -> None:
        self.endpoint_url = endpoint_url
        self.access_key = access_key  # names the principal in the emulator's CloudTrail records
        self._session = boto3.session.Session()
        self._clients: dict[tuple[str, str], BaseClient] = {}

    @overload
    def client(self, service: Literal["cloudwatch"], region: str) -> CloudWatchClient: ...
    @overload
    def client(self, service: Literal["dynamodb"], region: str) -> DynamoDBClient: ...
    @overload
    def client(self, service: Literal["events"], region: str) -> EventBridgeClient: ...
    @overload
    def client(self, service: Literal["iam"], region: str) -> IAMClient: ...
    @overload
    def client(self, service: Literal["kms"], region: str) -> KMSClient: ...
    @overload
    def client(self, service: Literal["logs"], region: str) -> CloudWatchLogsClient: ...
    # No stubs are pinned for rbin (one CreateRule call, by the deployer): its client is untyped.
    @overload
    def client(self, service: Literal["rbin"], region: str) -> Any: ...
    @overload
    def client(self, service: Literal["s3"], region: str) -> S3Client: ...
    @overload
    def client(self, service: Literal["sns"], region: str) -> SNSClient: ...
    @overload
    def client(self, service: Literal["sqs"], region: str) -> SQSClient: ...
    @overload
    def client(self, service: Literal["ssm"], region: str) -> SSMClient: ...
    def client(self, service: Service, region: str) -> BaseClient:
        key = (service, region)
        if key not in self._clients:
            self._clients[key] = self._session.client(
                service,
                region_name=region,
                endpoint_url=self.endpoint_url,
                aws_access_key_id=self.access_key,
                aws_secret_access_key="emulator",
            )
        return self._clients[key]
