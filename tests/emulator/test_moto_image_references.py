"""DescribeImageReferences on moto with the emulator's extensions, as the EC2 API reference documents it.

moto 5.2.5 does not implement the call (NotImplementedError). The report confirms "unused" candidates with it:
an AMI referenced only by a stopped instance, a launch template version or an SSM parameter must be found.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, ParamValidationError
from moto import mock_aws

from emulator import moto_extensions

REGION = "us-east-1"
ACCOUNT = "123456789012"
PUBLIC_AMI = "ami-12c6146b"  # one of moto's preloaded Amazon AMIs

moto_extensions.apply()


@pytest.fixture
def ec2() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("ec2", region_name=REGION)


def image(ec2: Any, name: str) -> str:
    instance = ec2.run_instances(ImageId=PUBLIC_AMI, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    return str(ec2.create_image(InstanceId=instance, Name=name)["ImageId"])


def launch(ec2: Any, image_id: str) -> str:
    return str(ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"])


def references(ec2: Any, image_ids: list[str], **kwargs: Any) -> list[dict[str, str]]:
    if "ResourceTypes" not in kwargs:
        kwargs["IncludeAllResourceTypes"] = True
    found: list[dict[str, str]] = []
    for page in ec2.get_paginator("describe_image_references").paginate(ImageIds=image_ids, **kwargs):
        found.extend(page["ImageReferences"])
    return found


def test_every_kind_of_reference_is_found_with_its_type_and_arn(ec2: Any) -> None:
    # Given one AMI used by a stopped instance, one only by a launch template, one only by an SSM parameter of
    # data type aws:ec2:image, and one used by nothing
    by_instance, by_template, by_parameter, unused = (image(ec2, f"ami-{n}") for n in ("i", "lt", "ssm", "none"))
    instance = launch(ec2, by_instance)
    ec2.stop_instances(InstanceIds=[instance])
    template = ec2.create_launch_template(LaunchTemplateName="web", LaunchTemplateData={"ImageId": by_template})
    template_id = template["LaunchTemplate"]["LaunchTemplateId"]
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name="/golden/web", Value=by_parameter, Type="String", DataType="aws:ec2:image"
    )

    # When their references are described across every resource type
    found = references(ec2, [by_instance, by_template, by_parameter, unused])

    # Then each referenced AMI has exactly its referencing resource, and the unused one has none
    assert sorted(found, key=lambda r: r["ImageId"]) == sorted(
        [
            {"ImageId": by_instance, "ResourceType": "ec2:Instance",
             "Arn": f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{instance}"},
            {"ImageId": by_template, "ResourceType": "ec2:LaunchTemplate",
             "Arn": f"arn:aws:ec2:{REGION}:{ACCOUNT}:launch-template/{template_id}"},
            {"ImageId": by_parameter, "ResourceType": "ssm:Parameter",
             "Arn": f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/golden/web"},
        ],
        key=lambda r: r["ImageId"],
    )  # fmt: skip


def test_a_text_parameter_holding_an_ami_id_is_no_reference(ec2: Any) -> None:
    image_id = image(ec2, "text-param")
    boto3.client("ssm", region_name=REGION).put_parameter(Name="/note", Value=image_id, Type="String")

    assert references(ec2, [image_id]) == []


def test_only_the_most_recent_versions_up_to_the_depth_are_checked(ec2: Any) -> None:
    # Given a template whose version 1 uses an AMI and whose 11 later versions use another
    old, new = image(ec2, "old"), image(ec2, "new")
    ec2.create_launch_template(LaunchTemplateName="deep", LaunchTemplateData={"ImageId": old})
    for _ in range(11):
        ec2.create_launch_template_version(LaunchTemplateName="deep", LaunchTemplateData={"ImageId": new})

    # Then with the default depth (10 most recent versions) the old AMI is not referenced, and with depth 12 it is
    assert references(ec2, [old]) == []
    deep = [{"ResourceType": "ec2:LaunchTemplate",
             "ResourceTypeOptions": [{"OptionName": "version-depth", "OptionValues": ["12"]}]}]  # fmt: skip
    assert [r["ImageId"] for r in references(ec2, [old], ResourceTypes=deep)] == [old]
    # and a template is one reference however many of its versions use the AMI
    assert len(references(ec2, [new])) == 1


def test_state_name_limits_the_instances_and_resource_types_limit_the_search(ec2: Any) -> None:
    # Given an AMI used by a running and a stopped instance, and by a launch template
    image_id = image(ec2, "states")
    running, stopped = launch(ec2, image_id), launch(ec2, image_id)
    ec2.stop_instances(InstanceIds=[stopped])
    ec2.create_launch_template(LaunchTemplateName="t", LaunchTemplateData={"ImageId": image_id})

    # When only running instances are asked for
    only_running = [{"ResourceType": "ec2:Instance",
                     "ResourceTypeOptions": [{"OptionName": "state-name", "OptionValues": ["running"]}]}]  # fmt: skip
    found = references(ec2, [image_id], ResourceTypes=only_running)

    # Then only the running instance is referenced: no stopped instance, no launch template
    assert [r["Arn"].rsplit("/", 1)[-1] for r in found] == [running]


def test_references_page_with_max_results(ec2: Any) -> None:
    image_id = image(ec2, "paged")
    instances = {launch(ec2, image_id) for _ in range(7)}

    first = ec2.describe_image_references(ImageIds=[image_id], IncludeAllResourceTypes=True, MaxResults=5)
    assert len(first["ImageReferences"]) == 5
    assert first["NextToken"]
    assert {r["Arn"].rsplit("/", 1)[-1] for r in references(ec2, [image_id], MaxResults=5)} == instances


def test_bad_requests_are_refused_as_the_model_says(ec2: Any) -> None:
    image_id = image(ec2, "bad")
    # "Either IncludeAllResourceTypes or ResourceTypes must be specified."
    with pytest.raises(ClientError, match="MissingParameter"):
        ec2.describe_image_references(ImageIds=[image_id])
    # ImageIds: 1 to 10
    with pytest.raises(ClientError, match="InvalidParameterValue"):
        ec2.describe_image_references(ImageIds=[image_id] * 11, IncludeAllResourceTypes=True)
    # MaxResults: at least 5 (botocore checks the model's minimum before sending)
    with pytest.raises(ParamValidationError):
        ec2.describe_image_references(ImageIds=[image_id], IncludeAllResourceTypes=True, MaxResults=4)
    # version-depth: 1 to 10000
    too_deep = [{"ResourceType": "ec2:LaunchTemplate",
                 "ResourceTypeOptions": [{"OptionName": "version-depth", "OptionValues": ["10001"]}]}]  # fmt: skip
    with pytest.raises(ClientError, match="InvalidParameterValue"):
        ec2.describe_image_references(ImageIds=[image_id], ResourceTypes=too_deep)
