"""Snapshot clean-up after deregistration, on moto (with emulator/moto_extensions.py, which adds what moto lacks
for snapshots: registered block device mappings, the snapshot-id image filter, DeleteSnapshot's in-use check)."""

from __future__ import annotations

import math
from datetime import timedelta

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

from ami_governance.adapters.clients import client
from ami_governance.adapters.ec2 import Ec2Images, TagLimitExceeded
from ami_governance.services import wiring
from ami_governance.services.cleanup import CleanupIncomplete, CleanupInProgress
from tests.integration.conftest import ACCOUNT, PUBLIC_AMI, deregister_event, state_event, tags_event
from tests.support import load_event, recording_api_calls

pytestmark = pytest.mark.integration

PREFIX = "ami-governance:"


def delete_mode(policy_with, **cleanup):
    return policy_with(cleanup={"dry_run": False, **cleanup})


def snapshot(estate, description="", region="us-east-1", size=8, tags=None):
    ec2 = estate.ec2(region)
    volume = ec2.create_volume(Size=size, AvailabilityZone=f"{region}a")["VolumeId"]
    request = {"VolumeId": volume, "Description": description}
    if tags:
        request["TagSpecifications"] = [
            {"ResourceType": "snapshot", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        ]
    return ec2.create_snapshot(**request)["SnapshotId"]


def register(estate, name, snapshot_ids, region="us-east-1"):
    mappings = [
        {"DeviceName": f"/dev/sd{chr(ord('a') + i)}", "Ebs": {"SnapshotId": s}} for i, s in enumerate(snapshot_ids)
    ]
    return estate.ec2(region).register_image(Name=name, RootDeviceName="/dev/sda", BlockDeviceMappings=mappings)[
        "ImageId"
    ]


def recorded_image(estate, invoke, snapshot_ids, name="payments-api-al2023-1.0.0"):
    """An AMI using these snapshots, recorded in the inventory by its `available` event."""
    image_id = register(estate, name, snapshot_ids)
    invoke(state_event(image_id))
    assert estate.inventory_item(image_id)["snapshot_ids"]
    return image_id


def exists(estate, snapshot_id):
    return bool(
        estate.ec2().describe_snapshots(Filters=[{"Name": "snapshot-id", "Values": [snapshot_id]}])["Snapshots"]
    )


def outcomes(estate, image_id):
    item = estate.inventory_item(image_id)
    return {snap: value["outcome"] for snap, value in item["cleanup_snapshots"].items()}


def test_deregistered_ami_snapshots_are_deleted_recorded_and_summarised(estate, invoke, invoke_cleanup, policy_with):
    # Given delete mode and a recorded AMI with two snapshots
    estate.set_policy(delete_mode(policy_with))
    first, second = snapshot(estate, size=8), snapshot(estate, size=30)
    image_id = recorded_image(estate, invoke, [first, second])

    # When it is deregistered
    estate.ec2().deregister_image(ImageId=image_id)
    result = invoke_cleanup(deregister_event(image_id))

    # Then both snapshots are gone, each outcome is recorded, and one summary states the saving
    assert not exists(estate, first)
    assert not exists(estate, second)
    assert result["images"][0]["result"] == "cleaned"
    assert outcomes(estate, image_id) == {first: "deleted", second: "deleted"}
    item = estate.inventory_item(image_id)
    assert item["cleanup_status"] == "done"
    assert item["cleanup_gb"] == 38
    [notice] = [n for n in estate.notices() if n["body"]["kind"] == "ami-snapshots-cleaned"]
    assert notice["subject"] == f"AMI {image_id} deregistered in us-east-1: deleted 2 of 2 snapshots"
    assert notice["body"]["gb_freed"] == 38
    assert notice["body"]["estimated_monthly_saving_usd_upper_bound"] == 1.9


def test_dry_run_deletes_nothing_and_reports_everything(estate, invoke, invoke_cleanup):
    # Given the repository policy (dry-run)
    snap = snapshot(estate)
    image_id = recorded_image(estate, invoke, [snap])
    estate.ec2().deregister_image(ImageId=image_id)

    with recording_api_calls() as api:
        result = invoke_cleanup(deregister_event(image_id))

    assert exists(estate, snap)
    assert "DeleteSnapshot" not in api.operations("ec2")
    assert result["images"][0]["snapshots"] == [{"snapshot_id": snap, "outcome": "would-delete", "size_gb": 8}]
    assert estate.inventory_item(image_id)["cleanup_status"] == "dry-run"
    [notice] = [n for n in estate.notices() if n["body"]["kind"] == "ami-snapshots-cleanup-dry-run"]
    assert notice["body"]["gb_that_would_be_freed"] == 8


def test_snapshot_shared_with_another_ami_is_kept(estate, invoke, invoke_cleanup, policy_with):
    estate.set_policy(delete_mode(policy_with))
    shared, own = snapshot(estate), snapshot(estate)
    image_id = recorded_image(estate, invoke, [shared, own])
    other = register(estate, "other-al2023-1.0.0", [shared])
    estate.ec2().deregister_image(ImageId=image_id)

    invoke_cleanup(deregister_event(image_id))

    assert exists(estate, shared)
    assert not exists(estate, own)
    assert outcomes(estate, image_id)[shared] == f"kept: used by {other}"


def test_snapshot_of_a_disabled_ami_is_kept(estate, invoke, invoke_cleanup, policy_with):
    estate.set_policy(delete_mode(policy_with))
    shared = snapshot(estate)
    image_id = recorded_image(estate, invoke, [shared])
    disabled = register(estate, "disabled-al2023-1.0.0", [shared])
    estate.ec2().disable_image(ImageId=disabled)
    estate.ec2().deregister_image(ImageId=image_id)

    invoke_cleanup(deregister_event(image_id))

    assert exists(estate, shared)
    assert outcomes(estate, image_id)[shared] == f"kept: used by {disabled}"


def test_protected_snapshot_is_kept(estate, invoke, invoke_cleanup, policy_with):
    estate.set_policy(delete_mode(policy_with))
    protected = snapshot(estate, tags={f"{PREFIX}protected": "legal hold"})
    image_id = recorded_image(estate, invoke, [protected])
    estate.ec2().deregister_image(ImageId=image_id)

    invoke_cleanup(deregister_event(image_id))

    assert exists(estate, protected)
    assert outcomes(estate, image_id)[protected] == f"kept: protected by {PREFIX}protected"


def test_snapshot_owned_by_another_account_is_kept(estate, invoke, invoke_cleanup, policy_with):
    # Given an inventory record naming a snapshot that another account owns (a public AMI's)
    estate.set_policy(delete_mode(policy_with))
    foreign = estate.ec2().describe_images(ImageIds=[PUBLIC_AMI])["Images"][0]["BlockDeviceMappings"][0]["Ebs"][
        "SnapshotId"
    ]
    own = snapshot(estate)
    image_id = recorded_image(estate, invoke, [own])
    wiring.reset()
    boto3.client("dynamodb", region_name="us-east-1").update_item(
        TableName="ami-governance-inventory",
        Key={"image_id": {"S": image_id}, "region": {"S": "us-east-1"}},
        UpdateExpression="SET snapshot_ids = :s",
        ExpressionAttributeValues={":s": {"L": [{"S": own}, {"S": foreign}]}},
    )
    estate.ec2().deregister_image(ImageId=image_id)

    invoke_cleanup(deregister_event(image_id))

    assert outcomes(estate, image_id)[foreign].startswith("kept: owned by account ")
    assert exists(estate, foreign)
    assert not exists(estate, own)


def test_ami_from_before_the_deployment_is_found_by_both_snapshot_descriptions(estate, invoke_cleanup, policy_with):
    # Given no inventory record, and snapshots described in both AWS formats for an AMI deregistered just now
    estate.set_policy(delete_mode(policy_with))
    image_id = "ami-0123456789abcdef0"
    created = snapshot(estate, f"Created by CreateImage(i-0123456789abcdef0) for {image_id} from vol-0123456789abcdef0")
    copied = snapshot(
        estate,
        f"Copied for DestinationAmi {image_id} from SourceAmi ami-0fedcba9876543210 "
        "for SourceSnapshot snap-0123456789abcdef0. Task created on 1,700,000,000.",
    )
    still_used = snapshot(estate, f"Created by CreateImage(i-0123456789abcdef0) for {image_id}")
    other = register(estate, "keeper-al2023-1.0.0", [still_used])
    lookalike = snapshot(estate, f"Created by CreateImage(i-0123456789abcdef0) for {image_id}9")

    with recording_api_calls() as api:
        result = invoke_cleanup(deregister_event(image_id))

    assert result["images"][0]["source"] == "description"
    assert outcomes(estate, image_id) == {created: "deleted", copied: "deleted", still_used: f"kept: used by {other}"}
    assert exists(estate, lookalike)
    assert api.operations("ec2").count("DescribeSnapshots") == 2  # one search by description, one read


def test_duplicate_and_out_of_order_events_clean_up_once(estate, invoke, invoke_cleanup, policy_with):
    estate.set_policy(delete_mode(policy_with))
    snap = snapshot(estate)
    image_id = recorded_image(estate, invoke, [snap])
    estate.ec2().deregister_image(ImageId=image_id)

    with recording_api_calls() as api:
        first = invoke_cleanup(state_event(image_id, state="deregistered"))  # the state change first
        second = invoke_cleanup(deregister_event(image_id))
        third = invoke_cleanup(deregister_event(image_id))  # a duplicate delivery

    assert first["images"][0]["result"] == "cleaned"
    assert second["images"][0]["result"] == "already-handled"
    assert third["images"][0]["result"] == "already-handled"
    assert api.operations("ec2").count("DeleteSnapshot") == 1
    assert len([n for n in estate.notices() if n["body"]["kind"] == "ami-snapshots-cleaned"]) == 1


def test_throttling_on_half_the_calls_is_absorbed_by_botocore_retries(estate, invoke, invoke_cleanup, policy_with):
    # Given EC2 answering every other call with RequestLimitExceeded (botocore's standard retries back off)
    estate.set_policy(delete_mode(policy_with))
    snaps = [snapshot(estate) for _ in range(4)]
    image_id = recorded_image(estate, invoke, snaps)
    estate.ec2().deregister_image(ImageId=image_id)
    ec2_client = wiring._images_in("us-east-1")._ec2
    calls = []

    def throttle_every_other_call(request, **_):
        calls.append(request.url)
        if len(calls) % 2 == 1:
            body = (
                b"<Response><Errors><Error><Code>RequestLimitExceeded</Code>"
                b"<Message>Request limit exceeded.</Message></Error></Errors></Response>"
            )
            return AWSResponse(request.url, 503, {}, _Raw(body))
        return None

    ec2_client.meta.events.register_first("before-send.ec2", throttle_every_other_call)
    try:
        with recording_api_calls() as api:
            result = invoke_cleanup(deregister_event(image_id))
    finally:
        ec2_client.meta.events.unregister("before-send.ec2", throttle_every_other_call)

    # Then every snapshot is deleted exactly once, and half the HTTP attempts were throttled
    assert result["images"][0]["result"] == "cleaned"
    assert not any(exists(estate, s) for s in snaps)
    assert api.operations("ec2").count("DeleteSnapshot") == 4
    assert len(calls) >= 2 * len(api.operations("ec2")) - 1


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_):
        yield self._body

    def read(self, *_):
        return self._body


