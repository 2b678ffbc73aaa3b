"""Re-evaluation on tag changes, and the AMI State Change record (snapshots -> inventory)."""

from __future__ import annotations

import pytest

from tests.integration.conftest import ACCOUNT, create_image_event, state_event, tags_event
from tests.support import recording_api_calls

pytestmark = pytest.mark.integration

PREFIX = "ami-governance:"
GOOD_NAME = "payments-api-al2023-1.4.0"
GOOD_TAGS = {"Owner": "payments-team", "Environment": "prod", "CostCenter": "CC-1042"}


def judged_non_compliant_image(estate, invoke, tags=None):
    image_id, instance_id = estate.create_image(GOOD_NAME, tags)
    event = create_image_event(image_id, instance_id)
    event["detail"]["requestParameters"].pop("tagSpecificationSet")
    invoke(event)
    assert estate.tags_of(image_id)[f"{PREFIX}compliance"] == "non-compliant"
    estate.notices()
    return image_id


def test_fixing_the_tags_clears_the_violation(estate, invoke):
    # Given a non-compliant AMI
    image_id = judged_non_compliant_image(estate, invoke)

    # When its owner adds the missing tags
    estate.ec2().create_tags(Resources=[image_id], Tags=[{"Key": k, "Value": v} for k, v in GOOD_TAGS.items()])
    invoke(tags_event("create_tags_approval", [image_id], GOOD_TAGS))

    # Then it is compliant again and the change is announced
    tags = estate.tags_of(image_id)
    assert tags[f"{PREFIX}compliance"] == "compliant"
    assert tags[f"{PREFIX}violations"] == "none"
    notices = estate.notices()
    assert [n["body"]["kind"] for n in notices] == ["ami-compliance-restored"]
    assert estate.inventory_item(image_id)["compliance"] == "compliant"


def test_provenance_survives_re_evaluation(estate, invoke):
    image_id = judged_non_compliant_image(estate, invoke)
    created_by = estate.tags_of(image_id)[f"{PREFIX}created-by"]

    estate.ec2().create_tags(Resources=[image_id], Tags=[{"Key": "Owner", "Value": "payments-team"}])
    invoke(tags_event("create_tags_approval", [image_id], {"Owner": "payments-team"}))

    assert estate.tags_of(image_id)[f"{PREFIX}created-by"] == created_by


def test_deleting_a_required_tag_makes_the_image_non_compliant(estate, invoke):
    image_id, instance_id = estate.create_image(GOOD_NAME, GOOD_TAGS)
    invoke(create_image_event(image_id, instance_id))

    estate.ec2().delete_tags(Resources=[image_id], Tags=[{"Key": "CostCenter"}])
    invoke(tags_event("create_tags_approval", [image_id], {"CostCenter": ""}, event_name="DeleteTags"))

    assert estate.tags_of(image_id)[f"{PREFIX}violations"] == "missing-tag:CostCenter"
    assert [n["body"]["kind"] for n in estate.notices()] == ["ami-non-compliant"]


def test_our_own_tag_writes_do_not_loop(estate, invoke):
    # Given the CreateTags event that our own verdict write produces
    image_id = judged_non_compliant_image(estate, invoke)
    echo = tags_event(
        "create_tags_approval", [image_id], {f"{PREFIX}compliance": "non-compliant", f"{PREFIX}violations": "naming"}
    )

    # When it arrives, nothing is read or written
    with recording_api_calls() as api:
        result = invoke(echo)

    assert result["status"] == "ignored"
    assert result["reason"] == "only governance tags changed"
    assert api.calls == []


def test_a_human_setting_the_exemption_tag_is_not_mistaken_for_our_echo(estate, invoke):
    image_id = judged_non_compliant_image(estate, invoke)

    estate.ec2().create_tags(Resources=[image_id], Tags=[{"Key": f"{PREFIX}exempt", "Value": "true"}])
    invoke(tags_event("create_tags_approval", [image_id], {f"{PREFIX}exempt": "true"}))

    assert estate.tags_of(image_id)[f"{PREFIX}compliance"] == "exempt"


