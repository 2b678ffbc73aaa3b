"""Helpers shared by the tests and `make bench`: the local Lambda environment, real-shaped
events pointed at resources that exist in moto, the home-stack resources on moto, and an API-call recorder."""

from __future__ import annotations

import copy
import json
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import botocore.client

from emulator.inbox import subscribe_inbox

EVENTS_DIR = Path(__file__).parent / "events"
MOTO_ACCOUNT = "123456789012"
HOME_REGION = "us-east-1"
POLICY_PARAMETER = "/ami-governance/policy"
INVENTORY_TABLE = "ami-governance-inventory"
IDEMPOTENCY_TABLE = "ami-governance-idempotency"

# What the Lambda runtime and the stack give the functions. A handler checks its settings when it is imported, so
# what depends on created resources has a placeholder of the right shape here, which the fixtures replace with the
# resources they create (then `wiring.reset()` makes the functions read it again).
LOCAL_LAMBDA_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": HOME_REGION,
    "AWS_REGION": HOME_REGION,
    "POWERTOOLS_TRACE_DISABLED": "1",
    "POWERTOOLS_SERVICE_NAME": "ami-governance",
    "POWERTOOLS_METRICS_NAMESPACE": "AmiGovernance",
    "POLICY_PARAMETER_NAME": POLICY_PARAMETER,
    "INVENTORY_TABLE_NAME": INVENTORY_TABLE,
    "IDEMPOTENCY_TABLE_NAME": IDEMPOTENCY_TABLE,
    "NOTIFICATION_TOPIC_ARN": f"arn:aws:sns:{HOME_REGION}:{MOTO_ACCOUNT}:placeholder-topic",
    "COPY_QUEUE_URL": f"https://sqs.{HOME_REGION}.amazonaws.com/{MOTO_ACCOUNT}/placeholder-copy-jobs",
}


@dataclass
class FakeLambdaContext:
    function_name: str = "ami-governance-enforce"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{HOME_REGION}:{MOTO_ACCOUNT}:function:ami-governance-enforce"
    aws_request_id: str = "00000000-0000-4000-8000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        # Powertools idempotency expires an in-progress record with the invocation: a minute, the default timeout.
        return 60_000


def load_event(name: str) -> dict[str, Any]:
    """A fresh copy of a real-shaped sample event from tests/events/, with an id of its own as EventBridge gives
    every event (the functions answer a second delivery of one id from their idempotency record)."""
    event: dict[str, Any] = copy.deepcopy(json.loads((EVENTS_DIR / f"{name}.json").read_text()))
    if "id" in event:
        event["id"] = str(uuid.uuid4())
    return event


def create_image_event(
    image_id: str,
    instance_id: str,
    name: str | None = None,
    tags: dict[str, str] | None = None,
    **detail_changes: Any,
) -> dict[str, Any]:
    """The sample CreateImage CloudTrail event, pointed at an AMI that exists in moto. `tags` replaces the
    image tags the call requested (the sample requests Owner, Environment and CostCenter)."""
    event = load_event("create_image")
    event["account"] = MOTO_ACCOUNT
    detail = event["detail"]
    detail["responseElements"]["imageId"] = image_id
    detail["requestParameters"]["instanceId"] = instance_id
    if name is not None:
        detail["requestParameters"]["name"] = name
    if tags is not None:
        detail["requestParameters"]["tagSpecificationSet"]["items"] = (
            [{"resourceType": "image", "tags": [{"key": k, "value": v} for k, v in tags.items()]}] if tags else []
        )
    detail.update(detail_changes)
    return event


def tags_event(
    sample: str, resource_ids: list[str], tags: dict[str, str], event_name: str = "CreateTags"
) -> dict[str, Any]:
    """A CreateTags/DeleteTags CloudTrail event from `sample`, naming these resources and tags."""
    event = load_event(sample)
    event["account"] = MOTO_ACCOUNT
    detail = event["detail"]
    detail["eventName"] = event_name
    detail["requestParameters"]["resourcesSet"]["items"] = [{"resourceId": r} for r in resource_ids]
    detail["requestParameters"]["tagSet"]["items"] = [{"key": k, "value": v} for k, v in tags.items()]
    return event


def state_event(image_id: str, state: str = "available", region: str = HOME_REGION) -> dict[str, Any]:
    """An `EC2 AMI State Change` event for this image."""
    event = load_event("ami_state_available")
    event["account"] = MOTO_ACCOUNT
    event["region"] = region
    event["resources"] = [f"arn:aws:ec2:{region}::image/{image_id}"]
    event["detail"].update(ImageId=image_id, State=state)
    return event


