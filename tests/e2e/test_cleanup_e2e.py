"""Snapshot clean-up end to end on the emulator: DeregisterImage in, snapshot outcomes out."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from emulator.assembly import synthesize
from tests.e2e.conftest import REPO_ROOT, notification_inbox, start_emulator, stop_emulator

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]


def ami_with_snapshot(emulator):
    instance_id = emulator.launch_instance()
    ec2 = emulator.client("ec2")
    image_id = ec2.create_image(InstanceId=instance_id, Name="payments-api-al2023-9.9.9")["ImageId"]
    emulator.drain()  # `available` records the snapshots in the inventory
    [mapping] = ec2.describe_images(ImageIds=[image_id])["Images"][0]["BlockDeviceMappings"]
    return image_id, mapping["Ebs"]["SnapshotId"]


def snapshot_exists(emulator, snapshot_id):
    found = emulator.client("ec2").describe_snapshots(Filters=[{"Name": "snapshot-id", "Values": [snapshot_id]}])
    return bool(found["Snapshots"])


def cleanups(ran, image_id):
    return [
        image
        for invocation in ran
        if invocation["outcome"] == "success" and invocation["result"]
        for image in invocation["result"]["images"]
        if image["image_id"] == image_id and "snapshots" in image
    ]


def test_deregistration_is_cleaned_up_once_in_dry_run_by_default(emulator):
    image_id, snapshot_id = ami_with_snapshot(emulator)

    emulator.client("ec2").deregister_image(ImageId=image_id)
    ran = emulator.drain()

    # Both the CloudTrail call and the state change reach the clean-up; the work is done once
    results = sorted(c["result"] for c in cleanups(ran, image_id))
    assert results == ["already-handled", "dry-run"]
    [done] = [c for c in cleanups(ran, image_id) if c["result"] == "dry-run"]
    assert done["snapshots"] == [{"snapshot_id": snapshot_id, "outcome": "would-delete", "size_gb": 15}]
    assert snapshot_exists(emulator, snapshot_id)


@pytest.fixture(scope="module")
def delete_mode_emulator(tmp_path_factory):
    policy = yaml.safe_load((REPO_ROOT / "governance-policy.yaml").read_text())
    policy["cleanup"]["dry_run"] = False
    workdir = tmp_path_factory.mktemp("delete-mode")
    policy_file = Path(workdir) / "policy.yaml"
    policy_file.write_text(yaml.safe_dump(policy))
    # CloudTrail events a little late, as on AWS: the AMI state change comes first here (the session emulator
    # shows the other order).
    running = start_emulator(
        synthesize(workdir / "cdk.out", policy_file), workdir / "emulator", "--cloudtrail-delay-seconds", "0.5"
    )
    yield running
    stop_emulator(running)


def test_in_delete_mode_the_leftover_snapshot_is_deleted(delete_mode_emulator):
    emulator = delete_mode_emulator
    image_id, snapshot_id = ami_with_snapshot(emulator)

    emulator.client("ec2").deregister_image(ImageId=image_id)
    ran = emulator.drain()

    [done] = [c for c in cleanups(ran, image_id) if c["result"] == "cleaned"]
    assert done["snapshots"] == [{"snapshot_id": snapshot_id, "outcome": "deleted", "size_gb": 15}]
    assert not snapshot_exists(emulator, snapshot_id)


def test_a_snapshot_still_used_by_another_ami_survives(delete_mode_emulator):
    emulator = delete_mode_emulator
    image_id, snapshot_id = ami_with_snapshot(emulator)
    ec2 = emulator.client("ec2")
    other = ec2.register_image(
        Name="shares-the-snapshot",
        RootDeviceName="/dev/sda1",
        BlockDeviceMappings=[{"DeviceName": "/dev/sda1", "Ebs": {"SnapshotId": snapshot_id}}],
    )["ImageId"]

    ec2.deregister_image(ImageId=image_id)
    ran = emulator.drain()

    [done] = [c for c in cleanups(ran, image_id) if c["result"] == "cleaned"]
    assert done["snapshots"][0]["outcome"] == f"kept: used by {other}"
    assert snapshot_exists(emulator, snapshot_id)


# ---- DeregisterImage(DeleteAssociatedSnapshots=True): the same outcome whichever event comes first ----------------


def handled(ran, image_id):
    """(detail-type of the event, the clean-up's answer for the AMI), in the order the clean-up ran."""
    return [
        (invocation["detail_type"], image)
        for invocation in ran
        if invocation["outcome"] == "success" and invocation["result"]
        for image in invocation["result"]["images"]
        if image["image_id"] == image_id and "snapshots" in image
    ]


def summaries(inbox):
    return [n for n in inbox() if n["body"]["kind"] in ("ami-snapshots-cleaned", "ami-snapshots-cleanup-dry-run")]


def test_delete_associated_snapshots_with_the_call_first(emulator):
    # Given the session emulator (dry-run; CloudTrail delivered before the state change) and a recorded AMI
    image_id, snapshot_id = ami_with_snapshot(emulator)
    inbox = notification_inbox(emulator)

    # When it is deregistered with DeleteAssociatedSnapshots
    response = emulator.client("ec2").deregister_image(ImageId=image_id, DeleteAssociatedSnapshots=True)
    ran = emulator.drain()

    # Then EC2 deleted the snapshot and said so, and CloudTrail recorded the request and the answer
    assert response["DeleteSnapshotResults"] == [{"SnapshotId": snapshot_id, "ReturnCode": "success"}]
    assert not snapshot_exists(emulator, snapshot_id)
    [record] = [e["event"]["detail"] for e in emulator.events() if e["bus"] == "default"
                and e["event"]["detail"].get("eventName") == "DeregisterImage"
                and e["event"]["detail"]["requestParameters"]["imageId"] == image_id]  # fmt: skip
    assert record["requestParameters"]["deleteAssociatedSnapshots"] is True
    assert record["responseElements"]["deleteSnapshotResultSet"] == {
        "items": [{"snapshotId": snapshot_id, "returnCode": "success"}]
    }
    # And the clean-up records EC2's deletion once, with its size, in one summary
    [(first_type, first), (second_type, second)] = handled(ran, image_id)
    assert (first_type, first["result"]) == ("AWS API Call via CloudTrail", "dry-run")
    assert first["snapshots"] == [{"snapshot_id": snapshot_id, "outcome": "deleted by DeregisterImage", "size_gb": 15}]
    assert (second_type, second["result"]) == ("EC2 AMI State Change", "already-handled")
    [summary] = summaries(inbox)
    assert summary["body"]["gb_freed_by_deregister_image"] == 15


def test_delete_associated_snapshots_with_the_state_change_first(delete_mode_emulator):
    # Given delete mode, CloudTrail delivered after the state change (as usually on AWS), and a recorded AMI
    emulator = delete_mode_emulator
    image_id, snapshot_id = ami_with_snapshot(emulator)
    inbox = notification_inbox(emulator)

    # When it is deregistered with DeleteAssociatedSnapshots
    emulator.client("ec2").deregister_image(ImageId=image_id, DeleteAssociatedSnapshots=True)
    ran = emulator.drain()

    # Then the state change finds the snapshot gone and waits for the call, which settles it: EC2's deletion, its
    # GB freed, one summary
    [(first_type, first), (second_type, second)] = handled(ran, image_id)
    assert (first_type, first["result"]) == ("EC2 AMI State Change", "awaiting-call")
    assert first["snapshots"][0]["outcome"] == "gone: awaiting the DeregisterImage call"
    assert (second_type, second["result"]) == ("AWS API Call via CloudTrail", "cleaned")
    assert second["snapshots"] == [{"snapshot_id": snapshot_id, "outcome": "deleted by DeregisterImage", "size_gb": 15}]
    assert second["gb_freed"] == 15
    [summary] = summaries(inbox)
    assert summary["subject"] == f"AMI {image_id} deregistered in us-east-1: deleted 1 of 1 snapshots"
    assert summary["body"]["gb_freed"] == 15
