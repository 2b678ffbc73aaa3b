"""What a launch leaves behind on moto with the emulator's extensions: DescribeInstanceImageMetadata and the AMI's
LastLaunchedTime, as the EC2 API reference documents them.

moto 5.2.5 implements neither: DescribeInstanceImageMetadata is NotImplementedError, DescribeImages carries no
LastLaunchedTime, and DescribeImageAttribute(lastLaunchedTime) fails with an AttributeError (HTTP 500).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from emulator import moto_additions, moto_extensions

REGION = "us-east-1"
ACCOUNT = "123456789012"
AMAZON_AMI = "ami-12c6146b"  # one of moto's preloaded Amazon AMIs, owned by another account
AMAZON_OWNER = "801119661308"

moto_extensions.apply()


@pytest.fixture
def ec2() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("ec2", region_name=REGION)


def launch(ec2: Any, image_id: str | None = None, **kwargs: Any) -> str:
    if image_id is not None:
        kwargs["ImageId"] = image_id
    return str(ec2.run_instances(MinCount=1, MaxCount=1, **kwargs)["Instances"][0]["InstanceId"])


def own_image(ec2: Any, name: str = "own-image") -> str:
    return str(ec2.create_image(InstanceId=launch(ec2, AMAZON_AMI), Name=name)["ImageId"])


def metadata(ec2: Any, **kwargs: Any) -> dict[str, dict[str, Any]]:
    pages = ec2.get_paginator("describe_instance_image_metadata").paginate(**kwargs)
    return {item["InstanceId"]: item for page in pages for item in page["InstanceImageMetadata"]}


def test_each_instance_names_its_ami_with_the_ami_owner(ec2: Any) -> None:
    # Given an instance from an Amazon AMI and one from an AMI of the account
    amazon = launch(ec2, AMAZON_AMI)
    image_id = own_image(ec2)
    own = launch(ec2, image_id)
    images = {i["ImageId"]: i for i in ec2.describe_images(ImageIds=[AMAZON_AMI, image_id])["Images"]}

    # When the instances' image metadata is described
    found = metadata(ec2, InstanceIds=[amazon, own])

    # Then each carries its AMI's id, name, owner, alias, state, creation date and visibility, as DescribeImages does
    for instance_id, ami in ((amazon, images[AMAZON_AMI]), (own, images[image_id])):
        expected = {
            "ImageId": ami["ImageId"], "Name": ami["Name"], "OwnerId": ami["OwnerId"], "State": "available",
            "CreationDate": ami["CreationDate"], "IsPublic": ami["Public"],
        }  # fmt: skip
        if "ImageOwnerAlias" in ami:
            expected["ImageOwnerAlias"] = ami["ImageOwnerAlias"]
        assert found[instance_id]["ImageMetadata"] == expected
        assert found[instance_id]["State"] == {"Code": 16, "Name": "running"}
        assert found[instance_id]["OwnerId"] == ACCOUNT
        assert isinstance(found[instance_id]["LaunchTime"], datetime)
    assert found[amazon]["ImageMetadata"]["OwnerId"] == AMAZON_OWNER
    assert found[amazon]["ImageMetadata"]["ImageOwnerAlias"] == "amazon"


def test_the_ami_is_still_described_once_it_is_deregistered(ec2: Any) -> None:
    # Given an instance launched from an AMI that is then deregistered
    image_id = own_image(ec2, "gone-later")
    instance = launch(ec2, image_id)
    ec2.deregister_image(ImageId=image_id)

    # Then the instance still says which AMI it came from and who owned it
    image = metadata(ec2, InstanceIds=[instance])[instance]["ImageMetadata"]
    assert image["ImageId"] == image_id
    assert image["OwnerId"] == ACCOUNT
    assert image["Name"] == "gone-later"
    assert image["State"] == "deregistered"


def test_filters_on_the_ami_owner_and_the_instance_state(ec2: Any) -> None:
    # Given instances from an Amazon AMI (one stopped) and from an own AMI
    running_amazon, stopped_amazon = launch(ec2, AMAZON_AMI), launch(ec2, AMAZON_AMI)
    ec2.stop_instances(InstanceIds=[stopped_amazon])
    image_id = own_image(ec2)
    own = launch(ec2, image_id)

    def ids(*filters: tuple[str, list[str]]) -> set[str]:
        return set(metadata(ec2, Filters=[{"Name": n, "Values": v} for n, v in filters]))

    # Then owner-alias, owner-id and instance-state-name select as documented
    assert ids(("owner-id", [ACCOUNT])) == {own}
    assert {running_amazon, stopped_amazon} <= ids(("owner-alias", ["amazon"]))
    assert own not in ids(("owner-alias", ["amazon"]))
    assert ids(("owner-alias", ["amazon"]), ("instance-state-name", ["stopped"])) == {stopped_amazon}


def test_pages_of_max_results_and_bad_requests(ec2: Any) -> None:
    instances = {launch(ec2, AMAZON_AMI) for _ in range(3)}

    page = ec2.describe_instance_image_metadata(MaxResults=2)
    assert len(page["InstanceImageMetadata"]) == 2
    assert set(metadata(ec2, PaginationConfig={"PageSize": 2})) == instances
    # "an instance that doesn't exist ... an error (InvalidInstanceID.NotFound) is returned"
    with pytest.raises(ClientError, match=r"InvalidInstanceID\.NotFound"):
        ec2.describe_instance_image_metadata(InstanceIds=["i-0123456789abcdef0"])
    with pytest.raises(ClientError, match="InvalidParameterValue"):
        ec2.describe_instance_image_metadata(MaxResults=1001)


def test_a_launch_sets_the_ami_last_launched_time(ec2: Any) -> None:
    # Given an AMI never launched, and one launched through a launch template
    never, launched = own_image(ec2, "never"), own_image(ec2, "launched")
    ec2.create_launch_template(LaunchTemplateName="web", LaunchTemplateData={"ImageId": launched})
    before = datetime.now(UTC).replace(microsecond=0)
    launch(ec2, LaunchTemplate={"LaunchTemplateName": "web"})

    # Then only the launched one has a LastLaunchedTime, in DescribeImages and DescribeImageAttribute alike
    images = {i["ImageId"]: i for i in ec2.describe_images(ImageIds=[never, launched])["Images"]}
    assert "LastLaunchedTime" not in images[never]
    stamp = images[launched]["LastLaunchedTime"]
    assert datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) >= before
    attribute = ec2.describe_image_attribute(ImageId=launched, Attribute="lastLaunchedTime")
    assert attribute["LastLaunchedTime"] == {"Value": stamp}
    assert ec2.describe_image_attribute(ImageId=never, Attribute="lastLaunchedTime")["LastLaunchedTime"] == {}


def test_a_test_can_set_the_last_launched_time(ec2: Any) -> None:
    image_id = own_image(ec2)

    moto_additions.set_last_launched_time(ACCOUNT, REGION, image_id, datetime(2024, 3, 1, 12, 0, tzinfo=UTC))

    assert ec2.describe_images(ImageIds=[image_id])["Images"][0]["LastLaunchedTime"] == "2024-03-01T12:00:00Z"
