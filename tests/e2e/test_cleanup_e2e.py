"""Snapshot clean-up end to end on the emulator: DeregisterImage in, snapshot outcomes out."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from emulator.assembly import synthesize
from tests.e2e.conftest import REPO_ROOT, start_emulator, stop_emulator

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
    running = start_emulator(synthesize(workdir / "cdk.out", policy_file), workdir / "emulator")
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
