"""Events of any shape on the emulator, through PutEvents and the control API only: each is logged, reaches the
rules it matches, is dropped by the Lambdas as malformed, and the next real event is still governed.

These events run on an emulator of their own: other tests read the shared emulator's event log expecting
CloudTrail's shapes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import load_event
from tests.e2e.conftest import PREFIX, RunningEmulator, start_emulator, stop_emulator

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

CLOUDTRAIL = "AWS API Call via CloudTrail"
MINIMAL = {"eventSource": "ec2.amazonaws.com", "eventName": "DeregisterImage"}


def real(sample: str, **changes: Any) -> dict[str, Any]:
    """A real-shaped CloudTrail record of this account, with some fields replaced."""
    detail = load_event(sample)["detail"]
    detail.update(recipientAccountId="123456789012", **changes)
    return dict(detail)


HOSTILE_DETAILS = {
    # What the probes sent.
    "resourcesSet null": {**MINIMAL, "requestParameters": {"resourcesSet": None}},
    "requestParameters a list": {**MINIMAL, "requestParameters": ["imageId", "ami-0fedcba9876543210"]},
    "userIdentity a list": {**MINIMAL, "userIdentity": ["arn:aws:iam::123456789012:user/x"]},
    "userIdentity a string": {**MINIMAL, "userIdentity": "root"},
    "resourcesSet a list": {**MINIMAL, "eventName": "CreateTags",
                            "requestParameters": {"resourcesSet": [{"resourceId": "ami-0fedcba9876543210"}]}},
    "resourceId a number": {**MINIMAL, "eventName": "CreateTags",
                            "requestParameters": {"resourcesSet": {"items": [{"resourceId": 5}]}}},
    # Complete records with one field of the wrong shape: they match the stack's rules and reach the Lambdas.
    "full record, resourcesSet null": real("deregister_image", requestParameters={"resourcesSet": None}),
    "full record, userIdentity a string": real("deregister_image", userIdentity="root"),
    "full record, a 100 KB AMI id": real("deregister_image", requestParameters={"imageId": "ami-" + "0" * 100_000}),
    "full record, resourceId a number among AMIs": real(
        "create_tags_approval",
        requestParameters={"resourcesSet": {"items": [{"resourceId": "ami-0fedcba9876543210"}, {"resourceId": 5}]},
                           "tagSet": {"items": [{"key": "Owner", "value": "x"}]}},
    ),
}  # fmt: skip


@pytest.fixture(scope="module")
def hostile_emulator(cloud_assembly, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    running = start_emulator(cloud_assembly, tmp_path_factory.mktemp("hostile-events"))
    yield running
    stop_emulator(running)


def put(emulator: RunningEmulator, detail: Any, detail_type: str = CLOUDTRAIL) -> dict[str, Any]:
    response = emulator.client("events").put_events(
        Entries=[{"Source": "aws.ec2", "DetailType": detail_type, "Detail": json.dumps(detail)}]
    )
    [entry] = response["Entries"]
    return dict(entry)


def test_hostile_events_are_logged_and_dropped_and_the_next_real_event_is_governed(hostile_emulator):
    emulator = hostile_emulator
    # Given every hostile shape put on the default bus as if EC2 had sent it
    ids = {name: put(emulator, detail)["EventId"] for name, detail in HOSTILE_DETAILS.items()}

    # When a real AMI is created after them
    instance_id = emulator.launch_instance()
    image_id = emulator.client("ec2").create_image(InstanceId=instance_id, Name="after the storm")["ImageId"]
    ran = emulator.drain()

    # Then the router went on: the real AMI is judged and the drain answered
    assert emulator.tags_of(image_id)[f"{PREFIX}compliance"] == "non-compliant"
    # and every hostile event is in the event log (on the default bus), none failed in the emulator
    logged = emulator.events()
    for name, event_id in ids.items():
        entries = [e for e in logged if e["event_id"] == event_id]  # forwarded events keep their id
        assert "default" in {e["bus"] for e in entries}, name
        assert [e["errors"] for e in entries] == [[]] * len(entries), name
    # and those the rules delivered to a Lambda were dropped by it as malformed: no error, no retry, no DLQ
    hostile_ids = set(ids.values())
    handled = [i for i in ran if i["event_id"] in hostile_ids]
    assert {i["outcome"] for i in handled} <= {"delivered", "success"}
    by_lambda = [i for i in handled if i["outcome"] == "success"]
    # (every DeregisterImage matches the clean-up rule; a tag call matches only if an item names an `ami-`)
    assert {i["event_id"] for i in by_lambda} == hostile_ids - {ids["resourcesSet a list"], ids["resourceId a number"]}
    assert {i["result"]["status"] for i in by_lambda} == {"rejected"}
    assert all(i["result"]["reason"].startswith("malformed event: ") for i in by_lambda)


def test_a_detail_that_is_not_a_json_object_is_refused_as_eventbridge_does(hostile_emulator):
    emulator = hostile_emulator
    before = len(emulator.events())

    answers = [put(emulator, detail) for detail in (5, "DeregisterImage", [MINIMAL], None)]

    assert answers == [{"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."}] * 4
    assert emulator.drain() == []
    assert len(emulator.events()) == before


def test_the_drain_still_answers_after_a_hostile_state_change(hostile_emulator):
    emulator = hostile_emulator
    put(emulator, {"ImageId": ["ami-0fedcba9876543210"], "State": {"available": True}}, "EC2 AMI State Change")

    ran = emulator.drain()

    assert ran
    assert {i["outcome"] for i in ran} <= {"delivered", "success"}
    assert {i["result"]["status"] for i in ran if i["outcome"] == "success"} <= {"rejected"}
