"""DeregisterImage on moto with emulator/moto_extensions.py applied behaves as the EC2 API reference documents it.

moto 5.2.5 accepts `DeleteAssociatedSnapshots=True` and deletes nothing. The clean-up's integration tests and the
emulator rely on the AWS behaviour: the snapshots go with the AMI, except those another AMI uses (`skipped`), and
the answer lists one `DeleteSnapshotResults` entry per snapshot.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from emulator import moto_extensions

REGION = "us-east-1"

moto_extensions.apply()


@pytest.fixture
def ec2() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("ec2", region_name=REGION)


def snapshot(ec2: Any, size: int = 8) -> str:
    volume = ec2.create_volume(Size=size, AvailabilityZone=f"{REGION}a")["VolumeId"]
    return str(ec2.create_snapshot(VolumeId=volume)["SnapshotId"])


def register(ec2: Any, name: str, snapshot_ids: list[str]) -> str:
    mappings = [
        {"DeviceName": f"/dev/sd{chr(ord('a') + i)}", "Ebs": {"SnapshotId": s}} for i, s in enumerate(snapshot_ids)
    ]
    return str(ec2.register_image(Name=name, RootDeviceName="/dev/sda", BlockDeviceMappings=mappings)["ImageId"])


def exists(ec2: Any, snapshot_id: str) -> bool:
    return bool(ec2.describe_snapshots(Filters=[{"Name": "snapshot-id", "Values": [snapshot_id]}])["Snapshots"])


def test_delete_associated_snapshots_deletes_those_no_other_ami_uses(ec2: Any) -> None:
    # Given an AMI with two snapshots, the second also used by another (disabled) AMI
    own, shared = snapshot(ec2), snapshot(ec2)
    image_id = register(ec2, "leaving", [own, shared])
    other = register(ec2, "staying", [shared])
    ec2.disable_image(ImageId=other)

    # When it is deregistered with DeleteAssociatedSnapshots
    response = ec2.deregister_image(ImageId=image_id, DeleteAssociatedSnapshots=True)

    # Then its own snapshot is gone, the shared one skipped and kept, and the answer says so per snapshot
    assert response["Return"] is True
    assert response["DeleteSnapshotResults"] == [
        {"SnapshotId": own, "ReturnCode": "success"},
        {"SnapshotId": shared, "ReturnCode": "skipped"},
    ]
    assert not exists(ec2, own)
    assert exists(ec2, shared)
    assert ec2.describe_images(Owners=["self"], Filters=[{"Name": "image-id", "Values": [image_id]}])["Images"] == []


def test_without_the_flag_the_snapshots_stay(ec2: Any) -> None:
    own = snapshot(ec2)
    image_id = register(ec2, "leaving", [own])

    response = ec2.deregister_image(ImageId=image_id)

    assert "DeleteSnapshotResults" not in response
    assert exists(ec2, own)


def test_an_unknown_ami_is_still_moto_s_error(ec2: Any) -> None:
    with pytest.raises(ClientError, match=r"InvalidAMIID\.NotFound"):
        ec2.deregister_image(ImageId="ami-0123456789abcdef0", DeleteAssociatedSnapshots=True)


def test_registered_mappings_report_their_snapshot_size(ec2: Any) -> None:
    # EC2 fills VolumeSize from the snapshot when RegisterImage names none: the inventory records the sizes
    image_id = register(ec2, "sized", [snapshot(ec2, size=30)])

    [mapping] = ec2.describe_images(ImageIds=[image_id])["Images"][0]["BlockDeviceMappings"]

    assert mapping["Ebs"]["VolumeSize"] == 30
