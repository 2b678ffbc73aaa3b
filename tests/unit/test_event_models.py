"""The event models accept ids and regions of AWS's own shape only, and calls that name what they act on."""

from __future__ import annotations

import json
from typing import Any, get_args

import pytest
from pydantic import ValidationError

from ami_governance.models.events import (
    AMI_STATE_CHANGE_DETAIL_TYPE,
    CLOUDTRAIL_DETAIL_TYPE,
    EC2_EVENT_SOURCE,
    EC2_SOURCE,
    IMAGE_LIFECYCLE_CALLS,
    NEW_IMAGE_CALLS,
    TAG_CALLS,
    AmiStateChangeEvent,
    CloudTrailImageEvent,
)
from ami_governance.models.ids import is_image_id
from ami_governance.models.jobs import CopyJob
from tests.support import EVENTS_DIR, load_event

HUGE = "ami-" + "0" * 100_000

VALID_IMAGE_IDS = ["ami-12c6146b", "ami-0a1b2c3d4e5f60718"]
INVALID_IMAGE_IDS = {
    "uppercase": "ami-0A1B2C3D4E5F60718",
    "16 digits": "ami-0a1b2c3d4e5f6071",
    "18 digits": "ami-0a1b2c3d4e5f607189",
    "7 digits": "ami-12c6146",
    "not hex": "ami-0a1b2c3d4e5f6071g",
    "trailing newline": "ami-0a1b2c3d4e5f60718\n",
    "no prefix": "0a1b2c3d4e5f60718",
    "another type": "snap-0a1b2c3d4e5f60718",
    "100 KB": HUGE,
}


def problems(error: pytest.ExceptionInfo[ValidationError]) -> list[str]:
    return [".".join(str(part) for part in e["loc"]) for e in error.value.errors()]


@pytest.mark.parametrize("image_id", VALID_IMAGE_IDS)
def test_an_image_id_is_ami_and_8_or_17_lowercase_hex_digits(image_id):
    assert is_image_id(image_id)
    assert AmiStateChangeEvent.model_validate(state_change(image_id)).detail.image_id == image_id


@pytest.mark.parametrize("image_id", INVALID_IMAGE_IDS.values(), ids=INVALID_IMAGE_IDS.keys())
def test_any_other_image_id_makes_a_state_change_malformed(image_id):
    assert not is_image_id(image_id)
    with pytest.raises(ValidationError) as error:
        AmiStateChangeEvent.model_validate(state_change(image_id))
    assert problems(error) == ["detail.ImageId"]


@pytest.mark.parametrize("value", [5, None, ["ami-0a1b2c3d4e5f60718"], {"id": "ami-0a1b2c3d4e5f60718"}])
def test_an_image_id_that_is_not_a_string_is_malformed(value):
    assert not is_image_id(value)
    with pytest.raises(ValidationError):
        AmiStateChangeEvent.model_validate(state_change(value))


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("responseElements", "imageId"), HUGE),
        (("responseElements", "imageId"), "ami-0A1B2C3D4E5F60718"),
        (("requestParameters", "instanceId"), "i-" + "f" * 100_000),
        (("requestParameters", "instanceId"), "i-0abc1234def56789"),
        (("requestParameters", "sourceImageId"), "ami-0a1b2c3d4e5f6071"),
        (("requestParameters", "imageId"), 17),
        (("requestParameters", "sourceRegion"), "us-east-1" * 10_000),
        (("awsRegion",), "US-EAST-1"),
        (("eventID",), "e" * 100_000),
    ],
)
def test_an_id_or_region_of_another_shape_makes_a_cloudtrail_event_malformed(path, value):
    event = load_event("copy_image")
    node = event["detail"]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value

    with pytest.raises(ValidationError) as error:
        CloudTrailImageEvent.model_validate(event)
    assert problems(error) == [".".join(("detail", *path))]


