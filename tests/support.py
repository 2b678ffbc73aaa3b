"""Test and benchmark helpers that are not fixtures."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import botocore.client


class ApiCallRecorder:
    """Records every AWS API call made through botocore, as (service, operation) pairs, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def by_operation(self) -> Counter[str]:
        return Counter(f"{service}:{operation}" for service, operation in self.calls)

    def operations(self, service: str | None = None) -> list[str]:
        return [op for svc, op in self.calls if service is None or svc == service]


@contextmanager
def recording_api_calls() -> Iterator[ApiCallRecorder]:
    recorder = ApiCallRecorder()
    original = botocore.client.BaseClient._make_api_call

    def recorded(self: Any, operation_name: str, api_params: Any) -> Any:
        recorder.calls.append((self.meta.service_model.service_name, operation_name))
        return original(self, operation_name, api_params)

    botocore.client.BaseClient._make_api_call = recorded  # type: ignore[method-assign]
    try:
        yield recorder
    finally:
        botocore.client.BaseClient._make_api_call = original  # type: ignore[method-assign]


INVENTORY_KEY_SCHEMA = {
    "KeySchema": [{"AttributeName": "image_id", "KeyType": "HASH"}, {"AttributeName": "region", "KeyType": "RANGE"}],
    "AttributeDefinitions": [
        {"AttributeName": "image_id", "AttributeType": "S"},
        {"AttributeName": "region", "AttributeType": "S"},
    ],
}


@dataclass(frozen=True)
class HomeResources:
    topic_arn: str
    inbox_url: str


def create_home_resources(
    policy_json: str, parameter_name: str, table_name: str, region: str = "us-east-1"
) -> HomeResources:
    """On an already-started moto: what the home stack provides to the enforce Lambda (policy
    parameter, inventory table, topic), plus an SQS inbox subscribed to the topic so notices can be read.
    The local emulator will build these from the synthesized template instead."""
    import boto3

    boto3.client("ssm", region_name=region).put_parameter(
        Name=parameter_name, Value=policy_json, Type="String", Overwrite=True
    )
    boto3.client("dynamodb", region_name=region).create_table(
        TableName=table_name, BillingMode="PAY_PER_REQUEST", **INVENTORY_KEY_SCHEMA
    )
    sns, sqs = boto3.client("sns", region_name=region), boto3.client("sqs", region_name=region)
    topic_arn = sns.create_topic(Name="ami-governance")["TopicArn"]
    inbox_url = sqs.create_queue(QueueName="ami-governance-inbox")["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=inbox_arn)
    return HomeResources(topic_arn=str(topic_arn), inbox_url=str(inbox_url))


def read_notices(inbox_url: str, region: str = "us-east-1") -> list[dict[str, Any]]:
    """Every SNS notice delivered to the inbox so far, as {"subject", "body"}; the inbox is emptied."""
    import json

    import boto3

    sqs = boto3.client("sqs", region_name=region)
    notices = []
    while batch := sqs.receive_message(QueueUrl=inbox_url, MaxNumberOfMessages=10).get("Messages", []):
        for message in batch:
            envelope = json.loads(message["Body"])
            notices.append({"subject": envelope.get("Subject"), "body": json.loads(envelope["Message"])})
            sqs.delete_message(QueueUrl=inbox_url, ReceiptHandle=message["ReceiptHandle"])
    return notices
