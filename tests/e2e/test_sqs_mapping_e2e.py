"""SQS event source mappings on the emulator, as Lambda runs them: batches in, deletes by outcome, redrive.

The emulator runs a tiny stack of its own (no synth): a `jobs` queue (visibility timeout 1 s, redrive to
`jobs-dlq` after 3 receives) read by a `worker` function with ReportBatchItemFailures, batches of 2 and a 1 s
batching window; and an `inbox` queue read by a `relay` function that forwards job bodies to `jobs` with
SendMessageBatch through the emulator's endpoint. The worker does what each job body says (fail for its first n
receives, or raise) and returns the records it got, so the drain's report shows what Lambda delivered.
"""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import HOME, RunningEmulator, start_emulator, stop_emulator

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

ACCOUNT = "123456789012"
VISIBILITY_SECONDS = 1
MAX_RECEIVES = 3

WORKER = """
import json


def handler(event, context):
    failures = []
    for record in event["Records"]:
        job = json.loads(record["body"])
        if job.get("raise"):
            raise RuntimeError("told to raise")
        if int(record["attributes"]["ApproximateReceiveCount"]) <= job.get("fail_times", 0):
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures, "records": event["Records"]}
"""

RELAY = """
import os

import boto3

sqs = boto3.client("sqs")


def handler(event, context):
    url = sqs.get_queue_url(QueueName=os.environ["JOBS_QUEUE"])["QueueUrl"]
    entries = [{"Id": str(i), "MessageBody": r["body"]} for i, r in enumerate(event["Records"])]
    sqs.send_message_batch(QueueUrl=url, Entries=entries)
"""


def function(name: str, timeout: int, environment: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "FunctionName": name,
            "Handler": f"{name}.handler",
            "Runtime": "python3.14",
            "Timeout": timeout,
            "Role": {"Fn::GetAtt": ["Role", "Arn"]},
            "Code": {"S3Bucket": "assets", "S3Key": "code.zip"},
            "Environment": {"Variables": environment or {}},
        },
    }


LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
TEMPLATE = {
    "Resources": {
        "Role": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": LAMBDA_TRUST}},
        # What the relay calls (the e2e emulator enforces IAM): GetQueueUrl, and SendMessage for its batches.
        "RelayPolicy": {
            "Type": "AWS::IAM::Policy",
            "Properties": {
                "PolicyName": "relay",
                "Roles": [{"Ref": "Role"}],
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": ["sqs:GetQueueUrl", "sqs:SendMessage"],
                            "Resource": {"Fn::GetAtt": ["Jobs", "Arn"]},
                        }
                    ],
                },
            },
        },
        "JobsDlq": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "jobs-dlq"}},
        "Jobs": {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": "jobs",
                "VisibilityTimeout": VISIBILITY_SECONDS,
                "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": ["JobsDlq", "Arn"]}, "maxReceiveCount": 3},
            },
        },
        "Inbox": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "inbox", "VisibilityTimeout": 5}},
        "Worker": function("worker", VISIBILITY_SECONDS),
        "Relay": function("relay", 5, {"JOBS_QUEUE": {"Fn::GetAtt": ["Jobs", "QueueName"]}}),
        "WorkerJobs": {
            "Type": "AWS::Lambda::EventSourceMapping",
            "Properties": {
                "EventSourceArn": {"Fn::GetAtt": ["Jobs", "Arn"]},
                "FunctionName": {"Ref": "Worker"},
                "BatchSize": 2,
                "MaximumBatchingWindowInSeconds": 1,
                "FunctionResponseTypes": ["ReportBatchItemFailures"],
            },
        },
        "RelayInbox": {
            "Type": "AWS::Lambda::EventSourceMapping",
            "Properties": {"EventSourceArn": {"Fn::GetAtt": ["Inbox", "Arn"]}, "FunctionName": {"Ref": "Relay"}},
        },
    }
}


def write_assembly(outdir: Path) -> Path:
    """A cloud assembly as `cdk synth` writes it, with one stack and one code asset."""
    code = outdir / "asset.code"
    code.mkdir(parents=True)
    (code / "worker.py").write_text(textwrap.dedent(WORKER))
    (code / "relay.py").write_text(textwrap.dedent(RELAY))
    (outdir / "Jobs.template.json").write_text(json.dumps(TEMPLATE))
    (outdir / "Jobs.assets.json").write_text(
        json.dumps(
            {"files": {"code": {"source": {"path": "asset.code"}, "destinations": {"d": {"objectKey": "code.zip"}}}}}
        )
    )
    (outdir / "manifest.json").write_text(
        json.dumps(
            {
                "artifacts": {
                    "Jobs": {
                        "type": "aws:cloudformation:stack",
                        "environment": f"aws://{ACCOUNT}/{HOME}",
                        "properties": {"templateFile": "Jobs.template.json"},
                    }
                }
            }
        )
    )
    return outdir


@pytest.fixture(scope="module")
def jobs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    workdir = tmp_path_factory.mktemp("sqs-mapping")
    running = start_emulator(write_assembly(workdir / "cdk.out"), workdir / "emulator")
    yield running
    stop_emulator(running)


def queue_url(emulator: RunningEmulator, name: str) -> str:
    return str(emulator.client("sqs").get_queue_url(QueueName=name)["QueueUrl"])


def send_jobs(emulator: RunningEmulator, *jobs: dict[str, Any], queue: str = "jobs") -> list[str]:
    entries = [{"Id": str(i), "MessageBody": json.dumps(job)} for i, job in enumerate(jobs)]
    sent = emulator.client("sqs").send_message_batch(QueueUrl=queue_url(emulator, queue), Entries=entries)
    return [entry["MessageId"] for entry in sorted(sent["Successful"], key=lambda e: int(e["Id"]))]


