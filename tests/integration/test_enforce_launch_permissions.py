"""ModifyImageAttribute(launchPermission) on the enforce Lambda: the AMI's launch permissions, as EC2 reports them
after the call (never as the event's add/remove lists claim), recorded in the inventory for the report."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ami_governance.adapters.inventory import Inventory
from ami_governance.models.findings import LaunchPermissions, VerifiedBy
from tests.integration.conftest import ACCOUNT, HOME, PUBLIC_AMI, TABLE
from tests.support import emitted_metric_names, load_event, recording_api_calls

pytestmark = pytest.mark.integration

PARTNER = "444455556666"
ORG = "arn:aws:organizations::123456789012:organization/o-a1b2c3d4e5"
OU = "arn:aws:organizations::123456789012:ou/o-a1b2c3d4e5/ou-ab12-cdefgh34"


def modify_event(image_id: str, **request_changes: Any) -> dict[str, Any]:
    """The sample ModifyImageAttribute CloudTrail event (it adds an account and an OU, removes `all`), naming this
    AMI in the moto account."""
    event = load_event("modify_image_attribute_launch_permission")
    event["account"] = ACCOUNT
    event["detail"]["requestParameters"]["imageId"] = image_id
    event["detail"]["requestParameters"].update(request_changes)
    return event


def warm(estate: Any, invoke: Any) -> str:
    """A warm Lambda (its policy read by an earlier invocation), and an AMI of this account it has not seen."""
    warm_up, _ = estate.create_image("warm-up")
    invoke(modify_event(warm_up))
    image_id, _ = estate.create_image("payments-api-al2023-1.4.0")
    return str(image_id)


def metrics(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return emitted_metric_names(capsys.readouterr().out)


def test_the_launch_permissions_ec2_reports_are_recorded_not_the_events_lists(estate, invoke, capsys):
    # Given an AMI shared with a partner account, an organization and an OU, and made public
    image_id = warm(estate, invoke)
    ec2 = estate.ec2()
    ec2.disable_image_block_public_access()
    grants = [{"UserId": PARTNER}, {"OrganizationArn": ORG}, {"OrganizationalUnitArn": OU}, {"Group": "all"}]
    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": grants})
    before = datetime.now(UTC).replace(microsecond=0)
    capsys.readouterr()

    # When the call's CloudTrail event arrives (its lists say "remove all": a stale or forged claim)
    with recording_api_calls() as api:
        result = invoke(modify_event(image_id))
    after = datetime.now(UTC)

    # Then the AMI is described (whose it is, whether it exists), its permissions are read, and one write
    # records them as EC2 has them
    assert api.operations() == ["DescribeImages", "DescribeImageAttribute", "UpdateItem"]
    assert result["status"] == "handled"
    assert [(i["image_id"], i["result"]) for i in result["images"]] == [(image_id, "launch-permissions-recorded")]
    recorded = estate.inventory_item(image_id)["launch_permissions"]
    assert {key: value for key, value in recorded.items() if key != "recorded_at"} == {
        "public": True, "accounts": [PARTNER], "organization_arns": [ORG], "ou_arns": [OU],
    }  # fmt: skip
    at = datetime.fromisoformat(recorded["recorded_at"].replace("Z", "+00:00"))
    assert recorded["recorded_at"].endswith("Z")
    assert before <= at <= after
    assert "LaunchPermissionsRecorded" in metrics(capsys)


def test_an_unshared_ami_is_recorded_as_private(estate, invoke):
    # Given an AMI whose last grantee was just removed
    image_id = warm(estate, invoke)
    ec2 = estate.ec2()
    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"UserId": PARTNER}]})
    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Remove": [{"UserId": PARTNER}]})

    # When the event arrives
    invoke(modify_event(image_id, launchPermission={"remove": {"items": [{"userId": PARTNER}]}}))

    # Then the record says it is shared with no one
    recorded = estate.inventory_item(image_id)["launch_permissions"]
    assert (recorded["public"], recorded["accounts"], recorded["organization_arns"], recorded["ou_arns"]) == (
        False, [], [], []
    )  # fmt: skip


def test_the_other_fields_of_the_item_survive(estate, invoke):
    # Given an AMI the inventory already knows
    image_id = warm(estate, invoke)
    Inventory(TABLE, HOME).record(image_id, HOME, {"compliance": "compliant", "snapshot_ids": ["snap-1"]})

    invoke(modify_event(image_id))

    item = estate.inventory_item(image_id)
    assert (item["compliance"], item["snapshot_ids"], item["launch_permissions"]["public"]) == (
        "compliant", ["snap-1"], False
    )  # fmt: skip


def test_a_later_reading_already_recorded_stands(estate, invoke, capsys):
    # Given a reading recorded "later" than this event is handled (the report's, say)
    image_id = warm(estate, invoke)
    later = LaunchPermissions(
        image_id, VerifiedBy.DESCRIBE, accounts=(PARTNER,), recorded_at=datetime(2099, 1, 1, tzinfo=UTC)
    )
    Inventory(TABLE, HOME).record_launch_permissions(image_id, HOME, later)
    capsys.readouterr()

    # When the event's reading comes to be written
    result = invoke(modify_event(image_id))

    # Then it is dropped: the later reading stands
    assert [i["result"] for i in result["images"]] == ["launch-permissions-superseded"]
    recorded = estate.inventory_item(image_id)["launch_permissions"]
    assert (recorded["accounts"], recorded["recorded_at"]) == ([PARTNER], "2099-01-01T00:00:00Z")
    assert "LaunchPermissionsSuperseded" in metrics(capsys)


def test_an_ami_gone_before_the_event_arrives_is_not_recorded(estate, invoke, capsys):
    # Given an AMI deregistered since the call
    image_id = warm(estate, invoke)
    estate.ec2().deregister_image(ImageId=image_id)
    capsys.readouterr()

    # When the event arrives
    with recording_api_calls() as api:
        result = invoke(modify_event(image_id))

    # Then nothing is read beyond the describe and nothing is written: no item for an AMI that is gone
    assert api.operations() == ["DescribeImages"]
    assert result["status"] == "handled"
    assert [i["result"] for i in result["images"]] == ["gone"]
    assert estate.inventory_item(image_id) is None
    assert "ImagesGone" in metrics(capsys)


def test_an_ami_of_another_account_is_not_read_nor_recorded(estate, invoke, capsys):
    # Given an event naming one of moto's public AMIs, owned by another account (a hand-made event)
    warm(estate, invoke)
    capsys.readouterr()

    with recording_api_calls() as api:
        result = invoke(modify_event(PUBLIC_AMI))

    assert api.operations() == ["DescribeImages"]
    assert [i["result"] for i in result["images"]] == ["foreign-image"]
    assert estate.inventory_item(PUBLIC_AMI) is None
    assert "ForeignImages" in metrics(capsys)


def test_another_attribute_is_ignored_without_a_call(estate, invoke, capsys):
    # Given a ModifyImageAttribute on the AMI's description (CloudTrail: attributeType description)
    image_id = warm(estate, invoke)
    event = modify_event(image_id, attributeType="description", description={"value": "new words"})
    del event["detail"]["requestParameters"]["launchPermission"]
    capsys.readouterr()

    with recording_api_calls() as api:
        result = invoke(event)

    assert api.operations() == []
    assert result["status"] == "ignored"
    assert result["reason"] == "attribute description is not launchPermission"
    assert "AttributeChangesIgnored" in metrics(capsys)


def test_a_record_naming_the_change_only_by_its_lists_is_handled(estate, invoke):
    # Given a record without attributeType but with launchPermission lists
    image_id = warm(estate, invoke)
    event = modify_event(image_id)
    del event["detail"]["requestParameters"]["attributeType"]

    result = invoke(event)

    assert [i["result"] for i in result["images"]] == ["launch-permissions-recorded"]


def test_an_event_naming_no_image_is_rejected_as_malformed(estate, invoke, capsys):
    warm(estate, invoke)
    event = modify_event("ami-0a1b2c3d4e5f60718")
    del event["detail"]["requestParameters"]["imageId"]
    capsys.readouterr()

    with recording_api_calls() as api:
        result = invoke(event)

    assert result["status"] == "rejected"
    assert "ModifyImageAttribute names no requestParameters.imageId" in result["reason"]
    assert api.operations() == []
    assert "MalformedEvents" in metrics(capsys)
