"""The EC2 adapter's handling of AWS answers that moto does not reproduce (botocore Stubber, which still
validates every request against the real EC2 model)."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber

from ami_governance.adapters.ec2 import Ec2Images, MalformedImageId, TagLimitExceeded

pytestmark = pytest.mark.integration

FLAGS = {"IncludeDisabled": True, "IncludeDeprecated": True}


def image(image_id):
    return {"ImageId": image_id, "OwnerId": "123456789012", "Name": "n", "State": "available"}


@pytest.fixture
def stubbed():
    client = boto3.client("ec2", region_name="eu-west-1")
    images = Ec2Images("eu-west-1")
    images._ec2 = client
    with Stubber(client) as stubber:
        yield images, stubber
        stubber.assert_no_pending_responses()


def test_batch_with_an_unknown_id_is_asked_again_by_filter(stubbed):
    # AWS fails a whole DescribeImages request when one of its ids no longer exists; a filter on image-id leaves
    # the unknown ones out instead: two calls for the batch, however many of its ids are unknown.
    images, stubber = stubbed
    ids = ["ami-0aaaaaaaaaaaaaaa1", "ami-0aaaaaaaaaaaaaaa2"]
    stubber.add_client_error("describe_images", "InvalidAMIID.NotFound", expected_params={"ImageIds": ids, **FLAGS})
    stubber.add_response(
        "describe_images", {"Images": [image(ids[0])]}, {"Filters": [{"Name": "image-id", "Values": ids}], **FLAGS}
    )

    found = images.describe_images(ids)

    assert found[ids[0]] is not None
    assert found[ids[0]].region == "eu-west-1"
    assert found[ids[1]] is None


def test_unavailable_image_is_gone(stubbed):
    images, stubber = stubbed
    stubber.add_client_error("describe_images", "InvalidAMIID.Unavailable")

    assert images.describe_image("ami-0aaaaaaaaaaaaaaa1") is None


def test_malformed_id_is_bad_input(stubbed):
    images, stubber = stubbed
    stubber.add_client_error("describe_images", "InvalidAMIID.Malformed")

    with pytest.raises(MalformedImageId):
        images.describe_image("ami-nothex")


def test_other_errors_propagate(stubbed):
    images, stubber = stubbed
    stubber.add_client_error("describe_images", "UnauthorizedOperation", http_status_code=403)

    with pytest.raises(ClientError, match="UnauthorizedOperation"):
        images.describe_images(["ami-0aaaaaaaaaaaaaaa1"])


def test_snapshots_and_lineage_are_read_from_the_image():
    from ami_governance.adapters.ec2 import to_image_facts

    facts = to_image_facts(
        {
            "ImageId": "ami-1",
            "OwnerId": "123456789012",
            "Name": "n",
            "State": "available",
            "SourceImageId": "ami-0",
            "SourceImageRegion": "us-east-1",
            "BlockDeviceMappings": [
                {"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": "snap-1"}},
                {"DeviceName": "/dev/sdb", "VirtualName": "ephemeral0"},
                {"DeviceName": "/dev/sdc", "Ebs": {"SnapshotId": "snap-2"}},
            ],
            "Tags": [{"Key": "Owner", "Value": "x"}],
        },
        "eu-west-1",
    )

    assert facts.snapshot_ids == ("snap-1", "snap-2")
    assert (facts.source_image_id, facts.source_region) == ("ami-0", "us-east-1")
    assert facts.tags == {"Owner": "x"}


def snapshot_ids(count):
    return [f"snap-{index:017x}" for index in range(count)]


def test_tags_past_create_tags_limit_go_in_further_calls(stubbed):
    # Given 2,500 resources to tag: CreateTags takes up to 1,000 resource ids per call
    images, stubber = stubbed
    ids = snapshot_ids(2500)
    tags = [{"Key": "ami-governance:image-id", "Value": "ami-0aaaaaaaaaaaaaaa1"}]
    for batch in (ids[:1000], ids[1000:2000], ids[2000:]):
        stubber.add_response("create_tags", {}, {"Resources": batch, "Tags": tags})

    # When they are tagged
    images.create_tags(ids, {"ami-governance:image-id": "ami-0aaaaaaaaaaaaaaa1"})

    # Then every one of them is, in three calls of at most 1,000 ids
    stubber.assert_no_pending_responses()


def test_tag_deletion_past_delete_tags_limit_goes_in_further_calls(stubbed):
    # Given 1,001 resources to untag: DeleteTags takes up to 1,000 resource ids per call
    images, stubber = stubbed
    ids = snapshot_ids(1001)
    for batch in (ids[:1000], ids[1000:]):
        stubber.add_response("delete_tags", {}, {"Resources": batch, "Tags": [{"Key": "ami-governance:marked"}]})

    # When the key is deleted from all of them
    images.delete_tags(ids, ["ami-governance:marked"])

    # Then it is, in two calls
    stubber.assert_no_pending_responses()


def test_a_full_tag_limit_stops_the_batches(stubbed):
    # Given a first batch of resources one of which already has 50 tags
    images, stubber = stubbed
    ids = snapshot_ids(1500)
    stubber.add_client_error("create_tags", "TagLimitExceeded", expected_params={"Resources": ids[:1000], "Tags": ANY})

    # When they are tagged, Then the permanent failure is raised as such, and no further call is made
    with pytest.raises(TagLimitExceeded):
        images.create_tags(ids, {"k": "v"})