def test_mixed_resources_only_amis_are_judged(estate, invoke):
    # Given a CreateTags call on 20 resources: volumes, instances, snapshots and two AMIs
    first = judged_non_compliant_image(estate, invoke)
    second = judged_non_compliant_image(estate, invoke)
    resources = [f"vol-{i:017x}" for i in range(9)] + [f"i-{i:017x}" for i in range(8)] + ["snap-0123456789abcdef0"]
    resources[3:3] = [first]
    resources[12:12] = [second]
    assert len(resources) == 20
    for image_id in (first, second):
        estate.ec2().create_tags(Resources=[image_id], Tags=[{"Key": k, "Value": v} for k, v in GOOD_TAGS.items()])

    with recording_api_calls() as api:
        result = invoke(tags_event("create_tags_mixed_resources", resources, GOOD_TAGS))

    # Then both AMIs are judged, read in a single DescribeImages call
    assert [outcome["image_id"] for outcome in result["images"]] == [first, second]
    assert all(outcome["compliance"] == "compliant" for outcome in result["images"])
    assert api.operations("ec2").count("DescribeImages") == 1


def test_one_deregistered_ami_among_several_does_not_hide_the_others(estate, invoke):
    # Given a CreateTags event naming a live AMI and one deregistered since
    live = judged_non_compliant_image(estate, invoke)
    gone = judged_non_compliant_image(estate, invoke)
    estate.ec2().deregister_image(ImageId=gone)
    estate.ec2().create_tags(Resources=[live], Tags=[{"Key": k, "Value": v} for k, v in GOOD_TAGS.items()])

    result = invoke(tags_event("create_tags_approval", [gone, live, "ami-0123456789abcdef0"], GOOD_TAGS))

    assert [(o["image_id"], o["result"]) for o in result["images"]] == [
        (gone, "gone"),
        (live, "evaluated"),
        ("ami-0123456789abcdef0", "gone"),
    ]
    assert estate.tags_of(live)[f"{PREFIX}compliance"] == "compliant"


def test_available_image_records_snapshots_in_inventory_and_tags_them(estate, invoke):
    # Given a judged AMI that has just become available
    image_id, instance_id = estate.create_image(GOOD_NAME, GOOD_TAGS)
    invoke(create_image_event(image_id, instance_id))
    snapshot_ids = [
        m["Ebs"]["SnapshotId"]
        for m in estate.ec2().describe_images(ImageIds=[image_id])["Images"][0]["BlockDeviceMappings"]
        if "Ebs" in m
    ]
    assert snapshot_ids

    # When the AMI State Change event says available
    invoke(state_event(image_id))

    # Then every snapshot carries the image id and the inventory links image -> snapshots
    snapshots = estate.ec2().describe_snapshots(SnapshotIds=snapshot_ids)["Snapshots"]
    for snapshot in snapshots:
        assert {"Key": f"{PREFIX}image-id", "Value": image_id} in snapshot["Tags"]
    item = estate.inventory_item(image_id)
    assert item is not None
    assert item["snapshot_ids"] == snapshot_ids
    assert item["compliance"] == "compliant"
    assert item["account"] == ACCOUNT
    assert item["name"] == GOOD_NAME
    assert item["created_by"] == "arn:aws:iam::111122223333:role/PlatformEngineer"


def test_available_event_without_a_create_event_still_judges_the_image(estate, invoke):
    # Given an AMI whose CloudTrail event never reached us
    image_id, _ = estate.create_image("test image")

    invoke(state_event(image_id))

    assert estate.tags_of(image_id)[f"{PREFIX}compliance"] == "non-compliant"
    assert estate.inventory_item(image_id)["compliance"] == "non-compliant"


def test_failed_image_is_recorded(estate, invoke):
    from emulator.moto_extensions import set_image_state

    # Given an AMI that failed (EC2 still lists it, in state failed)
    image_id, _ = estate.create_image(GOOD_NAME)
    set_image_state(ACCOUNT, "us-east-1", image_id, "failed")
    event = state_event(image_id, state="failed")
    event["detail"]["ErrorMessage"] = "Failed to copy snapshot: KMS key is disabled"

    result = invoke(event)

    assert result["images"][0]["result"] == "failed"
    item = estate.inventory_item(image_id)
    assert item["state"] == "failed"
    assert item["error_message"] == "Failed to copy snapshot: KMS key is disabled"


def test_available_event_for_another_region_uses_that_regions_api(estate, invoke):
    image_id, _ = estate.create_image(GOOD_NAME, GOOD_TAGS, region="eu-west-1")

    invoke(state_event(image_id, region="eu-west-1"))

    assert estate.tags_of(image_id, region="eu-west-1")[f"{PREFIX}compliance"] == "compliant"
    assert estate.inventory_item(image_id, region="eu-west-1") is not None
