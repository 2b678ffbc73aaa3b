"""Forged events on the emulator: put on the governance bus and on the default bus (whence they are forwarded), they
reach the Lambdas and change nothing, because each Lambda acts on what EC2 shows.

On AWS, PutEvents refuses `aws.*` sources (NotAuthorizedForSourceException) and the governance bus's policy refuses
other accounts and other sources: these forgeries could not be put at all. The emulator accepts `aws.ec2` from any
caller of the account, which is what lets this suite show the Lambdas' own defence. The bus policy it evaluates (it
runs with --enforce-iam): an event with a source of the caller's own is refused on the governance bus and matches
no rule on the default bus, and a principal of another account is refused whatever its source.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import load_event
from tests.e2e.conftest import HOME, PREFIX, RunningEmulator

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

ACCOUNT = "123456789012"
GOOD_TAGS = {"Owner": "team-payments", "Environment": "prod", "CostCenter": "CC-1234"}
BUSES = ["ami-governance", "default"]


def cloudtrail(sample: str, **changes: Any) -> dict[str, Any]:
    detail = load_event(sample)["detail"]
    detail.update(awsRegion=HOME, recipientAccountId=ACCOUNT, **changes)
    return dict(detail)


def forgeries(image_id: str, instance_id: str, snapshot_id: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """Kind -> (detail-type, detail) of each forged claim about the AMI."""
    tags = {"resourcesSet": {"items": [{"resourceId": image_id}]},
            "tagSet": {"items": [{"key": k, "value": v} for k, v in GOOD_TAGS.items()]}}  # fmt: skip
    approval = {"resourcesSet": {"items": [{"resourceId": image_id}]},
                "tagSet": {"items": [{"key": f"{PREFIX}approved", "value": "true"}]}}  # fmt: skip
    creator = cloudtrail("create_image", eventID="forged-creation")
    creator["requestParameters"].update(instanceId=instance_id, tagSpecificationSet={"items": [
        {"resourceType": "image", "tags": [{"key": k, "value": v} for k, v in GOOD_TAGS.items()]}]})  # fmt: skip
    creator["responseElements"]["imageId"] = image_id
    creator["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"] = f"arn:aws:iam::{ACCOUNT}:role/AmiApprover"
    share = cloudtrail("modify_image_attribute_launch_permission")
    share["requestParameters"]["imageId"] = image_id
    cloudtrail_call = "AWS API Call via CloudTrail"
    state = "EC2 AMI State Change"
    return {
        "tags the AMI does not carry": (cloudtrail_call, cloudtrail("create_tags_approval", requestParameters=tags)),
        "an approval tag the AMI does not carry": (
            cloudtrail_call, cloudtrail("create_tags_approval", requestParameters=approval)),
        "another creator": (cloudtrail_call, creator),
        "a deregistration of a registered AMI": (cloudtrail_call, cloudtrail(
            "deregister_image", requestParameters={"imageId": image_id, "deleteAssociatedSnapshots": True},
            responseElements={"_return": True, "deleteSnapshotResultSet": {"items": [
                {"snapshotId": snapshot_id, "returnCode": "success"}]}})),
        "state deregistered": (state, {"ImageId": image_id, "State": "deregistered"}),
        "state failed": (state, {"ImageId": image_id, "State": "failed", "ErrorMessage": "forged"}),
        "a launch permission EC2 does not show": (cloudtrail_call, share),
    }  # fmt: skip


def image_and_snapshots(emulator: RunningEmulator, image_id: str) -> tuple[Any, ...]:
    ec2 = emulator.client("ec2", HOME)
    [image] = ec2.describe_images(ImageIds=[image_id], IncludeDisabled=True)["Images"]
    snapshot_ids = [m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"] if "Ebs" in m]
    found = ec2.describe_snapshots(SnapshotIds=snapshot_ids)["Snapshots"]
    launch = ec2.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")["LaunchPermissions"]
    return (image["State"], emulator.tags_of(image_id), sorted(s["SnapshotId"] for s in found), launch)


@pytest.mark.parametrize("bus", BUSES)
def test_forged_events_on_either_bus_change_nothing(
    emulator: RunningEmulator, inbox: Callable[[], list[dict[str, Any]]], bus: str
) -> None:
    # Given a non-compliant AMI, judged and announced
    ec2 = emulator.client("ec2", HOME)
    instance_id = emulator.launch_instance(HOME)
    image_id = ec2.create_image(InstanceId=instance_id, Name=f"scratch forged {bus}")["ImageId"]
    emulator.drain()
    before = image_and_snapshots(emulator, image_id)
    assert before[1][f"{PREFIX}compliance"] == "non-compliant"
    [snapshot_id] = before[2]
    inbox()

    # When every kind of forged claim about it is put on the bus as EC2's own event
    kinds = forgeries(image_id, instance_id, snapshot_id)
    events = emulator.client("events", HOME)
    for detail_type, detail in kinds.values():
        answer = events.put_events(Entries=[{"Source": "aws.ec2", "DetailType": detail_type,
                                             "Detail": json.dumps(detail), "EventBusName": bus}])  # fmt: skip
        assert answer["FailedEntryCount"] == 0
    ran = emulator.drain()

    # Then the Lambdas ran on them without error, and the AMI, its snapshot and its sharing are as they were, but
    # for the answer to the approval claim, which states what EC2 shows (the AMI does not carry the tag)
    lambdas = [i for i in ran if i["outcome"] != "delivered"]  # (not the forwarding of the default bus's events)
    assert {i["outcome"] for i in lambdas} == {"success"}
    assert len(lambdas) >= len(kinds)
    state, tags, snapshot_ids, launch = image_and_snapshots(emulator, image_id)
    answer_key = f"{PREFIX}approval"
    assert tags.pop(answer_key) == f"withdrawn: the AMI no longer carries {PREFIX}approved=true"
    assert (state, tags, snapshot_ids, launch) == before
    assert inbox() == []
    results = json.dumps([i["result"] for i in lambdas])
    for refusal in ("is still registered", "claims-refuted: EC2 shows the AMI available"):
        assert refusal in results


def test_an_event_with_the_callers_own_source_is_refused_by_the_bus_and_matches_no_rule(
    emulator: RunningEmulator,
) -> None:
    detail = cloudtrail("deregister_image", requestParameters={"imageId": "ami-0123456789abcdef0"})
    marker = "forged-own-source"
    detail["eventID"] = marker
    events = emulator.client("events", HOME)

    def put(bus: str) -> Any:
        return events.put_events(Entries=[{
            "Source": "com.example.forged", "DetailType": "AWS API Call via CloudTrail",
            "Detail": json.dumps(detail), "EventBusName": bus}])  # fmt: skip

    with pytest.raises(ClientError) as refused:
        put("ami-governance")
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "events:PutEvents" in refused.value.response["Error"]["Message"]
    assert "explicit deny in a resource-based policy" in refused.value.response["Error"]["Message"]
    assert put("default")["FailedEntryCount"] == 0
    emulator.drain()

    logged = [e for e in emulator.events() if e["event"]["detail"].get("eventID") == marker]
    assert [(e["bus"], e["rules"]) for e in logged] == [("default", [])]


def test_the_governance_bus_refuses_another_accounts_principal(emulator: RunningEmulator) -> None:
    emulator.control("POST", "principals", {"outsider": "arn:aws:iam::444455556666:user/mallory"})
    detail = cloudtrail("deregister_image", requestParameters={"imageId": "ami-0123456789abcdef0"})
    detail["eventID"] = "forged-by-another-account"
    entry = {"Source": "aws.ec2", "DetailType": "AWS API Call via CloudTrail", "Detail": json.dumps(detail),
             "EventBusName": "ami-governance"}  # fmt: skip

    with pytest.raises(ClientError) as refused:
        emulator.client("events", HOME, access_key="outsider").put_events(Entries=[entry])

    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "arn:aws:iam::444455556666:user/mallory" in refused.value.response["Error"]["Message"]
    emulator.drain()
    assert [e for e in emulator.events() if e["event"]["detail"].get("eventID") == "forged-by-another-account"] == []
