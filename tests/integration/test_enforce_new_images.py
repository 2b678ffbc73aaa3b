"""Enforcement of new AMIs: the enforce handler on moto with real-shaped CloudTrail events."""

from __future__ import annotations

import pytest

from tests.conftest import load_event
from tests.integration.conftest import ACCOUNT, create_image_event
from tests.support import recording_api_calls

pytestmark = pytest.mark.integration

GOOD_NAME = "payments-api-al2023-1.4.0"
GOOD_TAGS = {"Owner": "payments-team", "Environment": "prod", "CostCenter": "CC-1042"}
PREFIX = "ami-governance:"


def test_compliant_image_gets_verdict_and_provenance_tags(estate, invoke):
    # Given an AMI created with a conforming name and the required tags
    image_id, instance_id = estate.create_image(GOOD_NAME, GOOD_TAGS)

    # When its CreateImage CloudTrail event arrives
    result = invoke(create_image_event(image_id, instance_id))

    # Then it is stamped compliant, with who/when/from-what provenance, and nobody is notified
    tags = estate.tags_of(image_id)
    assert result["images"][0]["compliance"] == "compliant"
    assert tags[f"{PREFIX}compliance"] == "compliant"
    assert tags[f"{PREFIX}violations"] == "none"
    assert tags[f"{PREFIX}created-by"] == "arn:aws:iam::111122223333:role/PlatformEngineer"
    assert tags[f"{PREFIX}created-by-session"] == "arn:aws:sts::111122223333:assumed-role/PlatformEngineer/jdoe"
    assert tags[f"{PREFIX}created-at"] == "2026-11-20T09:14:03Z"
    assert tags[f"{PREFIX}source-instance"] == instance_id
    assert tags[f"{PREFIX}created-by-event"] == "c0ffee00-1111-4a4a-8b8b-000000000001"
    assert estate.notices() == []


def test_no_reboot_image_is_a_warning_under_the_default_policy(estate, invoke):
    # Given the sample event, which sets noReboot=true on a running instance
    image_id, instance_id = estate.create_image(GOOD_NAME, GOOD_TAGS)

    invoke(create_image_event(image_id, instance_id))

    # Then the verdict stays compliant but the warning and the fact are recorded
    tags = estate.tags_of(image_id)
    assert tags[f"{PREFIX}warnings"] == "no-reboot"
    assert tags[f"{PREFIX}no-reboot"] == "true"


def test_no_reboot_is_a_violation_when_the_policy_says_so(estate, invoke, policy_with):
    estate.set_policy(policy_with(consistency={"no_reboot": "violation"}))
    image_id, instance_id = estate.create_image(GOOD_NAME, GOOD_TAGS)

    invoke(create_image_event(image_id, instance_id))

    assert estate.tags_of(image_id)[f"{PREFIX}violations"] == "no-reboot"
    assert estate.tags_of(image_id)[f"{PREFIX}compliance"] == "non-compliant"


def test_tags_requested_in_the_call_count_while_the_image_does_not_show_them_yet(estate, invoke):
    # Given an AMI whose tags are not (yet) visible on the image, but were requested in CreateImage
    image_id, instance_id = estate.create_image(GOOD_NAME)

    invoke(create_image_event(image_id, instance_id))

    # Then the event's tagSpecificationSet is used as the fallback
    assert estate.tags_of(image_id)[f"{PREFIX}compliance"] == "compliant"


def test_non_compliant_image_is_tagged_and_announced_once(estate, invoke):
    # Given an untagged console AMI with a free-form name
    image_id, instance_id = estate.create_image("test image")
    event = load_event("create_image_console_untagged")
    event["account"] = ACCOUNT
    event["detail"]["responseElements"]["imageId"] = image_id
    event["detail"]["requestParameters"]["instanceId"] = instance_id

    # When the event arrives
    invoke(event)

    # Then the verdict names every violation and one notice says how to fix them
    tags = estate.tags_of(image_id)
    assert tags[f"{PREFIX}compliance"] == "non-compliant"
    assert tags[f"{PREFIX}violations"] == "naming; missing-tag:Owner; missing-tag:Environment; missing-tag:CostCenter"
    assert tags[f"{PREFIX}created-by"] == "arn:aws:iam::111122223333:role/ConsoleAdmin"
    notices = estate.notices()
    assert len(notices) == 1
    body = notices[0]["body"]
    assert notices[0]["subject"] == f"AMI {image_id} in us-east-1 is non-compliant (4 violations)"
    assert body["image_id"] == image_id
    assert body["region"] == "us-east-1"
    assert body["creator"] == "arn:aws:iam::111122223333:role/ConsoleAdmin"
    assert [v["kind"] for v in body["violations"]] == ["naming", "missing-tag", "missing-tag", "missing-tag"]
    assert any("Environment" in fix and "dev, staging, prod" in fix for fix in body["how_to_fix"])
    assert body["remediation"].startswith("none (audit mode")


