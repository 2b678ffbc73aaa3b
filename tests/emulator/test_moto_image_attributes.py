"""AMI launch permissions on moto with emulator/moto_extensions applied behave as the EC2 API reference says.

moto 5.2.5 answers DescribeImageAttribute about an unknown or deregistered AMI with a KeyError (a 500) instead of
`InvalidAMIID.NotFound`, and keeps only the first organization, OU and group of ModifyImageAttribute's
`OperationType` form. Its DescribeImageAttribute entries themselves are right: the first test pins them, since the
report's reading of a public or organization-shared AMI rests on them.
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
ORG = "arn:aws:organizations::123456789012:organization/o-abcdefghij"
OTHER_ORG = "arn:aws:organizations::210987654321:organization/o-zyxwvutsrq"
OU = "arn:aws:organizations::123456789012:ou/o-abcdefghij/ou-ab12-cdefgh34"
OTHER_OU = "arn:aws:organizations::123456789012:ou/o-abcdefghij/ou-ab12-zzzzzz99"

moto_extensions.apply()


@pytest.fixture
def ec2() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("ec2", region_name=REGION)
        # A new account blocks public sharing of AMIs (emulator/moto_additions/block_public_access.py).
        client.disable_image_block_public_access()
        yield client


def image(ec2: Any) -> str:
    volume = ec2.create_volume(Size=8, AvailabilityZone=f"{REGION}a")["VolumeId"]
    snapshot = ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
    mappings = [{"DeviceName": "/dev/sda", "Ebs": {"SnapshotId": snapshot}}]
    return str(
        ec2.register_image(Name="shared-image", RootDeviceName="/dev/sda", BlockDeviceMappings=mappings)["ImageId"]
    )


def permissions(ec2: Any, image_id: str) -> list[dict[str, str]]:
    return list(ec2.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")["LaunchPermissions"])


def error_code(ec2: Any, image_id: str) -> str:
    with pytest.raises(ClientError) as raised:
        ec2.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")
    return str(raised.value.response["Error"]["Code"])


def test_every_kind_of_grantee_is_described_in_its_own_field(ec2: Any) -> None:
    # Given an AMI shared with an account, an organization, an OU and everyone
    image_id = image(ec2)
    grants = [{"UserId": "111122223333"}, {"Group": "all"}, {"OrganizationArn": ORG}, {"OrganizationalUnitArn": OU}]
    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": grants})

    # When its launch permissions are described, then each grantee is one entry, in botocore's LaunchPermission
    # fields, and DescribeImages calls it public
    assert permissions(ec2, image_id) == grants
    assert ec2.describe_images(ImageIds=[image_id])["Images"][0]["Public"] is True

    # and removing the group makes it private again, the other grantees staying
    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Remove": [{"Group": "all"}]})
    assert permissions(ec2, image_id) == [grants[0], grants[2], grants[3]]
    assert ec2.describe_images(ImageIds=[image_id])["Images"][0]["Public"] is False


def test_the_operation_type_form_applies_every_grantee_it_names(ec2: Any) -> None:
    # Given an AMI shared through the older form with two organizations, two OUs and two accounts
    image_id = image(ec2)
    ec2.modify_image_attribute(
        ImageId=image_id, Attribute="launchPermission", OperationType="add",
        UserIds=["111122223333", "444455556666"], OrganizationArns=[ORG, OTHER_ORG],
        OrganizationalUnitArns=[OU, OTHER_OU],
    )  # fmt: skip

    # Then all six are granted
    assert permissions(ec2, image_id) == [
        {"UserId": "111122223333"}, {"UserId": "444455556666"}, {"OrganizationArn": ORG},
        {"OrganizationArn": OTHER_ORG}, {"OrganizationalUnitArn": OU}, {"OrganizationalUnitArn": OTHER_OU},
    ]  # fmt: skip

    # and removing both organizations removes both
    ec2.modify_image_attribute(
        ImageId=image_id, Attribute="launchPermission", OperationType="remove", OrganizationArns=[ORG, OTHER_ORG]
    )
    assert {"OrganizationArn": OTHER_ORG} not in permissions(ec2, image_id)
    assert len(permissions(ec2, image_id)) == 4


def test_an_unknown_or_deregistered_ami_is_not_found(ec2: Any) -> None:
    # Given an AMI that was deregistered, and an id no AMI ever had
    gone = image(ec2)
    ec2.deregister_image(ImageId=gone)

    # Then DescribeImageAttribute answers EC2's not-found error for both
    assert error_code(ec2, gone) == "InvalidAMIID.NotFound"
    assert error_code(ec2, "ami-0123456789abcdef0") == "InvalidAMIID.NotFound"


def test_a_malformed_id_is_refused_as_malformed(ec2: Any) -> None:
    assert error_code(ec2, "ami-not-an-id") == "InvalidAMIID.Malformed"


def test_other_attributes_are_still_described(ec2: Any) -> None:
    # (the not-found check comes before moto's own handling, which the other attributes still go through)
    image_id = image(ec2)

    described = ec2.describe_image_attribute(ImageId=image_id, Attribute="description")

    assert described["ImageId"] == image_id