def drain(emulator: RunningEmulator) -> tuple[list[dict[str, Any]], dict[str, int]]:
    report = emulator.control("POST", "drain", {"timeout": 30, "queues": True})
    return report["invocations"], report["sqs_messages_not_visible"]


def worker_batches(ran: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [i for i in ran if i["target"] == "worker"]


def counts(emulator: RunningEmulator, queue: str) -> tuple[int, int]:
    attributes = emulator.client("sqs").get_queue_attributes(
        QueueUrl=queue_url(emulator, queue),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def wait_until_visible_again() -> None:
    time.sleep(VISIBILITY_SECONDS + 0.3)


JOBS_ARN = f"arn:aws:sqs:{HOME}:{ACCOUNT}:jobs"


def test_a_batch_that_succeeds_is_delivered_in_lambdas_shape_and_deleted(jobs_emulator):
    ids = send_jobs(jobs_emulator, {"job": "a"}, {"job": "b"})

    ran, not_visible = drain(jobs_emulator)

    [batch] = worker_batches(ran)
    assert batch["outcome"] == "success"
    assert batch["description"] == "2 from jobs: 2 deleted, 0 kept"
    records = batch["result"]["records"]
    assert [r["messageId"] for r in records] == ids
    record = records[0]
    assert set(record) >= {"messageId", "receiptHandle", "body", "attributes", "messageAttributes", "md5OfBody",
                           "eventSource", "eventSourceARN", "awsRegion"}  # fmt: skip
    assert set(record["attributes"]) == {
        "ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"
    }  # fmt: skip
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert (record["eventSource"], record["eventSourceARN"], record["awsRegion"]) == ("aws:sqs", JOBS_ARN, HOME)
    assert counts(jobs_emulator, "jobs") == (0, 0)
    assert not_visible[JOBS_ARN] == 0


def test_batch_item_failures_keep_only_the_failed_message_until_its_visibility_timeout_ends(jobs_emulator):
    ok_id, failing_id = send_jobs(jobs_emulator, {"job": "ok"}, {"job": "once", "fail_times": 1})

    ran, not_visible = drain(jobs_emulator)

    [batch] = worker_batches(ran)
    assert batch["description"] == "2 from jobs: 1 deleted, 1 kept"
    assert batch["result"]["batchItemFailures"] == [{"itemIdentifier": failing_id}]
    # The failed message is in flight, not deliverable: the drain reported it instead of waiting for it
    assert not_visible[JOBS_ARN] == 1
    assert counts(jobs_emulator, "jobs") == (0, 1)

    wait_until_visible_again()
    ran, not_visible = drain(jobs_emulator)

    # Only the failed message comes back, on its second receive, and succeeds this time
    [retry] = worker_batches(ran)
    assert [r["messageId"] for r in retry["result"]["records"]] == [failing_id]
    assert retry["attempt"] == 1
    assert retry["description"] == "1 from jobs: 1 deleted, 0 kept"
    assert counts(jobs_emulator, "jobs") == (0, 0)
    assert ok_id not in {r["messageId"] for r in retry["result"]["records"]}


def test_a_raising_function_keeps_the_whole_batch_until_the_redrive_policy_dead_letters_it(jobs_emulator):
    dlq = queue_url(jobs_emulator, "jobs-dlq")
    ids = send_jobs(jobs_emulator, {"job": "innocent"}, {"job": "bad", "raise": True})

    batches = []
    for _ in range(MAX_RECEIVES):
        ran, _ = drain(jobs_emulator)
        [batch] = worker_batches(ran)
        batches.append((batch["outcome"], batch["error"], batch["description"], sorted(batch["event_id"].split(","))))
        wait_until_visible_again()
    ran, _ = drain(jobs_emulator)

    # Every receive failed as a whole; the 4th receive moved both messages to the DLQ instead of delivering them
    failed = ("error", "RuntimeError: told to raise", "2 from jobs: 0 deleted, 2 kept", sorted(ids))
    assert batches == [failed] * MAX_RECEIVES
    assert worker_batches(ran) == []
    assert counts(jobs_emulator, "jobs") == (0, 0)
    dead = jobs_emulator.client("sqs").receive_message(QueueUrl=dlq, MaxNumberOfMessages=10)["Messages"]
    assert sorted(m["MessageId"] for m in dead) == sorted(ids)


def test_messages_a_function_sends_are_delivered_by_the_same_drain(jobs_emulator):
    # Given a job put on the inbox: the relay function forwards it to the jobs queue through the emulator's API
    send_jobs(jobs_emulator, {"job": "relayed"}, queue="inbox")

    ran, _ = drain(jobs_emulator)

    [relay] = [i for i in ran if i["target"] == "relay"]
    [batch] = worker_batches(ran)
    assert relay["outcome"] == "success"
    # A lone message waits out the 1 s batching window for a second one, then goes alone
    assert [json.loads(r["body"]) for r in batch["result"]["records"]] == [{"job": "relayed"}]
    assert counts(jobs_emulator, "inbox") == (0, 0)
    assert counts(jobs_emulator, "jobs") == (0, 0)


def test_the_mappings_are_listed_with_their_functions(jobs_emulator):
    functions = {f["name"]: f for f in jobs_emulator.functions()}

    [mapping] = functions["worker"]["event_source_mappings"]
    assert mapping["event_source_arn"] == JOBS_ARN
    assert (mapping["batch_size"], mapping["maximum_batching_window_seconds"]) == (2, 1)
    assert mapping["report_batch_item_failures"] is True
    assert functions["relay"]["event_source_mappings"][0]["report_batch_item_failures"] is False