def test_snapshots_that_deregister_image_already_deleted_are_recorded_as_such(
    estate, invoke, invoke_cleanup, policy_with
):
    # Given DeregisterImage called with DeleteAssociatedSnapshots=True (moto ignores the flag: the test deletes)
    estate.set_policy(delete_mode(policy_with))
    snap = snapshot(estate)
    image_id = recorded_image(estate, invoke, [snap])
    estate.ec2().deregister_image(ImageId=image_id)
    estate.ec2().delete_snapshot(SnapshotId=snap)

    invoke_cleanup(deregister_event(image_id, delete_associated_snapshots=True))

    assert outcomes(estate, image_id) == {snap: "deleted by DeregisterImage"}


def test_a_failed_delete_is_recorded_raised_and_finished_by_the_retry(
    estate, invoke, invoke_cleanup, policy_with, monkeypatch
):
    estate.set_policy(delete_mode(policy_with))
    good, bad = snapshot(estate), snapshot(estate)
    image_id = recorded_image(estate, invoke, [good, bad])
    estate.ec2().deregister_image(ImageId=image_id)
    real_delete = Ec2Images.delete_snapshot

    def refuse_one(self, snapshot_id):
        if snapshot_id == bad:
            raise ClientError({"Error": {"Code": "UnauthorizedOperation", "Message": "no"}}, "DeleteSnapshot")
        return real_delete(self, snapshot_id)

    monkeypatch.setattr(Ec2Images, "delete_snapshot", refuse_one)
    with pytest.raises(CleanupIncomplete, match="UnauthorizedOperation"):
        invoke_cleanup(deregister_event(image_id))
    assert outcomes(estate, image_id) == {good: "deleted", bad: "failed: UnauthorizedOperation"}
    assert estate.inventory_item(image_id)["cleanup_status"] == "failed"

    monkeypatch.setattr(Ec2Images, "delete_snapshot", real_delete)
    with recording_api_calls() as api:
        invoke_cleanup(deregister_event(image_id))

    assert outcomes(estate, image_id) == {good: "deleted", bad: "deleted"}
    assert api.operations("ec2").count("DeleteSnapshot") == 1


