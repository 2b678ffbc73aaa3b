"""Reading launch permissions: EC2's answer as a value (shared by the event path and the report), and what a
failed, malformed or vanished read becomes. EC2 is botocore's Stubber: each response is checked against the
service model, and so is each request."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from ami_governance.adapters.ec2 import MalformedImageId
from ami_governance.adapters.launch_permissions import LaunchPermissionReader, launch_permissions_from
from ami_governance.models.findings import LaunchPermissions, VerifiedBy

AT = datetime(2030, 6, 15, 6, 0, tzinfo=UTC)
SHARED, PUBLIC, GONE, DENIED = (f"ami-0aaaaaaaaaaaaaa{n:02d}" for n in range(4))
ORG = "arn:aws:organizations::123456789012:organization/o-abcdefghij"
OU = "arn:aws:organizations::123456789012:ou/o-abcdefghij/ou-ab12-cdefgh34"


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ([], {}),
        ([{"Group": "all"}], {"public": True}),
        (
            [{"UserId": "444455556666"}, {"UserId": "111122223333"}, {"UserId": "444455556666"}],
            {"accounts": ("111122223333", "444455556666")},
        ),
        ([{"OrganizationArn": ORG}, {"OrganizationalUnitArn": OU}], {"organization_arns": (ORG,), "ou_arns": (OU,)}),
        (
            [{"Group": "all"}, {"UserId": "111122223333"}, {"OrganizationalUnitArn": OU}],
            {"public": True, "accounts": ("111122223333",), "ou_arns": (OU,)},
        ),
    ],
)
def test_a_response_becomes_a_value(entries: list[dict[str, str]], expected: dict[str, Any]) -> None:
    response = {"ImageId": SHARED, "LaunchPermissions": entries}

    assert launch_permissions_from(response, recorded_at=AT) == LaunchPermissions(
        SHARED, VerifiedBy.DESCRIBE, recorded_at=AT, **expected
    )


def test_a_response_without_the_list_is_an_unshared_ami() -> None:
    assert launch_permissions_from({"ImageId": SHARED}, recorded_at=AT) == LaunchPermissions(
        SHARED, VerifiedBy.DESCRIBE, recorded_at=AT
    )


@pytest.fixture
def stubbed() -> Iterator[tuple[LaunchPermissionReader, Stubber]]:
    ec2 = boto3.client("ec2", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(ec2) as stubber:
        yield LaunchPermissionReader("us-east-1", ec2=ec2, now=lambda: AT), stubber
        stubber.assert_no_pending_responses()


def expect(stubber: Stubber, image_id: str, entries: list[dict[str, str]] | None = None, error: str = "") -> None:
    params = {"ImageId": image_id, "Attribute": "launchPermission"}
    if error:
        stubber.add_client_error("describe_image_attribute", error, f"{error} for {image_id}", expected_params=params)
    else:
        response = {"ImageId": image_id, "LaunchPermissions": entries or []}
        stubber.add_response("describe_image_attribute", response, expected_params=params)


def test_read_gives_each_ami_its_reading_leaves_out_the_gone_and_marks_the_failed(
    stubbed: tuple[LaunchPermissionReader, Stubber],
) -> None:
    # Given four AMIs: one shared with an account, one public, one deregistered since listed, one denied
    reader, stubber = stubbed
    expect(stubber, SHARED, [{"UserId": "444455556666"}])
    expect(stubber, PUBLIC, [{"Group": "all"}])
    expect(stubber, GONE, error="InvalidAMIID.NotFound")
    expect(stubber, DENIED, error="UnauthorizedOperation")

    # When the report reads them (an id given twice is read once)
    found = reader.read([SHARED, PUBLIC, GONE, DENIED, SHARED])

    # Then each read AMI has its reading, the gone one is absent, and the failed one's sharing is unknown
    assert found == {
        SHARED: LaunchPermissions(SHARED, VerifiedBy.DESCRIBE, accounts=("444455556666",), recorded_at=AT),
        PUBLIC: LaunchPermissions(PUBLIC, VerifiedBy.DESCRIBE, public=True, recorded_at=AT),
        DENIED: LaunchPermissions(
            DENIED, VerifiedBy.UNKNOWN, error=f"UnauthorizedOperation: An error occurred (UnauthorizedOperation) "
            f"when calling the DescribeImageAttribute operation: UnauthorizedOperation for {DENIED}",
        ),
    }  # fmt: skip


def test_read_marks_a_malformed_id_unknown(stubbed: tuple[LaunchPermissionReader, Stubber]) -> None:
    reader, stubber = stubbed
    expect(stubber, SHARED, error="InvalidAMIID.Malformed")

    assert reader.read([SHARED]) == {
        SHARED: LaunchPermissions(SHARED, VerifiedBy.UNKNOWN, error="InvalidAMIID.Malformed: not an AMI id")
    }


def test_read_one_answers_none_for_a_gone_ami_and_raises_on_other_failures(
    stubbed: tuple[LaunchPermissionReader, Stubber],
) -> None:
    # (the event path: a failure other than "gone" raises, so that Lambda's retries take over)
    reader, stubber = stubbed
    expect(stubber, GONE, error="InvalidAMIID.Unavailable")
    expect(stubber, SHARED, error="InvalidAMIID.Malformed")
    expect(stubber, DENIED, error="RequestLimitExceeded")

    assert reader.read_one(GONE) is None
    with pytest.raises(MalformedImageId):
        reader.read_one(SHARED)
    with pytest.raises(Exception, match="RequestLimitExceeded"):
        reader.read_one(DENIED)
