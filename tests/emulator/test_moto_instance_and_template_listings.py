"""DescribeInstances, DescribeLaunchTemplates and DescribeLaunchTemplateVersions on moto with
emulator/moto_extensions applied page as the EC2 API reference documents it.

moto 5.2.5 answers 100 reservations and a NextToken when `MaxResults` is absent (EC2 answers all), accepts any page
size, and stops both launch template listings at 15 items (or `MaxResults`) without a NextToken, so a paginator
silently misses the rest. The report reads every instance and the `$Default`/`$Latest` version of every template
to decide which AMIs are in use: a truncated listing is a false "unused".
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
PUBLIC_AMI = "ami-12c6146b"

moto_extensions.apply()


@pytest.fixture
def ec2() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("ec2", region_name=REGION)


def run_instances(ec2: Any, reservations: int) -> list[str]:
    return [
        str(ec2.run_instances(ImageId=PUBLIC_AMI, MinCount=1, MaxCount=1)["ReservationId"]) for _ in range(reservations)
    ]


def create_templates(ec2: Any, count: int, versions: int = 1) -> list[str]:
    created = []
    for n in range(count):
        template = ec2.create_launch_template(LaunchTemplateName=f"app-{n}", LaunchTemplateData={"ImageId": PUBLIC_AMI})
        template_id = template["LaunchTemplate"]["LaunchTemplateId"]
        for _ in range(versions - 1):
            ec2.create_launch_template_version(LaunchTemplateId=template_id, LaunchTemplateData={"ImageId": PUBLIC_AMI})
        created.append(str(template_id))
    return created


# ---- DescribeInstances -----------------------------------------------------------------------------------------


def test_describe_instances_without_max_results_answers_every_reservation(ec2):
    created = run_instances(ec2, 105)

    answer = ec2.describe_instances()

    assert sorted(r["ReservationId"] for r in answer["Reservations"]) == sorted(created)
    assert "NextToken" not in answer


def test_describe_instances_pages_by_max_results(ec2):
    created = run_instances(ec2, 12)

    pages = list(ec2.get_paginator("describe_instances").paginate(PaginationConfig={"PageSize": 5}))

    assert [len(p["Reservations"]) for p in pages] == [5, 5, 2]
    assert sorted(r["ReservationId"] for p in pages for r in p["Reservations"]) == sorted(created)


@pytest.mark.parametrize("size", [4, 1001])
def test_describe_instances_pages_are_5_to_1000(ec2, size):
    with pytest.raises(ClientError, match="InvalidParameterValue"):
        ec2.describe_instances(MaxResults=size)


def test_describe_instances_refuses_max_results_with_instance_ids(ec2):
    run_instances(ec2, 1)
    [instance] = ec2.describe_instances()["Reservations"][0]["Instances"]

    with pytest.raises(ClientError, match="InvalidParameterCombination"):
        ec2.describe_instances(InstanceIds=[instance["InstanceId"]], MaxResults=5)


# ---- DescribeLaunchTemplates -----------------------------------------------------------------------------------


def test_describe_launch_templates_without_max_results_answers_all(ec2):
    created = create_templates(ec2, 20)

    answer = ec2.describe_launch_templates()

    assert sorted(t["LaunchTemplateId"] for t in answer["LaunchTemplates"]) == sorted(created)
    assert "NextToken" not in answer


def test_describe_launch_templates_pages_to_the_end(ec2):
    created = create_templates(ec2, 20)

    pages = list(ec2.get_paginator("describe_launch_templates").paginate(PaginationConfig={"PageSize": 8}))

    assert [len(p["LaunchTemplates"]) for p in pages] == [8, 8, 4]
    assert sorted(t["LaunchTemplateId"] for p in pages for t in p["LaunchTemplates"]) == sorted(created)


def test_describe_launch_templates_pages_are_at_most_200(ec2):
    with pytest.raises(ClientError, match="InvalidParameterValue"):
        ec2.describe_launch_templates(MaxResults=201)


# ---- DescribeLaunchTemplateVersions ----------------------------------------------------------------------------


def test_the_bulk_form_pages_through_latest_and_default_of_every_template(ec2):
    # Given 20 templates with two versions each: $Default is 1, $Latest is 2
    created = create_templates(ec2, 20, versions=2)

    pages = list(
        ec2.get_paginator("describe_launch_template_versions").paginate(
            Versions=["$Latest", "$Default"], PaginationConfig={"PageSize": 15}
        )
    )

    listed = sorted((v["LaunchTemplateId"], v["VersionNumber"]) for p in pages for v in p["LaunchTemplateVersions"])
    assert listed == sorted((t, n) for t in created for n in (1, 2))
    assert [len(p["LaunchTemplateVersions"]) for p in pages] == [15, 15, 10]
    defaults = {
        (v["LaunchTemplateId"], v["VersionNumber"])
        for p in pages
        for v in p["LaunchTemplateVersions"]
        if v["DefaultVersion"]
    }
    assert defaults == {(t, 1) for t in created}


def test_the_bulk_form_without_max_results_answers_every_template(ec2):
    created = create_templates(ec2, 20, versions=2)

    answer = ec2.describe_launch_template_versions(Versions=["$Latest"])

    assert sorted((v["LaunchTemplateId"], v["VersionNumber"]) for v in answer["LaunchTemplateVersions"]) == sorted(
        (t, 2) for t in created
    )
    assert "NextToken" not in answer


def test_a_version_that_is_both_latest_and_default_is_paged_once_per_alias(ec2):
    # The reference does not say whether EC2 lists it once or twice; moto lists it twice and the pages keep that.
    created = create_templates(ec2, 3)

    pages = list(
        ec2.get_paginator("describe_launch_template_versions").paginate(
            Versions=["$Latest", "$Default"], PaginationConfig={"PageSize": 2}
        )
    )

    listed = sorted((v["LaunchTemplateId"], v["VersionNumber"]) for p in pages for v in p["LaunchTemplateVersions"])
    assert listed == sorted((t, 1) for t in created for _ in range(2))


def test_the_versions_of_one_template_page_to_the_end(ec2):
    [template_id] = create_templates(ec2, 1, versions=20)

    pages = list(
        ec2.get_paginator("describe_launch_template_versions").paginate(
            LaunchTemplateId=template_id, PaginationConfig={"PageSize": 6}
        )
    )

    assert [v["VersionNumber"] for p in pages for v in p["LaunchTemplateVersions"]] == list(range(1, 21))
    assert (
        ec2.describe_launch_template_versions(LaunchTemplateId=template_id)["LaunchTemplateVersions"][-1][
            "VersionNumber"
        ]
        == 20
    )
