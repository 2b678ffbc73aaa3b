"""SSM DescribeParameters filtered on `DataType`, on moto with the emulator's extensions.

moto 5.2.5 refuses the filter key (ValidationException: its key pattern lacks DataType), though botocore's model
allows it for DescribeParameters ("all of the listed patterns are valid except Label"). The report lists the AMI
parameters (`aws:ec2:image`) this way.
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
def ssm() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("ssm", region_name=REGION)
        client.put_parameter(Name="/golden/web", Value="ami-0123456789abcdef0", Type="String", DataType="aws:ec2:image")
        client.put_parameter(Name="/golden/db", Value="ami-0fedcba9876543210", Type="String", DataType="aws:ec2:image")
        client.put_parameter(Name="/config/size", Value="large", Type="String")
        yield client


def names(ssm: Any, *filters: dict[str, Any]) -> list[str]:
    pages = ssm.get_paginator("describe_parameters").paginate(ParameterFilters=list(filters))
    return sorted(p["Name"] for page in pages for p in page["Parameters"])


def test_the_data_type_filter_selects_the_ami_parameters(ssm: Any) -> None:
    assert names(ssm, {"Key": "DataType", "Option": "Equals", "Values": ["aws:ec2:image"]}) == [
        "/golden/db",
        "/golden/web",
    ]
    assert names(ssm, {"Key": "DataType", "Values": ["text"]}) == ["/config/size"]
    # combined with another filter, both apply
    both = (
        {"Key": "DataType", "Values": ["aws:ec2:image"]},
        {"Key": "Name", "Option": "BeginsWith", "Values": ["/golden/w"]},
    )
    assert names(ssm, *both) == ["/golden/web"]


def test_the_data_type_filter_is_not_valid_for_get_parameters_by_path(ssm: Any) -> None:
    # "For GetParametersByPath, the following patterns listed for Key aren't valid: tag, DataType, Name, Path, and
    # Tier" (ParameterStringFilter doc)
    with pytest.raises(ClientError, match="InvalidFilterKey"):
        ssm.get_parameters_by_path(Path="/golden", ParameterFilters=[{"Key": "DataType", "Values": ["aws:ec2:image"]}])


def test_an_option_other_than_equals_or_begins_with_is_refused(ssm: Any) -> None:
    with pytest.raises(ClientError, match="InvalidFilterOption"):
        ssm.describe_parameters(ParameterFilters=[{"Key": "DataType", "Option": "Contains", "Values": ["aws"]}])


def test_describe_parameters_pages_by_max_results_up_to_fifty(ssm: Any) -> None:
    # Given 60 parameters (and the three above)
    for i in range(60):
        ssm.put_parameter(Name=f"/bulk/{i}", Value="x", Type="String")

    # When they are listed 50 a page, as the model allows (1-50)
    first = ssm.describe_parameters(MaxResults=50)
    rest = ssm.describe_parameters(MaxResults=50, NextToken=first["NextToken"])

    # Then the first page holds 50 and the second the other 13, with no further token
    assert (len(first["Parameters"]), len(rest["Parameters"])) == (50, 13)
    assert "NextToken" not in rest
    with pytest.raises(ClientError, match="less than or equal to 50"):
        ssm.describe_parameters(MaxResults=51)