def test_blast_radius_cap_limits_deletions_per_deregistration(estate, invoke, invoke_cleanup, policy_with):
    estate.set_policy(delete_mode(policy_with, max_snapshots_per_event=1))
    first, second = snapshot(estate), snapshot(estate)
    image_id = recorded_image(estate, invoke, [first, second])
    estate.ec2().deregister_image(ImageId=image_id)

    invoke_cleanup(deregister_event(image_id))

    assert outcomes(estate, image_id) == {first: "deleted", second: "kept: blast-radius cap of 1 reached"}
    assert exists(estate, second)


def test_younger_than_the_minimum_age_is_kept(estate, invoke, invoke_cleanup, policy_with):
    estate.set_policy(delete_mode(policy_with, min_age_days=30))
    snap = snapshot(estate)
    image_id = recorded_image(estate, invoke, [snap])
    estate.ec2().deregister_image(ImageId=image_id)

    invoke_cleanup(deregister_event(image_id))

    assert outcomes(estate, image_id) == {snap: "kept: younger than 30 days"}


def test_cascade_deregisters_recorded_replicas(estate, invoke, invoke_cleanup, policy_with):
    # Given a source AMI whose inventory records a replica in eu-west-1 (written by replication)
    estate.set_policy(delete_mode(policy_with, cascade_to_replicas=True))
    image_id = recorded_image(estate, invoke, [snapshot(estate)])
    replica = estate.ec2("eu-west-1").copy_image(SourceImageId=image_id, SourceRegion="us-east-1", Name="replica")[
        "ImageId"
    ]
    boto3.client("dynamodb", region_name="us-east-1").update_item(
        TableName="ami-governance-inventory",
        Key={"image_id": {"S": image_id}, "region": {"S": "us-east-1"}},
        UpdateExpression="SET replicas = :r",
        ExpressionAttributeValues={":r": {"M": {"eu-west-1": {"M": {"image_id": {"S": replica}}}}}},
    )
    estate.ec2().deregister_image(ImageId=image_id)

    result = invoke_cleanup(deregister_event(image_id))

    assert result["images"][0]["replicas"] == {replica: "deregistered in eu-west-1"}
    assert estate.ec2("eu-west-1").describe_images(Owners=["self"])["Images"] == []