class ApiCallRecorder:
    """Records every AWS API call made through botocore, as (service, operation) pairs, in order. The calls on the
    idempotency table (one claim and one record per EventBridge invocation, adapters/idempotency.py) are kept
    apart in `idempotency`, so that a budget the tests assert is the governance's own work."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.idempotency: list[str] = []

    def by_operation(self) -> Counter[str]:
        return Counter(f"{service}:{operation}" for service, operation in self.calls)

    def operations(self, service: str | None = None) -> list[str]:
        return [op for svc, op in self.calls if service is None or svc == service]


@contextmanager
def recording_api_calls() -> Iterator[ApiCallRecorder]:
    recorder = ApiCallRecorder()
    original = botocore.client.BaseClient._make_api_call

    def recorded(self: Any, operation_name: str, api_params: Any) -> Any:
        if isinstance(api_params, dict) and api_params.get("TableName") == IDEMPOTENCY_TABLE:
            recorder.idempotency.append(operation_name)
        else:
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
    policy_json: str,
    parameter_name: str = POLICY_PARAMETER,
    table_name: str = INVENTORY_TABLE,
    region: str = HOME_REGION,
) -> HomeResources:
    """On an already-started moto: what the home stack provides to the enforce Lambda (policy
    parameter, inventory table, topic), plus an SQS inbox subscribed to the topic so notices can be read.
    The local emulator will build these from the synthesized template instead."""
    import boto3

    boto3.client("ssm", region_name=region).put_parameter(
        Name=parameter_name, Value=policy_json, Type="String", Overwrite=True
    )
    dynamodb = boto3.client("dynamodb", region_name=region)
    dynamodb.create_table(TableName=table_name, BillingMode="PAY_PER_REQUEST", **INVENTORY_KEY_SCHEMA)
    create_idempotency_table(dynamodb)
    sns, sqs = boto3.client("sns", region_name=region), boto3.client("sqs", region_name=region)
    topic_arn = sns.create_topic(Name="ami-governance")["TopicArn"]
    inbox_url = subscribe_inbox(sns, sqs, topic_arn, "ami-governance-inbox")
    return HomeResources(topic_arn=str(topic_arn), inbox_url=inbox_url)


def empty_the_idempotency_store(region: str = HOME_REGION) -> int:
    """Forget every event the functions handled (as if every idempotency record had expired): how many there were.
    For tests that deliver many events that may share an id (Hypothesis draws them), each to be handled anew."""
    dynamodb = boto3.client("dynamodb", region_name=region)
    items = dynamodb.scan(TableName=IDEMPOTENCY_TABLE)["Items"]
    for item in items:
        dynamodb.delete_item(TableName=IDEMPOTENCY_TABLE, Key={"id": item["id"]})
    return len(items)


def create_idempotency_table(dynamodb: Any, table_name: str = IDEMPOTENCY_TABLE) -> None:
    """The home stack's idempotency table: Powertools' key (`id`) and TTL attribute (`expiration`)."""
    dynamodb.create_table(
        TableName=table_name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
    )
    dynamodb.update_time_to_live(
        TableName=table_name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"}
    )


def receive_as_sqs_event_records(sqs: Any, queue_url: str, region: str = HOME_REGION) -> list[dict[str, Any]]:
    """Receive up to 10 messages and shape them as Lambda's SQS event records (what an event source mapping
    hands the function)."""
    messages = sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"], VisibilityTimeout=30
    ).get("Messages", [])
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return [
        {
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"],
            "attributes": m.get("Attributes", {}),
            "messageAttributes": {},
            "md5OfBody": m["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": arn,
            "awsRegion": region,
        }
        for m in messages
    ]


def fail_lambda_calls(service: str, region: str, operation: str, code: str, times: int = 1) -> None:
    """Make the Lambdas' own client (`adapters.clients.client`) answer `operation` with error `code`, `times`
    times, without sending the request: a botocore `before-call` hook, so moto never sees those calls."""
    from ami_governance.adapters.clients import client

    remaining = {"count": times}

    class _Response:
        status_code = 400 if not code.startswith("Internal") else 500

    def hook(**_: Any) -> Any:
        if remaining["count"] <= 0:
            return None
        remaining["count"] -= 1
        return _Response(), {"Error": {"Code": code, "Message": f"{code} (injected by the test)"}}

    client(service, region).meta.events.register(f"before-call.{service}.{operation}", hook)


@contextmanager
def recording_api_failures() -> Iterator[list[tuple[str, str, str]]]:
    """Every AWS API call made through botocore that failed, as (service, operation, error code), in order."""
    from botocore.exceptions import ClientError

    failures: list[tuple[str, str, str]] = []
    original = botocore.client.BaseClient._make_api_call

    def recorded(self: Any, operation_name: str, api_params: Any) -> Any:
        try:
            return original(self, operation_name, api_params)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", "Unknown"))
            failures.append((self.meta.service_model.service_name, operation_name, code))
            raise

    botocore.client.BaseClient._make_api_call = recorded  # type: ignore[method-assign]
    try:
        yield failures
    finally:
        botocore.client.BaseClient._make_api_call = original  # type: ignore[method-assign]


def emitted_metric_names(output: str) -> list[str]:
    """Names of the EMF metrics (Powertools' CloudWatch embedded metric format) printed in `output`, in order."""
    names: list[str] = []
    for line in output.splitlines():
        if line.startswith('{"_aws"'):
            for directive in json.loads(line)["_aws"]["CloudWatchMetrics"]:
                names.extend(metric["Name"] for metric in directive["Metrics"])
    return names