def test_the_envelope_region_must_look_like_a_region():
    event = load_event("ami_state_available")
    event["region"] = "x" * 100_000

    with pytest.raises(ValidationError) as error:
        AmiStateChangeEvent.model_validate(event)
    assert problems(error) == ["region"]


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1", "us-gov-west-1", "cn-northwest-1", "us-isob-east-1"])
def test_every_region_name_botocore_knows_has_the_shape(region):
    from ami_governance.models.policy import known_ec2_regions

    event = load_event("copy_image")
    for known in sorted(known_ec2_regions() | {region}):
        event["detail"]["awsRegion"] = known
        assert CloudTrailImageEvent.model_validate(event).detail.aws_region == known


def test_a_tag_call_keeps_its_valid_ami_ids_and_sets_the_others_apart():
    event = tags_call(["vol-0123456789abcdef0", "ami-0a1b2c3d4e5f60718", HUGE, "ami-12c6146b", "ami-X", "ami-12c6146b"])

    detail = CloudTrailImageEvent.model_validate(event).detail

    assert detail.image_ids_in_resources() == ["ami-0a1b2c3d4e5f60718", "ami-12c6146b"]
    assert detail.invalid_image_ids_in_resources() == [HUGE, "ami-X"]


@pytest.mark.parametrize(
    ("event_name", "request_parameters", "problem"),
    [
        ("DeregisterImage", {"resourcesSet": None}, "DeregisterImage names no requestParameters.imageId"),
        ("DeregisterImage", None, "DeregisterImage names no requestParameters.imageId"),
        ("CreateTags", {"resourcesSet": None}, "CreateTags names no resource in requestParameters.resourcesSet"),
        ("DeleteTags", {"resourcesSet": {"items": []}}, "DeleteTags names no resource"),
        ("CreateTags", {"tagSet": {"items": [{"key": "Owner", "value": "x"}]}}, "CreateTags names no resource"),
    ],
)
def test_a_successful_call_that_names_nothing_to_act_on_is_malformed(event_name, request_parameters, problem):
    event = load_event("deregister_image")
    event["detail"].update(eventName=event_name, requestParameters=request_parameters)

    with pytest.raises(ValidationError, match=problem):
        CloudTrailImageEvent.model_validate(event)


def test_a_failed_call_may_name_nothing():
    event = load_event("deregister_image")
    event["detail"].update(requestParameters=None, errorCode="InvalidAMIID.NotFound")

    assert CloudTrailImageEvent.model_validate(event).detail.error_code == "InvalidAMIID.NotFound"


@pytest.mark.parametrize(("key", "value"), [("k" * 129, "x"), ("Owner", "v" * 257)])
def test_a_tag_longer_than_ec2_allows_is_malformed(key, value):
    with pytest.raises(ValidationError):
        CloudTrailImageEvent.model_validate(tags_call(["ami-12c6146b"], {key: value}))


@pytest.mark.parametrize(
    ("field", "value"),
    [("source_image_id", HUGE), ("source_image_id", "ami-0A1B2C3D"), ("source_region", "r" * 100_000),
     ("target_region", "eu-west-1; drop")],
)  # fmt: skip
def test_a_copy_job_names_its_source_and_regions_by_aws_shape(field, value):
    job: dict[str, Any] = {
        "source_image_id": "ami-0a1b2c3d4e5f60718", "source_region": "us-east-1", "target_region": "eu-west-1",
        "name": "payments-api-1.4.0", "approved_by": "arn:aws:iam::123456789012:role/AmiApprover",
        "approval_event_id": "e-1", "generation": 0,
    }  # fmt: skip
    assert CopyJob.model_validate_json(json.dumps(job)).source_image_id == "ami-0a1b2c3d4e5f60718"

    with pytest.raises(ValidationError) as error:
        CopyJob.model_validate_json(json.dumps({**job, field: value}))
    assert problems(error) == [field]


