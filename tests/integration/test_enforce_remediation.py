"""Enforce mode: remediation of non-compliant AMIs, its undo, the protection tag and the blast-radius cap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import ANY, Stubber

from ami_governance.adapters.ec2 import Ec2Images
from ami_governance.services import wiring
from tests.integration.conftest import create_image_event, tags_event

pytestmark = pytest.mark.integration

PREFIX = "ami-governance:"
GOOD_NAME = "payments-api-al2023-1.4.0"
GOOD_TAGS = {"Owner": "payments-team", "Environment": "prod", "CostCenter": "CC-1042"}


def enforce(policy_with, action, **remediation):
    return policy_with(mode="enforce", remediation={"action": action, "grace_period_days": 7, **remediation})


def untagged_create_event(estate):
    image_id, instance_id = estate.create_image(GOOD_NAME)
    event = create_image_event(image_id, instance_id)
    event["detail"]["requestParameters"].pop("tagSpecificationSet")
    return image_id, event


def image_state(estate, image_id):
    return estate.ec2().describe_images(ImageIds=[image_id], IncludeDisabled=True)["Images"][0]["State"]


def test_audit_mode_changes_nothing_but_tags(estate, invoke):
    image_id, event = untagged_create_event(estate)

    invoke(event)

    assert image_state(estate, image_id) == "available"
    assert f"{PREFIX}remediation" not in estate.tags_of(image_id)


def test_enforce_disable_then_fixing_tags_re_enables(estate, invoke, policy_with):
    # Given enforce mode with the disable remediation
    estate.set_policy(enforce(policy_with, "disable"))
    image_id, event = untagged_create_event(estate)

    # When a non-compliant AMI is created, it is disabled and the notice says so
    invoke(event)
    assert image_state(estate, image_id) == "disabled"
    assert estate.tags_of(image_id)[f"{PREFIX}remediation"] == "disabled"
    [notice] = estate.notices()
    assert notice["body"]["remediation"].startswith("disabled the AMI")

    # When the owner fixes the tags, the AMI is enabled again and the remediation is cleared
    estate.ec2().create_tags(Resources=[image_id], Tags=[{"Key": k, "Value": v} for k, v in GOOD_TAGS.items()])
    invoke(tags_event("create_tags_approval", [image_id], GOOD_TAGS))
    assert image_state(estate, image_id) == "available"
    assert estate.tags_of(image_id)[f"{PREFIX}remediation"] == "none"
    [restored] = estate.notices()
    assert restored["body"]["remediation"].startswith("re-enabled the AMI")


def test_enforce_does_not_remediate_twice(estate, invoke, policy_with):
    estate.set_policy(enforce(policy_with, "disable"))
    image_id, event = untagged_create_event(estate)
    invoke(event)
    estate.notices()

    # The same call in another envelope (the same envelope is answered from its idempotency record)
    second = invoke({**event, "id": "another-delivery"})

    assert image_state(estate, image_id) == "disabled"
    assert second["images"][0]["remediation"] is None
    assert estate.notices() == []


def test_enforce_deregister_records_a_deadline_for_the_sweep(estate, invoke, policy_with):
    estate.set_policy(enforce(policy_with, "deregister"))
    image_id, event = untagged_create_event(estate)

    invoke(event)

    value = estate.tags_of(image_id)[f"{PREFIX}remediation"]
    assert value.startswith("deregister-after ")
    deadline = datetime.strptime(value.split(" ", 1)[1], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert timedelta(days=6, hours=23) < deadline - datetime.now(UTC) <= timedelta(days=7)
    assert image_state(estate, image_id) == "available"


def test_protection_tag_wins_over_remediation(estate, invoke, policy_with):
    estate.set_policy(enforce(policy_with, "disable"))
    image_id, instance_id = estate.create_image(GOOD_NAME, {f"{PREFIX}protected": "true"})
    event = create_image_event(image_id, instance_id)
    event["detail"]["requestParameters"].pop("tagSpecificationSet")

    invoke(event)

    assert image_state(estate, image_id) == "available"
    assert estate.tags_of(image_id)[f"{PREFIX}remediation"] == f"skipped: protected by {PREFIX}protected"
    assert estate.tags_of(image_id)[f"{PREFIX}compliance"] == "non-compliant"


def test_blast_radius_cap_limits_remediations_per_event(estate, invoke, policy_with):
    # Given a cap of one remediation per event and one CreateTags event touching two bad AMIs
    estate.set_policy(enforce(policy_with, "disable", max_images_per_event=1))
    first, _ = estate.create_image(GOOD_NAME)
    second, _ = estate.create_image(GOOD_NAME)

    result = invoke(tags_event("create_tags_approval", [first, second], {"Owner": "x"}))

    # Then only the first is disabled; the second is reported as capped, still non-compliant
    assert image_state(estate, first) == "disabled"
    assert image_state(estate, second) == "available"
    assert result["images"][1]["remediation"] == "skipped: blast-radius cap for this event reached"
    assert estate.tags_of(second)[f"{PREFIX}compliance"] == "non-compliant"


def test_enforce_deprecate_calls_enable_image_deprecation(estate, invoke, policy_with, monkeypatch):
    # moto 5.2 does not implement EnableImageDeprecation, so this test replaces the EC2 client with
    # botocore's Stubber (which still validates every request against the real service model).
    estate.set_policy(enforce(policy_with, "deprecate"))
    ec2 = boto3.client("ec2", region_name="us-east-1")
    stubber = Stubber(ec2)
    image = {
        "ImageId": "ami-0a1b2c3d4e5f60718",
        "OwnerId": "123456789012",
        "Name": "bad name",
        "State": "available",
        "Tags": [],
        "BlockDeviceMappings": [],
    }
    stubber.add_response(
        "describe_images",
        {"Images": [image]},
        {"ImageIds": [image["ImageId"]], "IncludeDisabled": True, "IncludeDeprecated": True},
    )
    # The remediation's record first (a retry after the action must find it), the verdict tags last.
    stubber.add_response("create_tags", {}, {"Resources": [image["ImageId"]], "Tags": ANY})
    stubber.add_response(
        "enable_image_deprecation", {"Return": True}, {"ImageId": image["ImageId"], "DeprecateAt": ANY}
    )
    stubber.add_response("create_tags", {}, {"Resources": [image["ImageId"]], "Tags": ANY})
    images = Ec2Images("us-east-1")
    images._ec2 = ec2
    monkeypatch.setattr(wiring, "Ec2Images", lambda region: images)
    wiring.reset()
    event = create_image_event(image["ImageId"], "i-0abc1234def567890", name="bad name")

    with stubber:
        result = invoke(event)
        stubber.assert_no_pending_responses()

    remediation = result["images"][0]["remediation"]
    assert remediation.startswith("deprecated the AMI as of ")
    deprecate_at = datetime.strptime(remediation.rsplit(" ", 1)[1], "%Y-%m-%dT%H:%MZ").replace(tzinfo=UTC)
    assert timedelta(days=6, hours=23) < deprecate_at - datetime.now(UTC) <= timedelta(days=7)


def test_a_deprecated_ami_that_is_fixed_has_its_deprecation_cancelled(estate, invoke, policy_with, monkeypatch):
    # moto 5.2 implements neither EnableImageDeprecation nor DisableImageDeprecation (nor DeprecationTime), so this
    # test, like the one above, answers EC2 with botocore's Stubber (which validates every request).
    # Given an AMI this system deprecated, whose owner has now fixed its tags
    estate.set_policy(enforce(policy_with, "deprecate"))
    ec2 = boto3.client("ec2", region_name="us-east-1")
    stubber = Stubber(ec2)
    image_id = "ami-0a1b2c3d4e5f60719"
    image = {
        "ImageId": image_id,
        "OwnerId": "123456789012",
        "Name": GOOD_NAME,
        "State": "available",
        "DeprecationTime": "2099-01-01T00:00:00.000Z",
        "Tags": [{"Key": k, "Value": v} for k, v in GOOD_TAGS.items()]
        + [
            {"Key": f"{PREFIX}image-id", "Value": image_id},
            {"Key": f"{PREFIX}compliance", "Value": "non-compliant"},
            {"Key": f"{PREFIX}remediation", "Value": "deprecated 2099-01-01T00:00Z"},
        ],
        "BlockDeviceMappings": [],
    }
    stubber.add_response(
        "describe_images",
        {"Images": [image]},
        {"ImageIds": [image_id], "IncludeDisabled": True, "IncludeDeprecated": True},
    )
    stubber.add_response("disable_image_deprecation", {"Return": True}, {"ImageId": image_id})
    stubber.add_response("create_tags", {}, {"Resources": [image_id], "Tags": ANY})
    images = Ec2Images("us-east-1")
    images._ec2 = ec2
    monkeypatch.setattr(wiring, "Ec2Images", lambda region: images)
    wiring.reset()

    # When the tag change is judged
    with stubber:
        result = invoke(tags_event("create_tags_approval", [image_id], GOOD_TAGS))
        stubber.assert_no_pending_responses()

    # Then the deprecation is cancelled and the remediation tag says so
    assert result["images"][0]["remediation"] == "cancelled the deprecation"
