"""Pure rules for approval-gated replication, table-tested."""

from __future__ import annotations

import pytest

from ami_governance.models.image import ImageFacts
from ami_governance.models.lineage import ApprovalStatus
from ami_governance.models.policy import PolicyError, load_policy_file, parse_policy
from ami_governance.rules.approval import (
    client_token,
    copy_request,
    generation_of,
    judge_approval,
    regions_to_queue,
    retry_delay_seconds,
    round_is_over,
    target_regions,
    withdrawn_answer,
)
from tests.conftest import POLICY_FILE

P = "ami-governance:"
APPROVER = "arn:aws:iam::111122223333:role/ImageApprover"
SESSION = "arn:aws:sts::111122223333:assumed-role/ImageApprover/lead"


def policy(approval=None, **replication):
    document = load_policy_file(POLICY_FILE).model_dump(mode="json")
    document["governed_regions"] = ["us-east-1", "eu-west-1", "ap-southeast-2"]
    document["approval"] = {"approvers": ["arn:aws:iam::*:role/ImageApprover"], **(approval or {})}
    document["replication"] = {"regions": ["us-east-1", "eu-west-1", "ap-southeast-2"], **replication}
    return parse_policy(document)


POLICY = policy(kms_keys={"eu-west-1": "alias/ami-replicas"})


def image(state="available", compliance="compliant", region="us-east-1", approved="true", **tags):
    """An AMI as DescribeImages shows it; by default it carries the approval tag (its approval is current)."""
    all_tags = {f"{P}compliance": compliance, **tags} if compliance else dict(tags)
    if approved is not None:
        all_tags[f"{P}approved"] = approved
    return ImageFacts("ami-0a1b2c3d4e5f60718", region, "111122223333", "payments-api-al2023-1.4.0", state, all_tags)


APPROVAL = {f"{P}approved": "true"}


@pytest.mark.parametrize(
    ("tags_set", "callers", "the_image", "status", "reason"),
    [
        ({"Owner": "x"}, [APPROVER], image(), ApprovalStatus.NOT_AN_APPROVAL, ""),
        ({f"{P}approved": "false"}, [APPROVER], image(), ApprovalStatus.NOT_AN_APPROVAL, ""),
        (APPROVAL, [APPROVER, SESSION], image(), ApprovalStatus.APPROVED, ""),
        (APPROVAL, ["arn:aws:iam::111122223333:role/PlatformEngineer"], image(), ApprovalStatus.REJECTED,
         "arn:aws:iam::111122223333:role/PlatformEngineer is not allowed to approve AMIs"),
        (APPROVAL, [], image(), ApprovalStatus.REJECTED, "an unknown caller is not allowed to approve AMIs"),
        (APPROVAL, [APPROVER], image(compliance="non-compliant"), ApprovalStatus.REJECTED,
         "the AMI is non-compliant"),
        # available and approved, but enforcement's verdict is not on it yet: the service waits for it
        (APPROVAL, [APPROVER], image(compliance=None), ApprovalStatus.UNJUDGED, "the AMI is not yet judged"),
        (APPROVAL, [APPROVER], image(compliance=None, state="disabled"), ApprovalStatus.REJECTED,
         "the AMI is not yet judged"),
        (APPROVAL, [APPROVER], image(compliance="exempt"), ApprovalStatus.REJECTED, "the AMI is exempt"),
        (APPROVAL, [APPROVER], image(state="pending"), ApprovalStatus.PENDING,
         "copies start when the AMI is available"),
        (APPROVAL, [APPROVER], image(state="disabled"), ApprovalStatus.REJECTED, "the AMI is disabled"),
        # The event set the tag, the AMI no longer has it (removed, or set to another value, before the event was
        # handled): withdrawn, whoever the caller and whatever the AMI's verdict
        (APPROVAL, [APPROVER], image(approved=None), ApprovalStatus.WITHDRAWN,
         f"the AMI no longer carries {P}approved=true"),
        (APPROVAL, [APPROVER], image(approved="false"), ApprovalStatus.WITHDRAWN,
         f"the AMI no longer carries {P}approved=true"),
        (APPROVAL, ["arn:aws:iam::111122223333:role/PlatformEngineer"], image(approved=None, compliance=None),
         ApprovalStatus.WITHDRAWN, f"the AMI no longer carries {P}approved=true"),
    ],
)  # fmt: skip
def test_judge_approval(tags_set, callers, the_image, status, reason):
    decision = judge_approval(POLICY, tags_set, callers, the_image)

    assert decision.status is status
    assert decision.reason == reason