def test_duplicate_event_is_answered_from_its_first_handling(estate, invoke):
    # Given a non-compliant AMI already judged once
    image_id, instance_id = estate.create_image("test image", GOOD_TAGS)
    event = create_image_event(image_id, instance_id, name="test image")
    first = invoke(event)
    estate.notices()

    # When EventBridge delivers the same event again (at-least-once delivery)
    with recording_api_calls() as api:
        second = invoke(event)

    # Then the idempotency record answers it: the first answer, one conditional write, no EC2 call, no notice
    assert second == first
    assert api.idempotency == ["PutItem"]
    assert api.calls == []
    assert estate.notices() == []


def test_same_call_under_another_event_id_writes_nothing_and_notifies_nobody(estate, invoke):
    # Given a non-compliant AMI already judged once
    image_id, instance_id = estate.create_image("test image", GOOD_TAGS)
    event = create_image_event(image_id, instance_id, name="test image")
    invoke(event)
    estate.notices()

    # When the same call arrives as another event (CloudTrail's own duplicate, or after the record expired)
    with recording_api_calls() as api:
        second = invoke({**event, "id": "another-delivery-of-the-same-call"})

    # Then only the image is read: no tag write, no second notice
    assert second["images"][0]["tags_written"] == []
    assert second["images"][0]["notified"] is None
    assert api.operations("ec2") == ["DescribeImages"]
    assert api.operations("sns") == []
    assert estate.notices() == []


def test_copied_image_records_its_source(estate, invoke):
    # Given an AMI copied into eu-west-1 from us-east-1
    source_id, _ = estate.create_image(GOOD_NAME, GOOD_TAGS)
    copy_id = estate.ec2("eu-west-1").copy_image(SourceImageId=source_id, SourceRegion="us-east-1", Name=GOOD_NAME)[
        "ImageId"
    ]
    event = load_event("copy_image")
    event["account"] = ACCOUNT
    event["detail"]["requestParameters"]["sourceImageId"] = source_id
    event["detail"]["responseElements"]["imageId"] = copy_id

    invoke(event)

    tags = estate.tags_of(copy_id, region="eu-west-1")
    assert tags[f"{PREFIX}source-image"] == f"us-east-1/{source_id}"
    assert f"{PREFIX}source-instance" not in tags


def test_registered_image_is_judged(estate, invoke):
    image_id = estate.ec2().register_image(Name="batch-worker-ubuntu24-2.0.1", RootDeviceName="/dev/sda1")["ImageId"]
    event = load_event("register_image")
    event["account"] = ACCOUNT
    event["detail"]["responseElements"]["imageId"] = image_id

    result = invoke(event)

    # The name conforms; the required tags are missing.
    assert result["images"][0]["violations"] == [
        "missing-tag:Owner",
        "missing-tag:Environment",
        "missing-tag:CostCenter",
    ]


def test_image_exempt_by_tag_gets_only_the_exempt_verdict(estate, invoke):
    image_id, instance_id = estate.create_image("scratch", {"ami-governance:exempt": "true"})

    invoke(create_image_event(image_id, instance_id, name="scratch"))

    tags = estate.tags_of(image_id)
    assert tags[f"{PREFIX}compliance"] == "exempt"
    assert tags[f"{PREFIX}exemption"] == "tag ami-governance:exempt=true"
    assert f"{PREFIX}violations" not in tags
    assert estate.notices() == []


def test_image_made_by_an_exempt_service_is_exempt(estate, invoke):
    image_id, instance_id = estate.create_image("imagebuilder-output")
    event = create_image_event(image_id, instance_id, name="imagebuilder-output")
    event["detail"]["userIdentity"]["invokedBy"] = "imagebuilder.amazonaws.com"
    event["detail"]["requestParameters"].pop("tagSpecificationSet")

    invoke(event)

    tags = estate.tags_of(image_id)
    assert tags[f"{PREFIX}compliance"] == "exempt"
    assert tags[f"{PREFIX}invoked-by"] == "imagebuilder.amazonaws.com"
    assert estate.notices() == []


def test_name_group_must_agree_with_its_tag(estate, invoke):
    image_id, instance_id = estate.create_image(GOOD_NAME, {**GOOD_TAGS, "Application": "billing"})

    invoke(create_image_event(image_id, instance_id))

    assert estate.tags_of(image_id)[f"{PREFIX}violations"] == "name-tag-mismatch:Application"


def test_overlong_values_are_cut_to_the_tag_limit(estate, invoke):
    # Given a creator ARN longer than AWS's 256-character tag value limit
    image_id, instance_id = estate.create_image(GOOD_NAME, GOOD_TAGS)
    event = create_image_event(image_id, instance_id)
    long_arn = "arn:aws:sts::111122223333:assumed-role/PlatformEngineer/" + "s" * 300
    event["detail"]["userIdentity"]["arn"] = long_arn

    invoke(event)

    value = estate.tags_of(image_id)[f"{PREFIX}created-by-session"]
    assert len(value) == 256
    assert value.endswith("…")
    assert long_arn.startswith(value[:-1])