def test_api_calls_for_n_snapshots(estate, invoke_cleanup, policy_with):
    # Given an AMI whose inventory lists 250 snapshots
    estate.set_policy(delete_mode(policy_with, max_snapshots_per_event=1000))
    snaps = [snapshot(estate) for _ in range(250)]
    image_id = "ami-0aaaaaaaaaaaaaaa1"
    boto3.client("dynamodb", region_name="us-east-1").put_item(
        TableName="ami-governance-inventory",
        Item={
            "image_id": {"S": image_id},
            "region": {"S": "us-east-1"},
            "snapshot_ids": {"L": [{"S": s} for s in snaps]},
        },
    )

    with recording_api_calls() as api:
        invoke_cleanup(deregister_event(image_id))

    operations = api.operations("ec2")
    describes = [op for op in operations if op.startswith("Describe")]
    assert operations.count("DeleteSnapshot") == 250
    assert len(describes) <= math.ceil(250 / 200) + 2
    assert not any(exists(estate, s) for s in snaps[:3])


def test_other_states_and_calls_are_not_cleanup_events(estate, invoke_cleanup):
    available = invoke_cleanup(state_event("ami-0123456789abcdef0", state="available"))
    failed_call = deregister_event("ami-0123456789abcdef0")
    failed_call["detail"]["errorCode"] = "InvalidAMIID.NotFound"

    assert available == {
        "status": "ignored",
        "event_id": available["event_id"],
        "reason": "unsupported AMI state available",
        "images": [],
    }
    assert invoke_cleanup(failed_call)["reason"] == "the call failed with InvalidAMIID.NotFound"


def test_a_crash_after_the_claim_releases_it_for_the_retry(estate, invoke, invoke_cleanup, policy_with, monkeypatch):
    # Given EC2 refusing the marking tag once (any error between claim and record)
    estate.set_policy(delete_mode(policy_with))
    snap = snapshot(estate)
    image_id = recorded_image(estate, invoke, [snap])
    estate.ec2().deregister_image(ImageId=image_id)
    real_create_tags = Ec2Images.create_tags

    def refuse(self, resource_ids, tags):
        raise ClientError({"Error": {"Code": "UnauthorizedOperation", "Message": "no"}}, "CreateTags")

    monkeypatch.setattr(Ec2Images, "create_tags", refuse)
    with pytest.raises(ClientError, match="UnauthorizedOperation"):
        invoke_cleanup(deregister_event(image_id))

    # Then the claim is released (failed), so the retry does the work instead of reporting it done
    assert estate.inventory_item(image_id)["cleanup_status"] == "failed"
    monkeypatch.setattr(Ec2Images, "create_tags", real_create_tags)
    assert invoke_cleanup(deregister_event(image_id))["images"][0]["result"] == "cleaned"
    assert not exists(estate, snap)


class LambdaTimeout(BaseException):
    """The run ends where it is, as Lambda ends one at its timeout: no handler of the code runs after it."""


