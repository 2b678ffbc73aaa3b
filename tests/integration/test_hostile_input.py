"""Hostile input through every handler (enforce, cleanup, replicate, copy): events of the wrong shape and ids no
AWS resource can have are logged, counted and dropped before any AWS call, and only AWS failures raise.

The shapes are those black-box probes sent through PutEvents on the emulator (tests/e2e/test_hostile_events_e2e.py
sends them there); here each handler receives each of them directly, whether or not a rule would route it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from ami_governance.adapters.inventory import plain_item
from tests.conftest import load_event
from tests.integration.conftest import ACCOUNT, HOME, TABLE, Estate, create_image_event, state_event, tags_event
from tests.support import (
    FakeLambdaContext,
    emitted_metric_names,
    receive_as_sqs_event_records,
    recording_api_calls,
    recording_api_failures,
)

pytestmark = pytest.mark.integration

P = "ami-governance:"
HUGE_IMAGE_ID = "ami-" + "0" * 100_000
Invoke = Callable[[Any], dict[str, Any]]


def metric_names(capsys: pytest.CaptureFixture[str]) -> list[str]:
    """Names of the EMF metrics the invocation printed."""
    return emitted_metric_names(capsys.readouterr().out)


def metric_value(capsys_output: str, name: str) -> float:
    total = 0.0
    for line in capsys_output.splitlines():
        if line.startswith('{"_aws"'):
            document = json.loads(line)
            if name in document:
                value = document[name]
                total += sum(value) if isinstance(value, list) else value
    return total


@pytest.fixture
def handlers(
    estate: Estate, monkeypatch: pytest.MonkeyPatch, invoke: Invoke, invoke_cleanup: Invoke
) -> dict[str, Invoke]:
    from handlers.replicate import handler as replicate_handler

    queue_url = boto3.client("sqs", region_name=HOME).create_queue(QueueName="ami-governance-copy-jobs")["QueueUrl"]
    monkeypatch.setenv("COPY_QUEUE_URL", queue_url)

    def replicate(event: Any) -> dict[str, Any]:
        return replicate_handler(event, FakeLambdaContext(function_name="ami-governance-replicate"))  # type: ignore[arg-type]

    return {"enforce": invoke, "cleanup": invoke_cleanup, "replicate": replicate}


def copy_handler() -> Invoke:
    from handlers.copy import handler

    return lambda event: handler(event, FakeLambdaContext(function_name="ami-governance-copy"))  # type: ignore[arg-type]


def table_items() -> list[dict[str, Any]]:
    return [plain_item(item) for item in boto3.client("dynamodb", region_name=HOME).scan(TableName=TABLE)["Items"]]


# ---- events of the wrong shape ---------------------------------------------------------------------------------


def deregister(**changes: Any) -> dict[str, Any]:
    event = load_event("deregister_image")
    event["account"] = ACCOUNT
    event["detail"].update(changes)
    return event


def create_tags(**changes: Any) -> dict[str, Any]:
    event = tags_event("create_tags_approval", ["ami-0a1b2c3d4e5f60718"], {f"{P}approved": "true"})
    event["detail"].update(changes)
    return event


def with_detail(detail: Any) -> dict[str, Any]:
    event = deregister()
    event["detail"] = detail
    return event


MINIMAL = {"eventSource": "ec2.amazonaws.com", "eventName": "DeregisterImage"}
HOSTILE_EVENTS = {
    # As the probes sent them: no eventTime, eventID or awsRegion either.
    "probe: resourcesSet null": with_detail({**MINIMAL, "requestParameters": {"resourcesSet": None}}),
    "probe: requestParameters a list": with_detail(
        {**MINIMAL, "requestParameters": ["imageId", "ami-0fedcba9876543210"]}
    ),
    # A real record with one field of the wrong shape, so that nothing else is missing.
    "resourcesSet null": deregister(requestParameters={"resourcesSet": None}),
    "requestParameters a list": deregister(requestParameters=["imageId", "ami-0fedcba9876543210"]),
    "userIdentity a list": deregister(userIdentity=["arn:aws:iam::123456789012:user/x"]),
    "userIdentity a string": deregister(userIdentity="root"),
    "CreateTags, resourcesSet null": create_tags(requestParameters={"resourcesSet": None}),
    "CreateTags, resourcesSet a list": create_tags(
        requestParameters={"resourcesSet": [{"resourceId": "ami-0a1b2c3d4e5f60718"}]}
    ),
    "CreateTags, resourceId a number": create_tags(
        requestParameters={"resourcesSet": {"items": [{"resourceId": "ami-0a1b2c3d4e5f60718"}, {"resourceId": 5}]}}
    ),
    "CreateTags, userIdentity a string": create_tags(userIdentity="root"),
    "detail a number": with_detail(5),
    "detail a list": with_detail([MINIMAL]),
    "detail null": with_detail(None),
    "state change, detail a string": {**load_event("ami_state_available"), "detail": "available"},
    "state change, ImageId a number": {
        **load_event("ami_state_available"), "detail": {"ImageId": 5, "State": "available"}
    },
}  # fmt: skip


@pytest.mark.parametrize("name", ["enforce", "cleanup", "replicate"])
@pytest.mark.parametrize("event", HOSTILE_EVENTS.values(), ids=HOSTILE_EVENTS.keys())
def test_a_hostile_event_is_logged_counted_and_dropped_by_every_handler(handlers, capsys, caplog, name, event):
    # Given an event of the wrong shape, delivered to the handler
    with recording_api_calls() as api, recording_api_failures() as failures:
        result = handlers[name](event)

    # Then it is rejected without raising, named in the log, counted, and no AWS call is made for it
    assert result["status"] == "rejected"
    assert "MalformedEvents" in metric_names(capsys)
    [logged] = [record for record in caplog.records if record.getMessage() == "Malformed event dropped"]
    assert logged.problems
    assert [op for op in api.operations() if op != "GetParameter"] == []
    assert failures == []


# ---- ids no AWS resource has --------------------------------------------------------------------------------------


def huge_state_change(state: str) -> dict[str, Any]:
    event = state_event("ami-0a1b2c3d4e5f60718", state)
    event["detail"]["ImageId"] = HUGE_IMAGE_ID
    event["resources"] = [f"arn:aws:ec2:{HOME}::image/{HUGE_IMAGE_ID}"]
    return event


def huge_create_image() -> dict[str, Any]:
    return create_image_event(HUGE_IMAGE_ID, "i-0abc1234def567890")


def huge_deregister() -> dict[str, Any]:
    return deregister(requestParameters={"imageId": HUGE_IMAGE_ID, "deleteAssociatedSnapshots": False})


def huge_copy_of() -> dict[str, Any]:
    event = load_event("copy_image")
    event["account"] = ACCOUNT
    event["detail"]["requestParameters"]["sourceImageId"] = HUGE_IMAGE_ID
    return event


@pytest.mark.parametrize(
    ("name", "event"),
    [
        ("enforce", huge_state_change("available")),
        ("enforce", huge_state_change("failed")),
        ("enforce", huge_create_image()),
        ("enforce", huge_copy_of()),
        ("cleanup", huge_state_change("deregistered")),
        ("cleanup", huge_deregister()),
        ("replicate", huge_state_change("available")),
        ("replicate", huge_state_change("deregistered")),
    ],
    ids=["enforce available", "enforce failed", "enforce CreateImage", "enforce CopyImage source",
         "cleanup deregistered", "cleanup DeregisterImage", "replicate available", "replicate deregistered"],
)  # fmt: skip
def test_an_event_naming_a_100_kb_image_id_is_dropped_before_any_aws_call(handlers, capsys, name, event):
    # Given an event whose one AMI id is 100 KB long (EC2 would call it malformed; as a DynamoDB key it is over
    # the key size limit, which used to raise ValidationException: three invocations and a dead letter)
    with recording_api_calls() as api, recording_api_failures() as failures:
        result = handlers[name](event)

    # Then it is a malformed event: dropped, counted, and nothing was asked of AWS or written
    assert result["status"] == "rejected"
    assert "MalformedEvents" in metric_names(capsys)
    assert [op for op in api.operations() if op != "GetParameter"] == []
    assert failures == []
    assert table_items() == []


@pytest.mark.parametrize("name", ["enforce", "replicate"])
def test_a_tag_call_naming_only_a_100_kb_image_id_is_dropped_and_the_id_counted(handlers, capsys, caplog, name):
    event = tags_event("create_tags_approval", [HUGE_IMAGE_ID], {f"{P}approved": "true", "Owner": "x"})

    with recording_api_calls() as api, recording_api_failures() as failures:
        result = handlers[name](event)

    output = capsys.readouterr().out
    assert result["status"] == "ignored"
    assert result["reason"] == "no AMI among the tagged resources"
    assert metric_value(output, "InvalidIds") == 1
    [logged] = [record for record in caplog.records if record.getMessage() == "Invalid AMI ids dropped from the event"]
    assert logged.invalid_ids == [f"{HUGE_IMAGE_ID[:40]}… (100004 characters)"]
    assert [op for op in api.operations() if op != "GetParameter"] == []
    assert failures == []


def test_invalid_image_ids_among_valid_ones_are_dropped_and_the_valid_ones_judged(estate, handlers, capsys):
    # Given a CreateTags naming two real AMIs, a snapshot, and two ids no AMI has
    first, _ = estate.create_image("scratch one")
    second, _ = estate.create_image("scratch two")
    resources = [first, "snap-0123456789abcdef0", HUGE_IMAGE_ID, second, "ami-0A1B2C3D4E5F60718"]
    event = tags_event("create_tags_approval", resources, {"Owner": "payments-team"})

    with recording_api_failures() as failures:
        result = handlers["enforce"](event)

    # Then the two AMIs are judged, the two invalid ids dropped and counted, and no AWS call failed
    output = capsys.readouterr().out
    assert [image["image_id"] for image in result["images"]] == [first, second]
    assert metric_value(output, "InvalidIds") == 2
    assert failures == []
    assert estate.tags_of(first)[f"{P}compliance"] == "non-compliant"
    assert {item["image_id"] for item in table_items()} <= {first, second}


def test_a_copy_job_naming_a_100_kb_image_id_is_malformed_without_an_aws_call_failing(estate, handlers, capsys):
    # Given a copy job on the queue whose source id is 100 KB long
    sqs = boto3.client("sqs", region_name=HOME)
    url = sqs.get_queue_url(QueueName="ami-governance-copy-jobs")["QueueUrl"]
    job = {
        "source_image_id": HUGE_IMAGE_ID, "source_region": HOME, "target_region": "eu-west-1",
        "name": "payments-api-1.4.0", "approved_by": f"arn:aws:iam::{ACCOUNT}:role/AmiApprover",
        "approval_event_id": "e-1", "generation": 0,
    }  # fmt: skip
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(job))
    records = receive_as_sqs_event_records(sqs, url)

    with recording_api_calls() as api, recording_api_failures() as failures:
        response = copy_handler()({"Records": records})

    # Then the job is malformed: kept for the dead-letter queue (the queue's redrive), never looked up
    assert response == {"batchItemFailures": [{"itemIdentifier": records[0]["messageId"]}]}
    assert "MalformedCopyJobs" in metric_names(capsys)
    assert "dynamodb" not in {service for service, _ in api.calls}
    assert "ec2" not in {service for service, _ in api.calls}
    assert failures == []


# ---- answers the idempotency record must hold ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["enforce", "cleanup", "replicate"])
def test_an_event_with_10_000_malformed_elements_is_rejected_with_a_bounded_answer_and_recorded(handlers, name):
    # Given an envelope whose `resources` holds 10,000 elements of the wrong type: 10,000 validation problems
    event = create_tags()
    event["resources"] = [[] for _ in range(10_000)]

    # When it is delivered twice, then the first delivery is rejected without raising (its answer, kept in the
    # idempotency record, names the first problems and counts the rest) and the second is answered from the record
    first = handlers[name](event)
    assert first["status"] == "rejected"
    assert first["reason"].endswith("; and 9990 more")
    assert len(json.dumps(first)) < 4_000
    assert handlers[name](event) == first


def test_an_answer_too_large_for_its_record_is_recorded_in_brief():
    from ami_governance.adapters.idempotency import MAX_RECORDED_ANSWER_BYTES, recordable

    small = {"status": "handled", "event_id": "e-1", "reason": None, "images": [{"image_id": "ami-1"}]}
    large = {**small, "images": [{"image_id": f"ami-{n}", "reason": "x" * 400} for n in range(1_000)]}

    assert recordable(small) is small
    brief = recordable(large)
    assert len(json.dumps(brief)) < 1_000 < MAX_RECORDED_ANSWER_BYTES < len(json.dumps(large))
    assert (brief["status"], brief["event_id"], brief["images"]) == ("handled", "e-1", [])
    assert brief["answer_in_brief"].endswith("; 1000 image outcomes not listed")
