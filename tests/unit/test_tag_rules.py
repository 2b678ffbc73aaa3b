"""Pure rules for system tags: provenance, verdict summaries within AWS limits, echo detection, diffs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ami_governance.models.events import CloudTrailImageEvent
from ami_governance.models.image import ComplianceStatus, ImageFacts, Verdict, Violation, ViolationKind
from ami_governance.models.policy import load_policy_file
from ami_governance.rules.tags import (
    creation_claims_refuted,
    creator_conflict,
    inherited_system_tags,
    only_system_tags_changed,
    provenance_tags,
    recorded_provenance,
    subject_from,
    summarise,
    tags_to_write,
    verdict_tags,
)
from tests.conftest import POLICY_FILE, load_event

POLICY = load_policy_file(POLICY_FILE)
P = "ami-governance:"


def test_provenance_of_create_image_by_an_assumed_role():
    detail = CloudTrailImageEvent.model_validate(load_event("create_image")).detail

    assert provenance_tags(POLICY, detail) == {
        f"{P}created-at": "2026-11-20T09:14:03Z",
        f"{P}created-by-event": "c0ffee00-1111-4a4a-8b8b-000000000001",
        f"{P}created-by": "arn:aws:iam::111122223333:role/PlatformEngineer",
        f"{P}created-by-session": "arn:aws:sts::111122223333:assumed-role/PlatformEngineer/jdoe",
        f"{P}source-instance": "i-0abc1234def567890",
        f"{P}no-reboot": "true",
    }


def test_provenance_of_copy_image_names_the_source():
    detail = CloudTrailImageEvent.model_validate(load_event("copy_image")).detail

    tags = provenance_tags(POLICY, detail)

    assert tags[f"{P}source-image"] == "us-east-1/ami-0a1b2c3d4e5f60718"
    assert f"{P}source-instance" not in tags
    assert f"{P}no-reboot" not in tags


def test_provenance_of_an_iam_user_has_no_session_tag():
    event = load_event("register_image")
    event["detail"]["userIdentity"] = {
        "type": "IAMUser",
        "arn": "arn:aws:iam::111122223333:user/ci",
        "accountId": "111122223333",
    }
    detail = CloudTrailImageEvent.model_validate(event).detail

    tags = provenance_tags(POLICY, detail)

    assert tags[f"{P}created-by"] == "arn:aws:iam::111122223333:user/ci"
    assert f"{P}created-by-session" not in tags


def test_verdict_tags():
    violation = Violation(ViolationKind.MISSING_TAG, "Owner", "tag Owner is missing", "add it")

    assert verdict_tags(POLICY, Verdict(ComplianceStatus.NON_COMPLIANT, (violation,))) == {
        f"{P}compliance": "non-compliant",
        f"{P}violations": "missing-tag:Owner",
        f"{P}warnings": "none",
    }
    assert verdict_tags(POLICY, Verdict(ComplianceStatus.EXEMPT, exemption="tag x=y")) == {
        f"{P}compliance": "exempt",
        f"{P}exemption": "tag x=y",
    }


def test_summary_drops_whole_items_and_counts_them():
    items = [f"missing-tag:{'K' * 60}{i}" for i in range(10)]

    text = summarise(items)

    assert len(text) <= 256
    assert text.endswith("; +7 more")
    assert text.startswith(items[0])


@given(st.lists(st.text(min_size=1, max_size=400), max_size=60))
def test_summary_always_fits_a_tag_value(items):
    assert len(summarise(items)) <= 256


def test_only_our_own_keys_count_as_an_echo():
    assert only_system_tags_changed(POLICY, [f"{P}compliance", f"{P}violations"])
    assert not only_system_tags_changed(POLICY, [f"{P}compliance", "Owner"])
    assert not only_system_tags_changed(POLICY, [f"{P}exempt"])  # set by people, not by us
    assert not only_system_tags_changed(POLICY, [])


def test_only_changed_tags_are_written():
    current = {"a": "1", "b": "2"}

    assert tags_to_write(POLICY, current, {"a": "1", "b": "3", "c": "4"}).to_write == {"b": "3", "c": "4"}
    assert not tags_to_write(POLICY, current, {"a": "1"})


def test_stale_verdict_keys_and_inherited_keys_are_deleted():
    current = {f"{P}compliance": "exempt", f"{P}exemption": "tag x=y", f"{P}source-instance": "i-1", "Owner": "me"}
    desired = {f"{P}compliance": "non-compliant", f"{P}violations": "naming"}

    change = tags_to_write(POLICY, current, desired, obsolete={f"{P}source-instance"})

    assert change.to_delete == {f"{P}exemption", f"{P}source-instance"}
    assert change.to_write == desired


def test_tag_budget_keeps_the_verdict_and_drops_provenance_first():
    # Given an AMI with 47 user tags: room for 3 new keys only
    current = {f"Key{i}": "v" for i in range(47)}
    desired = {
        f"{P}compliance": "non-compliant",
        f"{P}violations": "naming",
        f"{P}created-by": "arn",
        f"{P}created-at": "t",
        f"{P}no-reboot": "true",
        f"{P}remediation": "disabled",
    }

    change = tags_to_write(POLICY, current, desired)

    assert set(change.to_write) == {f"{P}compliance", f"{P}remediation", f"{P}violations"}
    assert set(change.dropped) == {f"{P}created-by", f"{P}created-at", f"{P}no-reboot"}


def test_replacing_values_at_the_limit_costs_nothing():
    current = {f"Key{i}": "v" for i in range(49)} | {f"{P}compliance": "compliant"}

    change = tags_to_write(POLICY, current, {f"{P}compliance": "non-compliant"})

    assert change.to_write == {f"{P}compliance": "non-compliant"}
    assert change.dropped == ()


def test_tags_without_our_image_id_are_inherited():
    copied = {f"{P}compliance": "exempt", f"{P}image-id": "ami-source", f"{P}exempt": "true", "Owner": "x"}

    assert inherited_system_tags(POLICY, copied, "ami-copy") == {f"{P}compliance", f"{P}image-id"}
    assert inherited_system_tags(POLICY, {**copied, f"{P}image-id": "ami-copy"}, "ami-copy") == set()


def test_subject_prefers_image_tags_and_reads_provenance_back_from_tags():
    subject = subject_from(
        POLICY,
        "n",
        image_tags={
            "Owner": "image",
            f"{P}created-by": "arn:aws:iam::1:role/R",
            f"{P}no-reboot": "true",
            f"{P}exempt": "true",
            f"{P}compliance": "compliant",
        },
        requested_tags={"Owner": "event", "Environment": "dev"},
    )

    assert subject.tags == {"Owner": "image", "Environment": "dev", f"{P}exempt": "true"}
    assert subject.creator.principal_arn == "arn:aws:iam::1:role/R"
    assert subject.no_reboot is True


def test_recorded_provenance_is_who_made_the_ami_and_which_event_said_so():
    tags = {
        f"{P}created-by": "arn:aws:iam::111122223333:role/PlatformEngineer",
        f"{P}created-at": "2026-11-20T09:14:03Z",
        f"{P}created-by-event": "c0ffee00",
        f"{P}compliance": "compliant",
        f"{P}source-image": "us-east-1/ami-0a1b2c3d4e5f60718",
        "Owner": "me",
    }

    assert recorded_provenance(POLICY, tags) == {
        f"{P}created-by": "arn:aws:iam::111122223333:role/PlatformEngineer",
        f"{P}created-at": "2026-11-20T09:14:03Z",
        f"{P}created-by-event": "c0ffee00",
    }


def test_a_replica_carrying_only_its_lineage_has_no_provenance_yet():
    # Replication writes source-image, source-region and approved-by on the copy as it creates it: that says where
    # the copy comes from, not who made it, so its first CloudTrail record still writes the provenance.
    lineage = {f"{P}source-image": "us-east-1/ami-0a1b2c3d4e5f60718", f"{P}source-region": "us-east-1",
               f"{P}approved-by": "arn:aws:iam::111122223333:role/AmiApprover"}  # fmt: skip

    assert recorded_provenance(POLICY, lineage) == {}


def test_a_later_creation_event_by_another_creator_conflicts_on_each_creator_tag_that_differs():
    recorded = {f"{P}created-by": "arn:aws:iam::1:role/PlatformEngineer", f"{P}created-at": "t1"}
    later = {f"{P}created-by": "arn:aws:iam::1:role/PlatformEngineer", f"{P}invoked-by": "imagebuilder.amazonaws.com",
             f"{P}created-at": "t2"}  # fmt: skip

    assert creator_conflict(POLICY, recorded, later) == {f"{P}invoked-by": (None, "imagebuilder.amazonaws.com")}
    assert creator_conflict(POLICY, recorded, {**recorded, f"{P}created-at": "t2"}) == {}


@pytest.mark.parametrize(
    ("shown_instance", "refuted"),
    [
        ("i-0abc1234def567890", {}),
        ("i-0fedcba9876543210", {"source-instance": ("i-0abc1234def567890", "i-0fedcba9876543210")}),
        (None, {}),  # a runtime whose botocore model lacks SourceInstanceId: nothing to contradict with
    ],
    ids=["same-instance", "another-instance", "ec2-shows-none"],
)
def test_a_create_image_record_naming_another_instance_than_ec2s_is_refuted(
    shown_instance: str | None, refuted: dict[str, tuple[str, str]]
) -> None:
    detail = CloudTrailImageEvent.model_validate(load_event("create_image")).detail
    image = ImageFacts("ami-0123456789abcdef0", "us-east-1", "123456789012", "n", "available",
                       source_instance_id=shown_instance)  # fmt: skip

    assert creation_claims_refuted(detail, image) == refuted