def test_a_run_that_ends_before_its_summary_is_sent_leaves_the_summary_to_the_retry(
    estate, invoke, invoke_cleanup, policy_with, monkeypatch
):
    from ami_governance.adapters.notifications import Notifier
    from tests.faults import clock_advanced

    # Given a clean-up whose run ends after recording its outcomes, before SNS took the summary
    estate.set_policy(delete_mode(policy_with))
    snap = snapshot(estate)
    image_id = recorded_image(estate, invoke, [snap])
    estate.ec2().deregister_image(ImageId=image_id)
    real_publish = Notifier.publish

    def ends_there(self, notice):
        if notice.body.get("kind") == "ami-snapshots-cleaned":
            raise LambdaTimeout
        return real_publish(self, notice)

    monkeypatch.setattr(Notifier, "publish", ends_there)
    with pytest.raises(LambdaTimeout):
        invoke_cleanup(deregister_event(image_id))
    monkeypatch.setattr(Notifier, "publish", real_publish)

    # Then the outcomes are recorded, and the clean-up is not marked done: its claim is still held
    assert outcomes(estate, image_id) == {snap: "deleted"}
    assert estate.inventory_item(image_id)["cleanup_status"] == "in-progress"
    assert summaries(estate) == []

    # And the retry, once the dead run's claim has expired, sends the one summary, of the deletion the run made
    with clock_advanced(timedelta(minutes=30)):
        result = invoke_cleanup(deregister_event(image_id))

    assert result["images"][0]["result"] == "cleaned"
    assert estate.inventory_item(image_id)["cleanup_status"] == "done"
    [notice] = summaries(estate)
    assert notice["subject"] == f"AMI {image_id} deregistered in us-east-1: deleted 1 of 1 snapshots"


def test_a_claim_held_by_an_unfinished_run_makes_the_other_delivery_retry(estate, invoke, invoke_cleanup):
    image_id = recorded_image(estate, invoke, [snapshot(estate)])
    boto3.client("dynamodb", region_name="us-east-1").update_item(
        TableName="ami-governance-inventory",
        Key={"image_id": {"S": image_id}, "region": {"S": "us-east-1"}},
        UpdateExpression="SET cleanup_status = :s, cleanup_lease_until = :l",
        ExpressionAttributeValues={":s": {"S": "in-progress"}, ":l": {"S": "2999-01-01T00:00:00Z"}},
    )
    estate.ec2().deregister_image(ImageId=image_id)

    with pytest.raises(CleanupInProgress):
        invoke_cleanup(deregister_event(image_id))


def test_an_event_for_an_ami_that_is_still_registered_decides_nothing(estate, invoke, invoke_cleanup, policy_with):
    # Given a stale or replayed DeregisterImage event for an AMI that exists
    estate.set_policy(delete_mode(policy_with))
    snap = snapshot(estate)
    image_id = recorded_image(estate, invoke, [snap])

    stale = invoke_cleanup(deregister_event(image_id))

    # Then nothing is deleted or marked done, and the real deregistration later is cleaned up
    assert stale["status"] == "ignored"
    assert stale["reason"] == f"{image_id} is still registered"
    assert exists(estate, snap)
    estate.ec2().deregister_image(ImageId=image_id)
    assert invoke_cleanup(deregister_event(image_id))["images"][0]["result"] == "cleaned"
    assert not exists(estate, snap)


def test_the_cap_holds_across_retries(estate, invoke, invoke_cleanup, policy_with, monkeypatch):
    # Given a cap of 2 and three snapshots, the second failing once
    estate.set_policy(delete_mode(policy_with, max_snapshots_per_event=2))
    snaps = [snapshot(estate) for _ in range(3)]
    image_id = recorded_image(estate, invoke, snaps)
    estate.ec2().deregister_image(ImageId=image_id)
    real_delete = Ec2Images.delete_snapshot

    def fail_second(self, snapshot_id):
        if snapshot_id == snaps[1]:
            raise ClientError({"Error": {"Code": "InternalError", "Message": "x"}}, "DeleteSnapshot")
        return real_delete(self, snapshot_id)

    monkeypatch.setattr(Ec2Images, "delete_snapshot", fail_second)
    with pytest.raises(CleanupIncomplete):
        invoke_cleanup(deregister_event(image_id))
    monkeypatch.setattr(Ec2Images, "delete_snapshot", real_delete)
    invoke_cleanup(deregister_event(image_id))

    # Then two deletions in all: the retry may delete the failed one, not the capped one
    assert [exists(estate, s) for s in snaps] == [False, False, True]


def test_cascade_keeps_a_protected_replica(estate, invoke, invoke_cleanup, policy_with):
    estate.set_policy(delete_mode(policy_with, cascade_to_replicas=True))
    image_id = recorded_image(estate, invoke, [snapshot(estate)])
    replica = estate.ec2("eu-west-1").copy_image(SourceImageId=image_id, SourceRegion="us-east-1", Name="replica")[
        "ImageId"
    ]
    estate.ec2("eu-west-1").create_tags(Resources=[replica], Tags=[{"Key": f"{PREFIX}protected", "Value": "yes"}])
    boto3.client("dynamodb", region_name="us-east-1").update_item(
        TableName="ami-governance-inventory",
        Key={"image_id": {"S": image_id}, "region": {"S": "us-east-1"}},
        UpdateExpression="SET replicas = :r",
        ExpressionAttributeValues={":r": {"M": {"eu-west-1": {"M": {"image_id": {"S": replica}}}}}},
    )
    estate.ec2().deregister_image(ImageId=image_id)

    result = invoke_cleanup(deregister_event(image_id))

    assert result["images"][0]["replicas"] == {replica: f"kept in eu-west-1: protected by {PREFIX}protected"}
    assert estate.ec2("eu-west-1").describe_images(ImageIds=[replica])["Images"]


