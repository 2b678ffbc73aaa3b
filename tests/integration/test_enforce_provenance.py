"""Provenance is written once: a later creation event for the same AMI cannot rewrite who made it.

A CopyImage repeated with the same ClientToken returns the same AMI, whoever repeats it (moto's CopyImage is
completed by emulator/moto_extensions.py to honour the token, as EC2 does), and CloudTrail records both calls.
The second record must neither rewrite `created-by`/`created-at`/`source-*` nor turn a non-compliant AMI exempt
(and, in enforce mode, re-enable it) because the second caller is an exempt creator.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import load_event
from tests.integration.conftest import ACCOUNT, HOME, create_image_event, state_event
from tests.support import emitted_metric_names

pytestmark = pytest.mark.integration

P = "ami-governance:"
EU = "eu-west-1"
TOKEN = "copy-payments-api-to-eu"
ENGINEER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/PlatformEngineer"
ENGINEER_SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/PlatformEngineer/jdoe"
# Image Builder's service-linked role: exempt by the policy's creator_arn_patterns.
BUILDER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/imagebuilder.amazonaws.com/AWSServiceRoleForImageBuilder"
BUILDER_SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/AWSServiceRoleForImageBuilder/build-1"


def identity(role: str, session: str, invoked_by: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {
        "type": "AssumedRole",
        "arn": session,
        "accountId": ACCOUNT,
        "sessionContext": {"sessionIssuer": {"type": "Role", "arn": role, "accountId": ACCOUNT}},
    }
    if invoked_by:
        found["invokedBy"] = invoked_by
    return found


ENGINEER = identity(ENGINEER_ROLE, ENGINEER_SESSION)
BUILDER = identity(BUILDER_ROLE, BUILDER_SESSION)
BUILDER_INVOKED = identity(ENGINEER_ROLE, ENGINEER_SESSION, invoked_by="imagebuilder.amazonaws.com")


def copy_event(source_id: str, copy_id: str, who: dict[str, Any], event_id: str, at: str) -> dict[str, Any]:
    """The CloudTrail record of a CopyImage into eu-west-1 by `who`."""
    event = load_event("copy_image")
    event["account"] = ACCOUNT
    event["id"] = f"envelope-{event_id}"
    detail = event["detail"]
    detail.update(userIdentity=who, eventID=event_id, eventTime=at)
    detail["requestParameters"].update(sourceImageId=source_id, sourceRegion=HOME, clientToken=TOKEN)
    detail["responseElements"]["imageId"] = copy_id
    return event


def metric_names(capsys: pytest.CaptureFixture[str]) -> list[str]:
    """Names of the EMF metrics the invocation printed."""
    return emitted_metric_names(capsys.readouterr().out)


def exempt_source(estate, invoke) -> str:
    """An AMI Image Builder made in us-east-1: exempt, with provenance naming Image Builder."""
    source_id, instance_id = estate.create_image("imagebuilder-output")
    built = create_image_event(source_id, instance_id, name="imagebuilder-output", tags={})
    built["detail"]["userIdentity"] = BUILDER
    invoke(built)
    assert estate.tags_of(source_id)[f"{P}compliance"] == "exempt"
    return source_id


def copy(estate, source_id: str) -> str:
    """CopyImage into eu-west-1 with the client token and the source's tags (its governance tags come along)."""
    return str(
        estate.ec2(EU).copy_image(
            SourceImageId=source_id, SourceRegion=HOME, Name="imagebuilder-output", ClientToken=TOKEN,
            CopyImageTags=True,
        )["ImageId"]
    )  # fmt: skip


def image_state(estate, image_id: str) -> str:
    return str(estate.ec2(EU).describe_images(ImageIds=[image_id], IncludeDisabled=True)["Images"][0]["State"])


@pytest.mark.parametrize("second_caller", [BUILDER, BUILDER_INVOKED], ids=["exempt role", "invoked by Image Builder"])
def test_a_copy_repeated_by_an_exempt_creator_keeps_the_first_creator_and_its_verdict(
    estate, invoke, capsys, second_caller
):
    # Given an exempt source, copied to eu-west-1 by a platform engineer (CopyImageTags brings the source's
    # provenance along; the copy's own is written from the engineer's CloudTrail record) and judged non-compliant
    source_id = exempt_source(estate, invoke)
    copy_id = copy(estate, source_id)
    invoke(copy_event(source_id, copy_id, ENGINEER, "copy-1", "2026-11-20T11:00:09Z"))
    first = estate.tags_of(copy_id, EU)
    assert first[f"{P}compliance"] == "non-compliant"
    assert first[f"{P}created-by"] == ENGINEER_ROLE
    estate.notices()
    capsys.readouterr()

    # When Image Builder repeats the copy with the same ClientToken: EC2 returns the same AMI, CloudTrail
    # records a second CopyImage naming Image Builder
    assert copy(estate, source_id) == copy_id
    result = invoke(copy_event(source_id, copy_id, second_caller, "copy-2", "2026-11-20T11:05:00Z"))

    # Then the recorded provenance stays, the verdict follows it, the conflict is counted, and nobody is told the
    # AMI is fine now
    tags = estate.tags_of(copy_id, EU)
    for key in ("created-by", "created-by-session", "created-at", "created-by-event", "source-image"):
        assert tags[f"{P}{key}"] == first[f"{P}{key}"]
    assert tags[f"{P}created-by-event"] == "copy-1"
    assert f"{P}invoked-by" not in tags
    assert tags[f"{P}compliance"] == "non-compliant"
    assert f"{P}exemption" not in tags
    assert result["images"][0]["tags_written"] == []
    assert "ProvenanceConflicts" in metric_names(capsys)
    assert estate.notices() == []


