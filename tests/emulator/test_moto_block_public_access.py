"""Block public access for AMIs and snapshots on moto with the emulator's extensions, per account and region.

moto 5.2.5 implements none of the six calls (NotImplementedError). Defaults follow the EC2 and EBS user guides:
AMIs are blocked (`block-new-sharing`) for a new account with no public AMI, snapshots are `unblocked`.
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
OTHER_REGION = "eu-west-1"
PUBLIC_AMI = "ami-12c6146b"

moto_extensions.apply()


@pytest.fixture
def ec2() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("ec2", region_name=REGION)


def own_image(ec2: Any) -> str:
    instance = ec2.run_instances(ImageId=PUBLIC_AMI, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    return str(ec2.create_image(InstanceId=instance, Name="shared")["ImageId"])


def make_public(ec2: Any, image_id: str) -> None:
    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"Group": "all"}]})


def test_defaults_are_aws_defaults_for_a_new_account(ec2: Any) -> None:
    image = ec2.get_image_block_public_access_state()
    snapshot = ec2.get_snapshot_block_public_access_state()

    assert (image["ImageBlockPublicAccessState"], image["ManagedBy"]) == ("block-new-sharing", "account")
    assert (snapshot["State"], snapshot["ManagedBy"]) == ("unblocked", "account")


def test_states_change_per_region(ec2: Any) -> None:
    # When image block public access is disabled and snapshot sharing fully blocked in one region
    assert ec2.disable_image_block_public_access()["ImageBlockPublicAccessState"] == "unblocked"
    assert ec2.enable_snapshot_block_public_access(State="block-all-sharing")["State"] == "block-all-sharing"

    # Then that region reports it, and another region keeps the defaults
    assert ec2.get_image_block_public_access_state()["ImageBlockPublicAccessState"] == "unblocked"
    assert ec2.get_snapshot_block_public_access_state()["State"] == "block-all-sharing"
    other = boto3.client("ec2", region_name=OTHER_REGION)
    assert other.get_image_block_public_access_state()["ImageBlockPublicAccessState"] == "block-new-sharing"
    assert other.get_snapshot_block_public_access_state()["State"] == "unblocked"

    # And both can be set back
    enabled = ec2.enable_image_block_public_access(ImageBlockPublicAccessState="block-new-sharing")
    assert enabled["ImageBlockPublicAccessState"] == "block-new-sharing"
    assert ec2.disable_snapshot_block_public_access()["State"] == "unblocked"
    assert ec2.get_snapshot_block_public_access_state()["State"] == "unblocked"


def test_unblocked_is_not_a_state_to_enable(ec2: Any) -> None:
    # "unblocked is not a valid value for EnableSnapshotBlockPublicAccess" (State doc)
    with pytest.raises(ClientError, match="InvalidParameterValue"):
        ec2.enable_snapshot_block_public_access(State="unblocked")


def test_an_ami_cannot_be_made_public_while_blocked(ec2: Any) -> None:
    # Given an AMI in a region where block public access for AMIs is on (the default)
    image_id = own_image(ec2)

    # When it is shared with everyone, then EC2 refuses, and the AMI stays private
    with pytest.raises(ClientError, match="OperationNotPermitted") as refused:
        make_public(ec2, image_id)
    assert "DisableImageBlockPublicAccess" in refused.value.response["Error"]["Message"]
    assert ec2.describe_images(ImageIds=[image_id])["Images"][0]["Public"] is False
    # Sharing with an account is not public sharing
    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"UserId": "111122223333"}]})


def test_an_ami_can_be_made_public_once_unblocked_and_stays_public_when_blocked_again(ec2: Any) -> None:
    image_id = own_image(ec2)
    ec2.disable_image_block_public_access()

    make_public(ec2, image_id)
    ec2.enable_image_block_public_access(ImageBlockPublicAccessState="block-new-sharing")

    # "if you already have public AMIs, they remain publicly available"
    assert ec2.describe_images(ImageIds=[image_id])["Images"][0]["Public"] is True