def test_a_snapshot_that_cannot_be_marked_is_not_deleted(estate, invoke, invoke_cleanup, policy_with, monkeypatch):
    # Given two snapshots, one already carrying the maximum number of tags
    estate.set_policy(delete_mode(policy_with))
    full, fine = snapshot(estate), snapshot(estate)
    image_id = recorded_image(estate, invoke, [full, fine])
    estate.ec2().deregister_image(ImageId=image_id)
    real_create_tags = Ec2Images.create_tags

    def tag_limit(self, resource_ids, tags):
        if full in resource_ids:
            raise TagLimitExceeded("TagLimitExceeded")
        return real_create_tags(self, resource_ids, tags)

    monkeypatch.setattr(Ec2Images, "create_tags", tag_limit)
    invoke_cleanup(deregister_event(image_id))

    # Then it is kept (the Recycle Bin rule would not catch it), and the other one is deleted
    assert outcomes(estate, image_id) == {full: "kept: at the tag limit, cannot be marked", fine: "deleted"}


def test_a_temporary_reason_to_keep_leaves_the_clean_up_deferred(estate, invoke, invoke_cleanup, policy_with):
    estate.set_policy(delete_mode(policy_with, min_age_days=30))
    image_id = recorded_image(estate, invoke, [snapshot(estate)])
    estate.ec2().deregister_image(ImageId=image_id)

    result = invoke_cleanup(deregister_event(image_id))

    assert result["images"][0]["result"] == "deferred"
    assert estate.inventory_item(image_id)["cleanup_status"] == "deferred"


# ---- DeregisterImage(DeleteAssociatedSnapshots): right whichever event comes first ---------------------------------


def deregistered_by_call(estate, image_id, delete_associated_snapshots=True):
    """Deregister on moto (emulator/moto_extensions.py deletes the snapshots as EC2 does) and return the call's
    CloudTrail event, EC2's DeleteSnapshotResults in its responseElements as CloudTrail records them."""
    response = estate.ec2().deregister_image(ImageId=image_id, DeleteAssociatedSnapshots=delete_associated_snapshots)
    event = load_event("deregister_image_delete_snapshots")
    event["account"] = ACCOUNT
    event["detail"]["requestParameters"] = {
        "imageId": image_id,
        "deleteAssociatedSnapshots": delete_associated_snapshots,
    }
    elements = event["detail"]["responseElements"]
    if "DeleteSnapshotResults" in response:
        results = [
            {"snapshotId": r["SnapshotId"], "returnCode": r["ReturnCode"]} for r in response["DeleteSnapshotResults"]
        ]
        elements["deleteSnapshotResultSet"] = {"items": results}
    else:
        del elements["deleteSnapshotResultSet"]
    return event


def summaries(estate):
    return [n for n in estate.notices() if n["body"]["kind"].startswith("ami-snapshots-cleanup")
            or n["body"]["kind"] == "ami-snapshots-cleaned"]  # fmt: skip


def test_delete_associated_snapshots_with_the_call_first_is_recorded_and_summarised(
    estate, invoke, invoke_cleanup, policy_with
):
    # Given a recorded AMI with a 30 GB snapshot, deregistered with DeleteAssociatedSnapshots
    estate.set_policy(delete_mode(policy_with))
    snap = snapshot(estate, size=30)
    image_id = recorded_image(estate, invoke, [snap])
    call = deregistered_by_call(estate, image_id)
    assert not exists(estate, snap)  # EC2 deleted it

    # When the CloudTrail event comes first, then the state change
    first = invoke_cleanup(call)
    second = invoke_cleanup(state_event(image_id, state="deregistered"))

    # Then the snapshot is EC2's deletion, its size counts as freed, and one summary says so
    assert first["images"][0]["result"] == "cleaned"
    assert first["images"][0]["snapshots"] == [{"snapshot_id": snap, "outcome": "deleted by DeregisterImage",
                                                "size_gb": 30}]  # fmt: skip
    assert second["images"][0]["result"] == "already-handled"
    assert outcomes(estate, image_id) == {snap: "deleted by DeregisterImage"}
    assert estate.inventory_item(image_id)["cleanup_gb"] == 30
    [summary] = summaries(estate)
    assert summary["subject"] == f"AMI {image_id} deregistered in us-east-1: deleted 1 of 1 snapshots"
    assert summary["body"]["gb_freed"] == 30
    assert summary["body"]["gb_freed_by_deregister_image"] == 30
    assert summary["body"]["estimated_monthly_saving_usd_upper_bound"] == 1.5