@pytest.mark.parametrize(
    ("model", "detail_type"),
    [(CloudTrailImageEvent, CLOUDTRAIL_DETAIL_TYPE), (AmiStateChangeEvent, AMI_STATE_CHANGE_DETAIL_TYPE)],
)
def test_each_model_takes_the_detail_type_the_stacks_route_to_it(model, detail_type):
    # Given the detail type a model's Literal accepts (a Literal cannot name the constant itself)
    accepted = get_args(model.model_fields["detail_type"].annotation)

    # Then it is the name the stacks' event patterns match on (stacks/event_patterns.py imports the constant)
    assert accepted == (detail_type,)


@pytest.mark.parametrize("sample", sorted(path.stem for path in EVENTS_DIR.glob("*.json")))
def test_the_event_names_are_those_aws_sends(sample):
    # Given a real-shaped sample event
    event = load_event(sample)

    # Then its source, detail type and (for a CloudTrail record) event source and call are spelled as the names
    # the Lambdas and the stacks share
    assert event["source"] == EC2_SOURCE
    assert event["detail-type"] in {CLOUDTRAIL_DETAIL_TYPE, AMI_STATE_CHANGE_DETAIL_TYPE}
    if event["detail-type"] == CLOUDTRAIL_DETAIL_TYPE:
        assert event["detail"]["eventSource"] == EC2_EVENT_SOURCE
        assert event["detail"]["eventName"] in NEW_IMAGE_CALLS + IMAGE_LIFECYCLE_CALLS + TAG_CALLS


def state_change(image_id: Any) -> dict[str, Any]:
    event = load_event("ami_state_available")
    event["detail"]["ImageId"] = image_id
    return event


def tags_call(resource_ids: list[str], tags: dict[str, str] | None = None) -> dict[str, Any]:
    event = load_event("create_tags_approval")
    event["detail"]["requestParameters"]["resourcesSet"]["items"] = [{"resourceId": r} for r in resource_ids]
    if tags is not None:
        event["detail"]["requestParameters"]["tagSet"]["items"] = [{"key": k, "value": v} for k, v in tags.items()]
    return event


def test_a_launch_permission_change_is_parsed_as_cloudtrail_records_it():
    # Given the real-shaped ModifyImageAttribute record (adds an account and an OU, removes the group all)
    detail = CloudTrailImageEvent.model_validate(load_event("modify_image_attribute_launch_permission")).detail

    # Then it names its AMI and is a launch-permission change, with the lists as CloudTrail wrote them
    params = detail.request_parameters
    assert params is not None
    assert params.launch_permission is not None
    assert params.image_id == "ami-0a1b2c3d4e5f60718"
    assert detail.changes_launch_permissions() is True
    assert params.launch_permission.counts() == {"add": 2, "remove": 1}
    added = params.launch_permission.add
    assert added is not None
    assert [item.user_id or item.organizational_unit_arn for item in added.items] == [
        "444455556666",
        "arn:aws:organizations::111122223333:ou/o-a1b2c3d4e5/ou-ab12-cdefgh34",
    ]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"attributeType": "launchPermission"}, True),
        ({"attributeType": "description", "description": {"value": "x"}, "launchPermission": None}, False),
        ({"attributeType": "imdsSupport", "launchPermission": None}, False),
        ({"attributeType": None}, True),  # no attributeType, but launchPermission lists
        ({"attributeType": None, "launchPermission": None}, False),
    ],
)
def test_only_launch_permission_changes_count_as_such(changes, expected):
    event = load_event("modify_image_attribute_launch_permission")
    params = event["detail"]["requestParameters"]
    params.update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        del params[key]

    detail = CloudTrailImageEvent.model_validate(event).detail

    assert detail.changes_launch_permissions() is expected


def test_a_launch_permission_change_without_its_ami_is_malformed():
    event = load_event("modify_image_attribute_launch_permission")
    del event["detail"]["requestParameters"]["imageId"]

    with pytest.raises(ValidationError, match=r"ModifyImageAttribute names no requestParameters\.imageId"):
        CloudTrailImageEvent.model_validate(event)