def test_in_enforce_mode_a_copy_repeated_by_an_exempt_creator_stays_disabled(estate, invoke, policy_with):
    # Given enforce mode, and a copy the engineer made that was disabled as non-compliant
    estate.set_policy(policy_with(mode="enforce", remediation={"action": "disable"}))
    source_id = exempt_source(estate, invoke)
    copy_id = copy(estate, source_id)
    invoke(copy_event(source_id, copy_id, ENGINEER, "copy-1", "2026-11-20T11:00:09Z"))
    assert image_state(estate, copy_id) == "disabled"
    estate.notices()

    # When Image Builder's repeated copy (same ClientToken, same AMI) is recorded
    assert copy(estate, source_id) == copy_id
    invoke(copy_event(source_id, copy_id, BUILDER, "copy-2", "2026-11-20T11:05:00Z"))

    # Then the AMI is still judged as the engineer's: non-compliant and disabled, nothing undone
    tags = estate.tags_of(copy_id, EU)
    assert image_state(estate, copy_id) == "disabled"
    assert tags[f"{P}compliance"] == "non-compliant"
    assert tags[f"{P}remediation"] == "disabled"
    assert tags[f"{P}created-by"] == ENGINEER_ROLE
    assert estate.notices() == []


def test_when_the_state_change_comes_first_the_first_cloudtrail_record_writes_the_provenance(
    estate, invoke, policy_with
):
    # Given enforce mode and a copy whose `available` event is handled before any CloudTrail record (provisional:
    # no creator known, nothing remediated yet)
    estate.set_policy(policy_with(mode="enforce", remediation={"action": "disable"}))
    source_id = exempt_source(estate, invoke)
    copy_id = copy(estate, source_id)
    early = invoke(state_event(copy_id, region=EU))
    assert early["images"][0]["result"] == "provisional"
    assert f"{P}created-by" not in estate.tags_of(copy_id, EU)
    assert image_state(estate, copy_id) == "available"

    # When the engineer's record arrives, then Image Builder's for the repeated call
    invoke(copy_event(source_id, copy_id, ENGINEER, "copy-1", "2026-11-20T11:00:09Z"))
    invoke(copy_event(source_id, copy_id, BUILDER, "copy-2", "2026-11-20T11:05:00Z"))

    # Then the first record's creator is the one recorded, on the AMI and in the inventory, and the AMI is
    # remediated as the engineer's
    tags = estate.tags_of(copy_id, EU)
    assert tags[f"{P}created-by"] == ENGINEER_ROLE
    assert tags[f"{P}created-by-event"] == "copy-1"
    assert tags[f"{P}compliance"] == "non-compliant"
    assert image_state(estate, copy_id) == "disabled"
    assert estate.inventory_item(copy_id, EU)["created_by"] == ENGINEER_ROLE


def test_an_exempt_first_creator_stays_the_creator_when_someone_else_repeats_the_copy(estate, invoke, capsys):
    # Given a copy Image Builder made first (exempt)
    source_id = exempt_source(estate, invoke)
    copy_id = copy(estate, source_id)
    invoke(copy_event(source_id, copy_id, BUILDER, "copy-1", "2026-11-20T11:00:09Z"))
    assert estate.tags_of(copy_id, EU)[f"{P}compliance"] == "exempt"
    capsys.readouterr()

    # When the engineer repeats it with the same token
    invoke(copy_event(source_id, copy_id, ENGINEER, "copy-2", "2026-11-20T11:05:00Z"))

    # Then it stays Image Builder's, and exempt
    tags = estate.tags_of(copy_id, EU)
    assert tags[f"{P}created-by"] == BUILDER_ROLE
    assert tags[f"{P}compliance"] == "exempt"
    assert "ProvenanceConflicts" in metric_names(capsys)


def test_the_same_creator_repeating_the_copy_is_no_conflict(estate, invoke, capsys):
    source_id = exempt_source(estate, invoke)
    copy_id = copy(estate, source_id)
    invoke(copy_event(source_id, copy_id, ENGINEER, "copy-1", "2026-11-20T11:00:09Z"))
    capsys.readouterr()

    invoke(copy_event(source_id, copy_id, ENGINEER, "copy-2", "2026-11-20T11:05:00Z"))

    tags = estate.tags_of(copy_id, EU)
    assert tags[f"{P}created-at"] == "2026-11-20T11:00:09Z"
    assert tags[f"{P}created-by-event"] == "copy-1"
    assert "ProvenanceConflicts" not in metric_names(capsys)
