"""At-least-once delivery on the emulator: a scenario's events, taken from the emulator's event log and put again on
the governance bus, leave every AMI, replica, notice and snapshot as they were.

PutEvents gives each entry a new id (as EventBridge does), so the functions' idempotency records do not answer
these: every handler runs again, and this shows that the effects are idempotent by design, on the real stacks and
workers. (A redelivery with the same ids, which the records answer, is shown on moto in
tests/integration/test_replay.py: the emulator's API has no way to re-route a logged event unchanged.)
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from stacks.resource_names import GOVERNANCE_BUS_NAME
from tests.e2e.conftest import OTHER, PREFIX, RunningEmulator, notification_inbox

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

ACCOUNT = "123456789012"
APPROVER_KEY = "replay-approver"
GOOD_TAGS = {"Owner": "team-payments", "Environment": "prod", "CostCenter": "CC-1234"}


def _image(emulator: RunningEmulator, name: str, tags: dict[str, str] | None = None) -> str:
    request: dict[str, Any] = {"InstanceId": emulator.launch_instance(), "Name": name}
    if tags:
        request["TagSpecifications"] = [
            {"ResourceType": "image", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        ]
    return str(emulator.client("ec2").create_image(**request)["ImageId"])


def _state(emulator: RunningEmulator, images: dict[str, str]) -> dict[str, Any]:
    ec2_home, ec2_other = emulator.client("ec2"), emulator.client("ec2", OTHER)
    state: dict[str, Any] = {}
    for name, image_id in images.items():
        found = ec2_home.describe_images(ImageIds=[image_id], IncludeDisabled=True)["Images"]
        state[name] = {
            "state": found[0]["State"] if found else None,
            "tags": {t["Key"]: t["Value"] for t in found[0].get("Tags", [])} if found else {},
        }
    replicas = ec2_other.describe_images(
        Owners=["self"], Filters=[{"Name": "source-image-id", "Values": [images["good"]]}]
    )["Images"]
    state["replicas"] = sorted(
        (r["State"], tuple(sorted((t["Key"], t["Value"]) for t in r.get("Tags", [])))) for r in replicas
    )
    state["home snapshots"] = len(ec2_home.describe_snapshots(OwnerIds=["self"])["Snapshots"])
    return state


def test_the_scenarios_events_put_again_change_nothing(emulator: RunningEmulator) -> None:
    # Given a scenario on the emulator: a compliant AMI approved and copied, one created without its tags and
    # fixed, one deregistered; every event it caused, from the emulator's log
    emulator.control("POST", "principals", {APPROVER_KEY: f"arn:aws:sts::{ACCOUNT}:assumed-role/AmiApprover/lead"})
    inbox = notification_inbox(emulator)
    emulator.drain()
    first_event = len(emulator.events())
    good = _image(emulator, "payments-api-al2023-3.0.0", GOOD_TAGS)
    fixed = _image(emulator, "payments-api-al2023-3.0.1")
    gone = _image(emulator, "payments-api-al2023-3.0.2", GOOD_TAGS)
    emulator.drain()
    emulator.client("ec2", access_key=APPROVER_KEY).create_tags(
        Resources=[good], Tags=[{"Key": f"{PREFIX}approved", "Value": "true"}]
    )
    emulator.client("ec2").create_tags(Resources=[fixed], Tags=[{"Key": k, "Value": v} for k, v in GOOD_TAGS.items()])
    emulator.client("ec2").deregister_image(ImageId=gone)
    emulator.drain()
    images = {"good": good, "fixed": fixed, "gone": gone}
    before = _state(emulator, images)
    assert before["good"]["tags"][f"{PREFIX}compliance"] == "compliant"
    assert before["fixed"]["tags"][f"{PREFIX}compliance"] == "compliant"
    assert before["gone"]["state"] is None
    assert len(before["replicas"]) == 1
    assert len(inbox()) >= 2
    logged = [e for e in emulator.events()[first_event:] if e["bus"] == GOVERNANCE_BUS_NAME]
    assert len(logged) >= 10

    # When every one of them is put on the governance bus again (new ids: nothing answers them from a record)
    events = emulator.client("events")
    for start in range(0, len(logged), 10):
        entries = [
            {
                "Source": e["event"]["source"],
                "DetailType": e["event"]["detail-type"],
                "Detail": json.dumps(e["event"]["detail"]),
                "Resources": e["event"].get("resources", []),
                "EventBusName": GOVERNANCE_BUS_NAME,
            }
            for e in logged[start : start + 10]
        ]
        assert events.put_events(Entries=entries)["FailedEntryCount"] == 0
    runs = emulator.drain()

    # Then every function ran again, without an error, and changed nothing: the same tags, one replica, no notice,
    # no snapshot deleted
    invoked = [r for r in runs if r.get("outcome") == "success"]
    assert len(invoked) >= len(logged)
    assert [r for r in runs if r.get("outcome") not in ("success", "delivered")] == []
    assert _state(emulator, images) == before
    assert inbox() == []