def test_delete_associated_snapshots_with_the_state_change_first_is_reconciled_by_the_call(
    estate, invoke, invoke_cleanup, policy_with
):
    # Given a recorded AMI with its own snapshot and one shared with another AMI, deregistered with
    # DeleteAssociatedSnapshots (EC2 deletes the first and skips the second)
    estate.set_policy(delete_mode(policy_with))
    own, shared = snapshot(estate, size=30), snapshot(estate, size=8)
    image_id = recorded_image(estate, invoke, [own, shared])
    other = register(estate, "other-al2023-1.0.0", [shared])
    call = deregistered_by_call(estate, image_id)

    # When the state change comes first (the usual order on AWS)
    first = invoke_cleanup(state_event(image_id, state="deregistered"))

    # Then the gone snapshot awaits the call, nothing is summarised yet, and a repeated state change changes nothing
    assert first["images"][0]["result"] == "awaiting-call"
    assert outcomes(estate, image_id) == {
        own: "gone: awaiting the DeregisterImage call",
        shared: f"kept: used by {other}",
    }
    assert estate.inventory_item(image_id)["cleanup_status"] == "awaiting-call"
    assert summaries(estate) == []
    assert invoke_cleanup(state_event(image_id, state="deregistered"))["images"][0]["result"] == "already-handled"

    # When the CloudTrail event arrives
    settled = invoke_cleanup(call)

    # Then the outcome is EC2's deletion, the GB freed are right, and exactly one summary is sent
    assert settled["images"][0]["result"] == "cleaned"
    assert outcomes(estate, image_id) == {own: "deleted by DeregisterImage", shared: f"kept: used by {other}"}
    item = estate.inventory_item(image_id)
    assert (item["cleanup_status"], item["cleanup_gb"]) == ("done", 30)
    [summary] = summaries(estate)
    assert summary["subject"] == f"AMI {image_id} deregistered in us-east-1: deleted 1 of 2 snapshots"
    assert summary["body"]["gb_freed"] == 30
    assert exists(estate, shared)
    # And a late duplicate of either event sends nothing more (the call in another envelope: the same one is
    # answered from its idempotency record)
    assert invoke_cleanup({**call, "id": "late-duplicate"})["images"][0]["result"] == "already-handled"
    assert invoke_cleanup(state_event(image_id, state="deregistered"))["images"][0]["result"] == "already-handled"
    assert summaries(estate) == []


def test_a_snapshot_gone_after_a_plain_deregistration_is_not_counted_as_freed(
    estate, invoke, invoke_cleanup, policy_with
):
    # Given a DeregisterImage without DeleteAssociatedSnapshots, and one recorded snapshot deleted by hand at once
    estate.set_policy(delete_mode(policy_with))
    gone, left = snapshot(estate), snapshot(estate)
    image_id = recorded_image(estate, invoke, [gone, left])
    call = deregistered_by_call(estate, image_id, delete_associated_snapshots=False)
    estate.ec2().delete_snapshot(SnapshotId=gone)

    # When the state change comes first, then the call
    assert invoke_cleanup(state_event(image_id, state="deregistered"))["images"][0]["result"] == "awaiting-call"
    invoke_cleanup(call)

    # Then the clean-up deleted what was left, the gone one is not counted as freed, and one summary is sent
    recorded = outcomes(estate, image_id)
    assert recorded[left] == "deleted"
    assert recorded[gone] == "kept: gone: not found (already deleted, or in the Recycle Bin)"
    assert estate.inventory_item(image_id)["cleanup_gb"] == 8
    assert len(summaries(estate)) == 1


def test_ec2s_answer_decides_which_gone_snapshots_it_deleted(estate, invoke, invoke_cleanup, policy_with):
    # Given two recorded snapshots gone at deregistration, EC2's answer naming only the first as its deletion
    estate.set_policy(delete_mode(policy_with))
    by_ec2, by_someone_else = snapshot(estate), snapshot(estate)
    image_id = recorded_image(estate, invoke, [by_ec2, by_someone_else])
    call = deregistered_by_call(estate, image_id)
    call["detail"]["responseElements"]["deleteSnapshotResultSet"]["items"] = [
        {"snapshotId": by_ec2, "returnCode": "success"},
        {"snapshotId": by_someone_else, "returnCode": "client-error"},
    ]

    invoke_cleanup(call)

    recorded = outcomes(estate, image_id)
    assert recorded[by_ec2] == "deleted by DeregisterImage"
    assert recorded[by_someone_else] == "kept: gone: not found (already deleted, or in the Recycle Bin)"


