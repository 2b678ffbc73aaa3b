"""The emulator's SQS event source mappings, their pure parts: what Lambda keeps, the event it builds, and what a
queue holds for its consumer (tests/e2e/test_sqs_mapping_e2e.py runs the mappings on the emulator)."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from emulator.assembly import StackArtifact
from emulator.deployer import DeployError, StackDeployer
from emulator.event_sources import SqsEventSourceMapping, failed_message_ids, queue_counts, sqs_event
from emulator.functions import FunctionRegistry, FunctionSpec, InvocationResult

QUEUE_ARN = "arn:aws:sqs:eu-west-1:123456789012:copy-jobs"
IDS = ["m-1", "m-2", "m-3"]


def mapping(report_batch_item_failures: bool = True) -> SqsEventSourceMapping:
    spec = FunctionSpec("copy", "arn:aws:lambda:eu-west-1:123456789012:function:copy", "eu-west-1", "h.handler",
                        Path("."), {}, "")  # fmt: skip
    return SqsEventSourceMapping(
        "u-1", "arn:esm", QUEUE_ARN, spec, report_batch_item_failures=report_batch_item_failures
    )


def returned(value: object) -> InvocationResult:
    return InvocationResult(True, 1.0, result=value)


@pytest.mark.parametrize(
    "response",
    [None, {}, {"batchItemFailures": []}, {"batchItemFailures": None}, {"other": 1}],
    ids=["null", "empty", "empty list", "null list", "no key"],
)
def test_lambda_treats_these_responses_as_complete_success(response):
    assert failed_message_ids(mapping(), returned(response), IDS) == (set(), None)


def test_the_listed_messages_are_kept():
    kept, why = failed_message_ids(
        mapping(), returned({"batchItemFailures": [{"itemIdentifier": "m-3"}, {"itemIdentifier": "m-1"}]}), IDS
    )

    assert kept == {"m-1", "m-3"}
    assert why == "batchItemFailures: m-1, m-3"


@pytest.mark.parametrize(
    "response",
    [
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{"itemIdentifier": None}]},
        {"batchItemFailures": [{"itemIdentifier": "m-9"}]},
        {"batchItemFailures": [{"itemId": "m-1"}]},
        {"batchItemFailures": "m-1"},
        "m-1",
    ],
    ids=["empty id", "null id", "id not in batch", "bad key", "not a list", "not an object"],
)
def test_lambda_treats_an_unreadable_response_as_complete_failure(response):
    kept, why = failed_message_ids(mapping(), returned(response), IDS)

    assert kept == set(IDS)
    assert why


def test_a_function_error_keeps_the_whole_batch():
    raised = InvocationResult(False, 1.0, error_type="ThrottlingError", error_message="slow down")

    assert failed_message_ids(mapping(), raised, IDS) == (set(IDS), "ThrottlingError: slow down")


def test_without_report_batch_item_failures_a_returned_list_is_ignored():
    response = {"batchItemFailures": [{"itemIdentifier": "m-1"}]}

    assert failed_message_ids(mapping(report_batch_item_failures=False), returned(response), IDS) == (set(), None)


def test_records_have_the_sqs_event_shape():
    message = {
        "MessageId": "m-1", "ReceiptHandle": "rh", "MD5OfBody": "md5", "Body": "{}",
        "Attributes": {"SenderId": "AIDA", "SentTimestamp": "1", "ApproximateReceiveCount": "2",
                       "ApproximateFirstReceiveTimestamp": "3", "SqsManagedSseEnabled": "true"},
        "MD5OfMessageAttributes": "md5a",
        "MessageAttributes": {"kind": {"DataType": "String", "StringValue": "copy"},
                              "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"}},
    }  # fmt: skip

    [record] = sqs_event(mapping(), [message])["Records"]

    assert record == {
        "messageId": "m-1", "receiptHandle": "rh", "body": "{}",
        "attributes": {"ApproximateReceiveCount": "2", "SentTimestamp": "1", "SenderId": "AIDA",
                       "ApproximateFirstReceiveTimestamp": "3"},
        "messageAttributes": {
            "kind": {"stringValue": "copy", "stringListValues": [], "binaryListValues": [], "dataType": "String"},
            "blob": {"binaryValue": "AAE=", "stringListValues": [], "binaryListValues": [], "dataType": "Binary"},
        },
        "md5OfBody": "md5", "md5OfMessageAttributes": "md5a",
        "eventSource": "aws:sqs", "eventSourceARN": QUEUE_ARN, "awsRegion": "eu-west-1",
    }  # fmt: skip


def test_queue_counts_tell_deliverable_from_in_flight_and_delayed_messages():
    with mock_aws():
        sqs = boto3.client("sqs", region_name="eu-west-1")
        url = sqs.create_queue(QueueName="copy-jobs")["QueueUrl"]
        for body in ("a", "b", "c"):
            sqs.send_message(QueueUrl=url, MessageBody=body)
        sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=60)
        [received] = sqs.receive_message(QueueUrl=url, VisibilityTimeout=120)["Messages"]

        counts = queue_counts("123456789012", QUEUE_ARN)
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=received["ReceiptHandle"], VisibilityTimeout=0)
        after_change = queue_counts("123456789012", QUEUE_ARN)

    assert (counts.deliverable, counts.not_visible) == (2, 2)
    assert counts.next_ready_in is not None
    assert 59 < counts.next_ready_in <= 60.01  # the delayed message is the first to become deliverable
    assert (after_change.deliverable, after_change.not_visible) == (3, 1)
    assert queue_counts("123456789012", "arn:aws:sqs:eu-west-1:123456789012:no-such-queue").deliverable == 0


# ---- deployment: what CreateEventSourceMapping refuses, and what the emulator cannot honour ----------------------


def deploy_mapping(tmp_path: Path, **properties: object) -> list[SqsEventSourceMapping]:
    """Deploy a function and a mapping of it (no queue: every refusal comes before the emulator is called)."""
    deployed: list[SqsEventSourceMapping] = []
    registry = FunctionRegistry("http://127.0.0.1:9", tmp_path / "logs", lambda spec: "key")
    deployer = StackDeployer("http://127.0.0.1:9", "123456789012", registry, deployed.append)
    template = {
        "Resources": {
            "Copy": {
                "Type": "AWS::Lambda::Function",
                "Properties": {"FunctionName": "copy", "Handler": "h.handler", "Code": {"S3Key": "code.zip"}},
            },
            "Mapping": {
                "Type": "AWS::Lambda::EventSourceMapping",
                "Properties": {"EventSourceArn": QUEUE_ARN, "FunctionName": {"Ref": "Copy"}, **properties},
            },
        }
    }
    deployer.deploy(StackArtifact("Home", "eu-west-1", template, assets={"code.zip": tmp_path}))
    return deployed


@pytest.mark.parametrize(
    ("properties", "message"),
    [
        ({"FilterCriteria": {"Filters": [{"Pattern": "{}"}]}}, "property FilterCriteria is not supported"),
        ({"EventSourceArn": "arn:aws:dynamodb:eu-west-1:123456789012:table/t/stream/1"}, "maps SQS queues only"),
        ({"EventSourceArn": f"{QUEUE_ARN}.fifo"}, "does not map FIFO queues"),
        ({"EventSourceArn": "arn:aws:sqs:us-east-1:123456789012:copy-jobs"}, "not in the function's region"),
        ({"BatchSize": 50}, "MaximumBatchingWindowInSeconds must be at least 1"),
        ({"BatchSize": 0}, "BatchSize 0 is not between 1 and 10000"),
    ],
    ids=["filter criteria", "not a queue", "fifo", "other region", "big batch without window", "empty batch"],
)
def test_a_mapping_the_emulator_cannot_honour_fails_the_deployment(tmp_path, properties, message):
    with pytest.raises(DeployError, match=message):
        deploy_mapping(tmp_path, **properties)