def test_the_approver_is_the_matching_principal():
    assert judge_approval(POLICY, APPROVAL, [SESSION, APPROVER], image()).approver == APPROVER


def test_a_session_name_the_caller_chose_does_not_make_an_approver():
    loose = policy(approval={"approvers": ["*ImageApprover*"]})
    developer = [
        "arn:aws:iam::111122223333:role/Developer",
        "arn:aws:sts::111122223333:assumed-role/Developer/ImageApprover",
    ]

    assert judge_approval(loose, APPROVAL, developer, image()).status is ApprovalStatus.REJECTED
    for_sessions = policy(approval={"approvers": ["arn:aws:sts::*:assumed-role/Developer/ImageApprover"]})
    assert judge_approval(for_sessions, APPROVAL, developer, image()).status is ApprovalStatus.APPROVED


def test_exempt_amis_may_be_approved_only_where_the_policy_allows_it():
    exempt = image(compliance="exempt")
    allowing = policy(approval={"allow_exempt": True})

    assert judge_approval(POLICY, APPROVAL, [APPROVER], exempt).status is ApprovalStatus.REJECTED
    assert judge_approval(allowing, APPROVAL, [APPROVER], exempt).status is ApprovalStatus.APPROVED


def test_a_pending_ami_not_yet_judged_waits_for_its_available_event():
    decision = judge_approval(POLICY, APPROVAL, [APPROVER], image(state="pending", compliance=None))

    assert decision.status is ApprovalStatus.PENDING


@pytest.mark.parametrize(
    ("the_image", "regions", "ignored"),
    [
        (image(), ("eu-west-1", "ap-southeast-2"), ()),
        (image(region="eu-west-1"), ("us-east-1", "ap-southeast-2"), ()),
        (image(**{f"{P}replicate-to": "eu-west-1"}), ("eu-west-1",), ()),
        (image(**{f"{P}replicate-to": " eu-west-1 , mars-1,us-east-1"}), ("eu-west-1",), ("mars-1",)),
        (image(**{f"{P}replicate-to": ""}), (), ()),
    ],
)
def test_target_regions(the_image, regions, ignored):
    targets = target_regions(POLICY, the_image)

    assert targets.regions == regions
    assert targets.ignored == ignored


def test_client_tokens_are_deterministic_per_source_target_and_generation():
    token = client_token("ami-0a1b2c3d4e5f60718", "us-east-1", "eu-west-1")

    assert token == client_token("ami-0a1b2c3d4e5f60718", "us-east-1", "eu-west-1")
    assert token != client_token("ami-0a1b2c3d4e5f60718", "us-east-1", "ap-southeast-2")
    assert token != client_token("ami-0a1b2c3d4e5f60718", "us-east-1", "eu-west-1", generation=1)
    assert len(token) <= 64
    assert token.isascii()


def test_a_copy_request_is_encrypted_where_a_key_is_named_and_carries_its_lineage():
    request = copy_request(
        POLICY, "ami-0a1b2c3d4e5f60718", "us-east-1", "eu-west-1",
        name="payments-api-al2023-1.4.0", description="golden", approver=SESSION, generation=0,
    )  # fmt: skip

    assert (request.encrypted, request.kms_key_id) == (True, "alias/ami-replicas")
    assert request.tags == {
        f"{P}source-image": "us-east-1/ami-0a1b2c3d4e5f60718",
        f"{P}source-region": "us-east-1",
        f"{P}approved-by": SESSION,
    }
    assert (request.name, request.description) == ("payments-api-al2023-1.4.0", "golden")
    unencrypted = copy_request(
        POLICY, "ami-0a1b2c3d4e5f60718", "us-east-1", "ap-southeast-2",
        name="n", description="", approver=SESSION, generation=0,
    )  # fmt: skip
    assert (unencrypted.encrypted, unencrypted.kms_key_id) == (False, None)


NOW = "2026-11-27T12:00:00Z"
EARLIER, LATER = "2026-11-27T11:55:00Z", "2026-11-27T12:05:00Z"


