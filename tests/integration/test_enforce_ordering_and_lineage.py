"""Events out of order, replayed events, copies that inherit governance tags, and hand-made changes."""

from __future__ import annotations

import pytest

from tests.conftest import load_event
from tests.integration.conftest import ACCOUNT, create_image_event, state_event, tags_event

pytestmark = pytest.mark.integration

PREFIX = "ami-governance:"
GOOD_NAME = "payments-api-al2023-1.4.0"
GOOD_TAGS = {"Owner": "payments-team", "Environment": "prod", "CostCenter": "CC-1042"}


def copy_event(source_id, copy_id):
    event = load_event("copy_image")
    event["account"] = ACCOUNT
    event["detail"]["requestParameters"]["sourceImageId"] = source_id
    event["detail"]["responseElements"]["imageId"] = copy_id
    return event


def test_a_copy_is_judged_on_its_own_not_on_the_tags_copied_from_its_source(estate, invoke):
    # Given a source AMI built by Image Builder (exempt by invokedBy)
    source_id, instance_id = estate.create_image("imagebuilder-output")
    built = create_image_event(source_id, instance_id, name="imagebuilder-output", tags={})
    built["detail"]["userIdentity"]["invokedBy"] = "imagebuilder.amazonaws.com"
    invoke(built)
    source_tags = estate.tags_of(source_id)
    assert source_tags[f"{PREFIX}compliance"] == "exempt"

    # When a person copies it with CopyImageTags=True (moto ignores that flag, so the test copies the tags)
    copy_id = estate.ec2("eu-west-1").copy_image(SourceImageId=source_id, SourceRegion="us-east-1", Name="copy")[
        "ImageId"
    ]
    estate.ec2("eu-west-1").create_tags(
        Resources=[copy_id], Tags=[{"Key": k, "Value": v} for k, v in source_tags.items()]
    )
    invoke(copy_event(source_id, copy_id))

    # Then the copy is judged with its own creator: not exempt, and the source's provenance is gone
    tags = estate.tags_of(copy_id, region="eu-west-1")
    assert tags[f"{PREFIX}compliance"] == "non-compliant"
    assert tags[f"{PREFIX}created-by"] == "arn:aws:iam::111122223333:role/PlatformEngineer"
    assert tags[f"{PREFIX}image-id"] == copy_id
    assert f"{PREFIX}invoked-by" not in tags
    assert f"{PREFIX}exemption" not in tags
    assert f"{PREFIX}source-instance" not in tags
    assert tags[f"{PREFIX}source-image"] == f"us-east-1/{source_id}"
    assert [n["body"]["image_id"] for n in estate.notices()] == [copy_id]


def test_a_replayed_create_event_does_not_bring_back_deleted_tags(estate, invoke):
    # Given a compliant AMI whose owner later removed a required tag
    image_id, instance_id = estate.create_image(GOOD_NAME, GOOD_TAGS)
    created = create_image_event(image_id, instance_id)
    invoke(created)
    estate.ec2().delete_tags(Resources=[image_id], Tags=[{"Key": "CostCenter"}])
    invoke(tags_event("create_tags_approval", [image_id], {"CostCenter": ""}, event_name="DeleteTags"))
    estate.notices()

    # When the original CreateImage event is delivered again (a DLQ replay, a late duplicate)
    invoke(created)

    # Then the tags it requested back then do not count: the AMI stays non-compliant, nobody is told otherwise
    assert estate.tags_of(image_id)[f"{PREFIX}violations"] == "missing-tag:CostCenter"
    assert estate.notices() == []


def test_state_change_before_the_cloudtrail_event_defers_the_notice_to_that_event(estate, invoke):
    # Given an AMI whose `available` event arrives before its CloudTrail event (the usual order in AWS)
    image_id, instance_id = estate.create_image("test image", GOOD_TAGS)

    early = invoke(state_event(image_id))

    # Then the verdict is provisional: tagged and recorded, but nobody is notified before the creator is known
    assert early["images"][0]["result"] == "provisional"
    assert estate.tags_of(image_id)[f"{PREFIX}compliance"] == "non-compliant"
    assert estate.inventory_item(image_id) is not None
    assert estate.notices() == []

    # When the CloudTrail event arrives, the creator is recorded and the notice goes out once
    invoke(create_image_event(image_id, instance_id, name="test image"))
    assert estate.tags_of(image_id)[f"{PREFIX}created-by"] == "arn:aws:iam::111122223333:role/PlatformEngineer"
    assert len(estate.notices()) == 1


def test_state_change_first_does_not_remediate_an_ami_its_creator_exempts(estate, invoke, policy_with):
    estate.set_policy(policy_with(mode="enforce", remediation={"action": "disable"}))
    image_id, instance_id = estate.create_image("imagebuilder-output")

    invoke(state_event(image_id))
    built = create_image_event(image_id, instance_id, name="imagebuilder-output", tags={})
    built["detail"]["userIdentity"]["invokedBy"] = "imagebuilder.amazonaws.com"
    invoke(built)

    image = estate.ec2().describe_images(ImageIds=[image_id])["Images"][0]
    assert image["State"] == "available"
    assert estate.tags_of(image_id)[f"{PREFIX}compliance"] == "exempt"
    assert f"{PREFIX}violations" not in estate.tags_of(image_id)
    assert estate.notices() == []


def test_an_ami_re_enabled_by_hand_is_disabled_again(estate, invoke, policy_with):
    # Given enforce mode, and a non-compliant AMI that governance disabled
    estate.set_policy(policy_with(mode="enforce", remediation={"action": "disable"}))
    image_id, instance_id = estate.create_image(GOOD_NAME)
    invoke(create_image_event(image_id, instance_id, tags={}))
    estate.notices()

    # When someone enables it again without fixing it (EC2 then reports it available)
    estate.ec2().enable_image(ImageId=image_id)
    invoke(state_event(image_id))

    # Then it is disabled again, and that is announced
    assert estate.ec2().describe_images(ImageIds=[image_id], IncludeDisabled=True)["Images"][0]["State"] == "disabled"
    [notice] = estate.notices()
    assert notice["body"]["remediation"].startswith("disabled the AMI")


def test_losing_the_exemption_removes_the_exemption_tag(estate, invoke):
    image_id, instance_id = estate.create_image("scratch", {f"{PREFIX}exempt": "true"})
    invoke(create_image_event(image_id, instance_id, name="scratch", tags={}))
    assert f"{PREFIX}exemption" in estate.tags_of(image_id)

    estate.ec2().delete_tags(Resources=[image_id], Tags=[{"Key": f"{PREFIX}exempt"}])
    invoke(tags_event("create_tags_approval", [image_id], {f"{PREFIX}exempt": ""}, event_name="DeleteTags"))

    tags = estate.tags_of(image_id)
    assert tags[f"{PREFIX}compliance"] == "non-compliant"
    assert f"{PREFIX}exemption" not in tags


def test_inventory_forgets_violations_once_fixed(estate, invoke):
    image_id, instance_id = estate.create_image(GOOD_NAME)
    invoke(create_image_event(image_id, instance_id, tags={}))
    invoke(state_event(image_id))
    assert estate.inventory_item(image_id)["violations"]

    estate.ec2().create_tags(Resources=[image_id], Tags=[{"Key": k, "Value": v} for k, v in GOOD_TAGS.items()])
    invoke(tags_event("create_tags_approval", [image_id], GOOD_TAGS))

    item = estate.inventory_item(image_id)
    assert item["compliance"] == "compliant"
    assert item["violations"] == []
