"""Enforcement end to end on the emulator: AWS API calls in, verdicts, notices and records out."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from ami_governance.adapters.inventory import plain_item
from tests.conftest import load_event
from tests.e2e.conftest import OTHER, PREFIX

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

GOOD_TAGS = {"Owner": "payments-team", "Environment": "prod", "CostCenter": "CC-1042"}


def create_image(emulator, name, tags=None, region="us-east-1", access_key="jdoe"):
    instance_id = emulator.launch_instance(region)
    request = {"InstanceId": instance_id, "Name": name}
    if tags:
        request["TagSpecifications"] = [
            {"ResourceType": "image", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        ]
    return emulator.client("ec2", region, access_key).create_image(**request)["ImageId"]


def enforce_results(ran, image_id):
    return [
        image
        for invocation in ran
        if invocation["outcome"] == "success" and invocation["result"]
        for image in invocation["result"].get("images", [])
        if image["image_id"] == image_id
    ]


def test_new_amis_get_verdicts_notices_and_inventory_records(emulator, inbox):
    # Given a compliant and a non-compliant AMI, created through the EC2 API
    good = create_image(emulator, "payments-api-al2023-2.0.0", GOOD_TAGS)
    bad = create_image(emulator, "scratch build")

    # When the emulated CloudTrail and AMI state-change events have been handled
    ran = emulator.drain()

    # Then each AMI carries its verdict and provenance naming the caller (access key "jdoe")
    assert emulator.tags_of(good)[f"{PREFIX}compliance"] == "compliant"
    bad_tags = emulator.tags_of(bad)
    assert bad_tags[f"{PREFIX}compliance"] == "non-compliant"
    assert bad_tags[f"{PREFIX}violations"] == (
        "naming; missing-tag:Owner; missing-tag:Environment; missing-tag:CostCenter"
    )
    assert bad_tags[f"{PREFIX}created-by-session"] == "arn:aws:sts::123456789012:assumed-role/PlatformEngineer/jdoe"
    # and the non-compliant one is announced once, on the topic the stack created
    assert [n["body"]["image_id"] for n in inbox()] == [bad]
    # and both are in the inventory with their snapshots (recorded on `available`)
    [function] = [f for f in emulator.functions() if f["handler"] == "handlers.enforce.handler"]
    table = function["environment"]["INVENTORY_TABLE_NAME"]
    item = plain_item(
        emulator.client("dynamodb").get_item(
            TableName=table, Key={"image_id": {"S": bad}, "region": {"S": "us-east-1"}}
        )["Item"]
    )
    assert item["compliance"] == "non-compliant"
    assert item["snapshot_ids"]
    assert {r["result"] for r in enforce_results(ran, good)} <= {"evaluated", "provisional"}


def test_fixing_the_tags_clears_the_violation(emulator, inbox):
    image_id = create_image(emulator, "payments-api-al2023-2.0.1", {"Owner": "payments-team"})
    emulator.drain()
    inbox()

    emulator.client("ec2").create_tags(
        Resources=[image_id], Tags=[{"Key": k, "Value": v} for k, v in GOOD_TAGS.items()]
    )
    emulator.drain()

    assert emulator.tags_of(image_id)[f"{PREFIX}compliance"] == "compliant"
    assert [n["body"]["kind"] for n in inbox()] == ["ami-compliance-restored"]


def test_governance_tag_writes_come_back_as_events_and_are_ignored(emulator):
    image_id = create_image(emulator, "loop check")

    ran = emulator.drain()

    # The Lambda's own CreateTags call is recorded by CloudTrail as made by its role...
    own_writes = [
        e
        for e in emulator.events()
        if e["event"]["detail"].get("eventName") == "CreateTags"
        and image_id in str(e["event"]["detail"]["requestParameters"])
    ]
    assert own_writes
    identity = own_writes[0]["event"]["detail"]["userIdentity"]
    assert identity["sessionContext"]["sessionIssuer"]["arn"].startswith("arn:aws:iam::123456789012:role/")
    # ...reaches the enforce Lambda, which drops it without a second evaluation: the drain ended, no loop
    echoes = [i["result"] for i in ran if i["result"] and i["result"].get("reason") == "only governance tags changed"]
    assert echoes


def test_a_failed_call_is_recorded_with_its_error_and_judges_nothing(emulator):
    ec2 = emulator.client("ec2")
    with pytest.raises(ClientError):
        ec2.create_image(InstanceId="i-0000000000000dead", Name="never-created")

    ran = emulator.drain()

    [failed] = [
        e for e in emulator.events()
        if e["bus"] == "default" and e["event"]["detail"].get("requestParameters", {}).get("name") == "never-created"
    ]  # fmt: skip
    assert failed["event"]["detail"]["errorCode"].startswith("InvalidInstanceID")
    assert failed["event"]["detail"]["responseElements"] is None
    assert not [i for i in ran if i["event_id"] == failed["event_id"] and "Enforce" in i["target"]]


def test_an_ami_in_another_governed_region_is_forwarded_and_judged(emulator):
    image_id = create_image(emulator, "scratch in ireland", region=OTHER)

    ran = emulator.drain()

    assert emulator.tags_of(image_id, region=OTHER)[f"{PREFIX}compliance"] == "non-compliant"
    forwarded = [
        i for i in ran if i["rule"].startswith("AmiGovernanceForwarder-eu-west-1") and i["outcome"] == "delivered"
    ]
    assert forwarded


def test_recorded_cloudtrail_events_have_the_shape_aws_delivers(emulator):
    image_id = create_image(emulator, "shape-check-al2023-1.0.0", GOOD_TAGS)
    emulator.drain()

    [recorded] = [
        e["event"] for e in emulator.events()
        if e["bus"] == "default" and (e["event"]["detail"].get("responseElements") or {}).get("imageId") == image_id
    ]  # fmt: skip
    sample = load_event("create_image")

    assert recorded.keys() == sample.keys()
    assert set(sample["detail"]) - {"sessionCredentialFromConsole"} <= set(recorded["detail"])
    params = recorded["detail"]["requestParameters"]
    assert params["tagSpecificationSet"]["items"][0]["resourceType"] == "image"
    assert {"key": "Owner", "value": "payments-team"} in params["tagSpecificationSet"]["items"][0]["tags"]
    assert params["noReboot"] is False
    assert recorded["detail"]["userIdentity"]["type"] == "AssumedRole"
