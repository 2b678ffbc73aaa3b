"""DescribeImages, DisableImage and CreateImage on moto with emulator/moto_extensions applied behave as the EC2 API
reference documents them.

moto 5.2.5 always lists disabled AMIs (so a missing `IncludeDisabled=True` goes unnoticed until AWS hides them),
never pages (`MaxResults`/`NextToken` ignored), leaves a disabled public AMI public, and describes CreateImage's
snapshot without the ` from vol-…` part. The report's scan and the clean-up's "is this snapshot in use" check
depend on all of these.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from ami_governance.rules.cleanup import CREATED_BY_CREATE_IMAGE, description_filters
from emulator import moto_extensions

REGION = "us-east-1"
PUBLIC_AMI = "ami-12c6146b"

moto_extensions.apply()


@pytest.fixture
def ec2() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("ec2", region_name=REGION)


def create_images(ec2: Any, count: int) -> list[str]:
    instance_id = ec2.run_instances(ImageId=PUBLIC_AMI, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    return [str(ec2.create_image(InstanceId=instance_id, Name=f"app-{n}")["ImageId"]) for n in range(count)]


def ids(images: list[dict[str, Any]]) -> list[str]:
    return [image["ImageId"] for image in images]


# ---- IncludeDisabled -------------------------------------------------------------------------------------------


def test_disabled_amis_are_left_out_unless_include_disabled(ec2):
    # Given two own AMIs, one disabled
    kept, disabled = create_images(ec2, 2)
    ec2.disable_image(ImageId=disabled)

    # Then the default listing hides the disabled one; IncludeDisabled=True shows it, in state `disabled`
    assert ids(ec2.describe_images(Owners=["self"])["Images"]) == [kept]
    listed = {i["ImageId"]: i["State"] for i in ec2.describe_images(Owners=["self"], IncludeDisabled=True)["Images"]}
    assert listed == {kept: "available", disabled: "disabled"}


def test_a_disabled_ami_asked_for_by_id_needs_include_disabled_too(ec2):
    # The model documents the default ("No disabled AMIs are included in the response") with no exception for
    # ImageIds; the emulator follows the default.
    [disabled] = create_images(ec2, 1)
    ec2.disable_image(ImageId=disabled)

    assert ec2.describe_images(ImageIds=[disabled])["Images"] == []
    assert ids(ec2.describe_images(ImageIds=[disabled], IncludeDisabled=True)["Images"]) == [disabled]


def test_the_snapshot_filter_finds_a_disabled_ami_only_with_include_disabled(ec2):
    # The clean-up's in-use check (Ec2Images.images_using_snapshots) must see disabled AMIs as users
    [disabled] = create_images(ec2, 1)
    [snapshot] = [
        m["Ebs"]["SnapshotId"] for m in ec2.describe_images(ImageIds=[disabled])["Images"][0]["BlockDeviceMappings"]
    ]
    ec2.disable_image(ImageId=disabled)
    by_snapshot = [{"Name": "block-device-mapping.snapshot-id", "Values": [snapshot]}]

    assert ec2.describe_images(Filters=by_snapshot)["Images"] == []
    assert ids(ec2.describe_images(Filters=by_snapshot, IncludeDisabled=True)["Images"]) == [disabled]


# ---- paging ----------------------------------------------------------------------------------------------------


def test_max_results_pages_and_the_pages_add_up_to_the_whole_listing(ec2):
    created = create_images(ec2, 12)

    first = ec2.describe_images(Owners=["self"], MaxResults=5)
    pages = list(ec2.get_paginator("describe_images").paginate(Owners=["self"], PaginationConfig={"PageSize": 5}))

    assert len(first["Images"]) == 5
    assert first["NextToken"]
    assert [len(p["Images"]) for p in pages] == [5, 5, 2]
    assert "NextToken" not in pages[-1]
    assert sorted(i for p in pages for i in ids(p["Images"])) == sorted(created)


def test_without_max_results_everything_comes_in_one_answer(ec2):
    created = create_images(ec2, 12)

    answer = ec2.describe_images(Owners=["self"])

    assert sorted(ids(answer["Images"])) == sorted(created)
    assert "NextToken" not in answer


def test_an_ami_deregistered_between_pages_does_not_make_the_next_page_skip_another(ec2):
    created = create_images(ec2, 10)
    first = ec2.describe_images(Owners=["self"], MaxResults=5)

    ec2.deregister_image(ImageId=first["Images"][-1]["ImageId"])
    second = ec2.describe_images(Owners=["self"], MaxResults=5, NextToken=first["NextToken"])

    assert sorted(ids(first["Images"]) + ids(second["Images"])) == sorted(created)


def test_disabled_amis_are_paged_with_the_others(ec2):
    created = create_images(ec2, 7)
    ec2.disable_image(ImageId=created[0])

    pages = list(
        ec2.get_paginator("describe_images").paginate(
            Owners=["self"], IncludeDisabled=True, PaginationConfig={"PageSize": 5}
        )
    )

    assert [len(p["Images"]) for p in pages] == [5, 2]
    assert sorted(i for p in pages for i in ids(p["Images"])) == sorted(created)


def test_a_token_ec2_did_not_issue_is_refused(ec2):
    create_images(ec2, 2)

    with pytest.raises(ClientError, match="InvalidPaginationToken"):
        ec2.describe_images(Owners=["self"], MaxResults=5, NextToken="not-a-token")


# ---- DisableImage ----------------------------------------------------------------------------------------------


def test_disable_image_removes_every_launch_permission_and_enable_image_does_not_restore_them(ec2):
    # "Sets the AMI state to disabled and removes all launch permissions from the AMI" (DisableImage)
    [image_id] = create_images(ec2, 1)
    # (a new account blocks public sharing of AMIs: lifted first, as on AWS)
    ec2.disable_image_block_public_access()
    ec2.modify_image_attribute(
        ImageId=image_id, LaunchPermission={"Add": [{"Group": "all"}, {"UserId": "111122223333"}]}
    )

    ec2.disable_image(ImageId=image_id)

    assert ec2.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")["LaunchPermissions"] == []
    [image] = ec2.describe_images(ImageIds=[image_id], IncludeDisabled=True)["Images"]
    assert image["Public"] is False
    assert (
        ec2.describe_images(ExecutableUsers=["all"], Filters=[{"Name": "image-id", "Values": [image_id]}])["Images"]
        == []
    )
    ec2.enable_image(ImageId=image_id)
    assert ec2.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")["LaunchPermissions"] == []


def test_disable_image_of_an_unknown_ami_is_still_moto_s_error(ec2):
    with pytest.raises(ClientError, match=r"InvalidAMIID\.NotFound"):
        ec2.disable_image(ImageId="ami-0123456789abcdef0")


# ---- CreateImage snapshot description --------------------------------------------------------------------------


def test_create_image_describes_its_snapshot_with_the_instance_volume(ec2):
    instance = ec2.run_instances(ImageId=PUBLIC_AMI, MinCount=1, MaxCount=1)["Instances"][0]
    [root] = [m["Ebs"]["VolumeId"] for m in instance["BlockDeviceMappings"]]
    image_id = ec2.create_image(InstanceId=instance["InstanceId"], Name="app-1")["ImageId"]

    [snapshot] = ec2.describe_snapshots(
        OwnerIds=["self"], Filters=[{"Name": "description", "Values": description_filters(image_id)}]
    )["Snapshots"]

    assert snapshot["Description"] == f"Created by CreateImage({instance['InstanceId']}) for {image_id} from {root}"
    assert CREATED_BY_CREATE_IMAGE.match(snapshot["Description"])


def test_a_third_party_publishers_image_has_no_amazon_alias() -> None:
    # ImageOwnerAlias is one of Amazon's own aliases; Canonical's Ubuntu images carry none (moto says "amazon").
    with mock_aws():
        images = boto3.client("ec2", region_name="us-east-1").describe_images(
            ImageIds=["ami-1e749f67", "ami-12c6146b"]
        )["Images"]
        aliases = {image["ImageId"]: (image["OwnerId"], image.get("ImageOwnerAlias")) for image in images}
    assert aliases == {"ami-1e749f67": ("099720109477", None), "ami-12c6146b": ("801119661308", "amazon")}