@pytest.mark.parametrize(
    ("replicas", "queue", "present"),
    [
        ({}, ["eu-west-1", "ap-southeast-2"], []),
        ({"eu-west-1": {"state": "available"}}, ["ap-southeast-2"], ["eu-west-1"]),
        ({"eu-west-1": {"state": "copying", "lease_until": LATER}, "ap-southeast-2": {"state": "failed"}},
         ["ap-southeast-2"], ["eu-west-1"]),
        ({"eu-west-1": {"state": "deregistered"}}, ["eu-west-1", "ap-southeast-2"], []),
        # this same event queued it: its jobs are sent again; another event's queued job is left to the queue
        ({"eu-west-1": {"state": "queued", "approval_event_id": "e1"}}, ["eu-west-1", "ap-southeast-2"], []),
        ({"eu-west-1": {"state": "queued", "approval_event_id": "e0"}}, ["ap-southeast-2"], ["eu-west-1"]),
        # a failure of this same event is not retried by its repeated delivery
        ({"eu-west-1": {"state": "failed", "approval_event_id": "e1"}}, ["ap-southeast-2"], ["eu-west-1"]),
        # a worker that claimed a copy and died before EC2 answered: copied again once its lease is over
        ({"eu-west-1": {"state": "copying", "lease_until": EARLIER}}, ["eu-west-1", "ap-southeast-2"], []),
        ({"eu-west-1": {"state": "copying", "lease_until": EARLIER, "image_id": "ami-1"}},
         ["ap-southeast-2"], ["eu-west-1"]),
        # a copy withdrawn before it started is queued again by a later approval, not by a repeat of its own
        ({"eu-west-1": {"state": "withdrawn", "approval_event_id": "e0"}}, ["eu-west-1", "ap-southeast-2"], []),
        ({"eu-west-1": {"state": "withdrawn", "approval_event_id": "e1"}}, ["ap-southeast-2"], ["eu-west-1"]),
    ],
)  # fmt: skip
def test_regions_to_queue(replicas, queue, present):
    assert regions_to_queue(["eu-west-1", "ap-southeast-2"], replicas, "e1", NOW) == (queue, present)


@pytest.mark.parametrize(
    ("entry", "generation"),
    [(None, 0), ({"state": "available", "generation": 0}, 0), ({"state": "failed", "generation": 0}, 1),
     ({"state": "deregistered", "generation": 2}, 3), ({"state": "queued", "generation": 1}, 1),
     # no copy was made for a withdrawn region: its ClientToken stays
     ({"state": "withdrawn", "generation": 1}, 1)],
)  # fmt: skip
def test_a_new_copy_after_a_dead_one_gets_a_new_generation(entry, generation):
    assert generation_of(entry) == generation


def test_a_round_is_over_when_every_target_is_available_failed_or_withdrawn():
    assert not round_is_over([], {})
    assert not round_is_over(["eu-west-1"], {"eu-west-1": {"state": "copying"}})
    assert round_is_over(["eu-west-1", "ap-southeast-2"], {"eu-west-1": {"state": "available"},
                                                          "ap-southeast-2": {"state": "failed"}})  # fmt: skip
    assert round_is_over(["eu-west-1", "ap-southeast-2"], {"eu-west-1": {"state": "available"},
                                                          "ap-southeast-2": {"state": "withdrawn"}})  # fmt: skip


def test_the_answer_to_a_withdrawal_names_the_regions_not_copied():
    replicas = {"eu-west-1": {"state": "withdrawn"}, "ap-southeast-2": {"state": "available"},
                "us-west-2": {"state": "withdrawn"}}  # fmt: skip

    assert withdrawn_answer(POLICY, replicas) == (
        f"withdrawn: the AMI no longer carries {P}approved=true; not copied to eu-west-1, us-west-2"
    )


@pytest.mark.parametrize(("receive_count", "seconds"), [(1, 60), (2, 120), (4, 480), (5, 900), (40, 900), (0, 60)])
def test_deferred_copies_back_off_to_fifteen_minutes(receive_count, seconds):
    assert retry_delay_seconds(receive_count) == seconds


@pytest.mark.parametrize(
    ("replication", "message"),
    [
        ({"regions": ["us-east-1", "sa-east-1"]}, "replication.regions ['sa-east-1'] must be governed regions too"),
        ({"regions": ["eu-west-1"], "kms_keys": {"us-east-1": "alias/x"}}, "not a replication region"),
        ({"regions": ["eu-west-1"], "kms_keys": {"eu-west-1": "my key"}}, "is not a KMS key alias, id or ARN"),
        (
            {"regions": ["eu-west-1"], "kms_keys": {"eu-west-1": "arn:aws:kms:us-east-1:111122223333:key/k"}},
            "the key ARN is in us-east-1, not eu-west-1",
        ),
        ({"regions": ["eu-west-1"], "share_with": {"accounts": ["12345"]}}, "replication.share_with.accounts.0"),
    ],
)
def test_bad_replication_policy_is_named(replication, message):
    document = load_policy_file(POLICY_FILE).model_dump(mode="json")
    document["replication"] = replication

    with pytest.raises(PolicyError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_policy(document)