def test_in_dry_run_what_deregister_image_deleted_is_reported_as_freed(estate, invoke, invoke_cleanup):
    # Given the repository policy (dry-run) and a deregistration that asked EC2 to delete the snapshot
    snap = snapshot(estate, size=30)
    image_id = recorded_image(estate, invoke, [snap])
    call = deregistered_by_call(estate, image_id)

    invoke_cleanup(state_event(image_id, state="deregistered"))
    invoke_cleanup(call)

    [summary] = summaries(estate)
    assert summary["subject"] == (
        f"AMI {image_id} deregistered in us-east-1: would delete 0 of 1 snapshots, EC2 deleted 1"
    )
    assert summary["body"]["gb_that_would_be_freed"] == 0
    assert summary["body"]["gb_freed_by_deregister_image"] == 30
    assert estate.inventory_item(image_id)["cleanup_status"] == "dry-run"


# ---- the protection tag on the AMI keeps its snapshots ------------------------------------------------------------


def test_a_protected_ami_deregistered_by_hand_keeps_its_snapshots(estate, invoke, invoke_cleanup, policy_with):
    # Given delete mode and an AMI that carried the protection tag when it became available
    estate.set_policy(delete_mode(policy_with))
    snap = snapshot(estate)
    image_id = register(estate, "payments-api-al2023-1.0.0", [snap])
    estate.ec2().create_tags(Resources=[image_id], Tags=[{"Key": f"{PREFIX}protected", "Value": "legal hold"}])
    invoke(state_event(image_id))

    # When someone deregisters it by hand
    estate.ec2().deregister_image(ImageId=image_id)
    result = invoke_cleanup(deregister_event(image_id))

    # Then its snapshot is kept and recorded as such, for good (not deferred)
    assert exists(estate, snap)
    assert outcomes(estate, image_id) == {snap: "kept: image protected"}
    assert result["images"][0]["result"] == "cleaned"
    assert estate.inventory_item(image_id)["cleanup_status"] == "done"


def test_protection_added_or_removed_later_is_recorded_by_the_tag_change(estate, invoke, invoke_cleanup, policy_with):
    # Given delete mode and two recorded AMIs: one protected after it became available, one unprotected since
    estate.set_policy(delete_mode(policy_with))
    kept_snap, freed_snap = snapshot(estate), snapshot(estate)
    protected = recorded_image(estate, invoke, [kept_snap])
    unprotected = register(estate, "payments-api-al2023-2.0.0", [freed_snap])
    estate.ec2().create_tags(Resources=[unprotected], Tags=[{"Key": f"{PREFIX}protected", "Value": "yes"}])
    invoke(state_event(unprotected))
    estate.ec2().create_tags(Resources=[protected], Tags=[{"Key": f"{PREFIX}protected", "Value": "yes"}])
    invoke(tags_event("create_tags_approval", [protected], {f"{PREFIX}protected": "yes"}))
    estate.ec2().delete_tags(Resources=[unprotected], Tags=[{"Key": f"{PREFIX}protected"}])
    invoke(tags_event("create_tags_approval", [unprotected], {f"{PREFIX}protected": ""}, event_name="DeleteTags"))

    # When both are deregistered
    for image_id in (protected, unprotected):
        estate.ec2().deregister_image(ImageId=image_id)
        invoke_cleanup(deregister_event(image_id))

    # Then the clean-up follows the protection as last recorded
    assert outcomes(estate, protected) == {kept_snap: "kept: image protected"}
    assert outcomes(estate, unprotected) == {freed_snap: "deleted"}


def test_a_snapshot_an_ami_takes_up_before_the_delete_is_kept_and_unmarked(estate, invoke, invoke_cleanup, policy_with):
    # Given delete mode and a recorded AMI with one snapshot, deregistered
    estate.set_policy(delete_mode(policy_with))
    snap = snapshot(estate)
    image_id = recorded_image(estate, invoke, [snap])
    estate.ec2().deregister_image(ImageId=image_id)
    # ...and someone registering a new AMI from that snapshot after the clean-up checked it, right before its
    # DeleteSnapshot (EC2 then refuses the deletion: InvalidSnapshot.InUse)
    taken_by: list[str] = []

    def race(**_):
        if not taken_by:
            taken_by.append(register(estate, "rebuilt-al2023-1.0.0", [snap]))

    client("ec2", "us-east-1").meta.events.register("before-call.ec2.DeleteSnapshot", race)

    # When the deregistration is cleaned up
    invoke_cleanup(deregister_event(image_id))

    # Then the snapshot is kept, recorded as in use, and the deletion mark is taken off it again (a Recycle Bin rule
    # on the mark must not match a snapshot that lives on)
    assert taken_by
    assert exists(estate, snap)
    assert outcomes(estate, image_id) == {snap: "kept: in use (DeleteSnapshot refused)"}
    [described] = estate.ec2().describe_snapshots(SnapshotIds=[snap])["Snapshots"]
    assert f"{PREFIX}cleanup" not in {t["Key"] for t in described.get("Tags", [])}
