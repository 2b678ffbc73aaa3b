"""Pure rules for approval-gated replication, table-tested (groundwork for the replication capability)."""

from __future__ import annotations

import pytest

from ami_governance.models.image import ImageFacts
from ami_governance.models.policy import PolicyError, load_policy_file, parse_policy
from ami_governance.rules.approval import (
    ApprovalStatus,
    client_token,
    judge_approval,
    plan_copies,
    target_regions,
)
from tests.conftest import POLICY_FILE

P = "ami-governance:"
APPROVER = "arn:aws:iam::111122223333:role/ImageApprover"
SESSION = "arn:aws:sts::111122223333:assumed-role/ImageApprover/lead"


def policy(**replication):
    document = load_policy_file(POLICY_FILE).model_dump(mode="json")
    document["governed_regions"] = ["us-east-1", "eu-west-1", "ap-southeast-2"]
    document["approval"] = {"approvers": ["arn:aws:iam::*:role/ImageApprover"]}
    document["replication"] = {"regions": ["us-east-1", "eu-west-1", "ap-southeast-2"], **replication}
    return parse_policy(document)


POLICY = policy(kms_keys={"eu-west-1": "alias/ami-replicas"})


def image(state="available", compliance="compliant", region="us-east-1", **tags):
    all_tags = {f"{P}compliance": compliance, **tags} if compliance else dict(tags)
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
        (APPROVAL, [APPROVER], image(compliance=None), ApprovalStatus.REJECTED, "the AMI is not yet judged"),
        (APPROVAL, [APPROVER], image(compliance="exempt"), ApprovalStatus.REJECTED, "the AMI is exempt"),
        (APPROVAL, [APPROVER], image(state="pending"), ApprovalStatus.PENDING,
         "copies start when the AMI is available"),
        (APPROVAL, [APPROVER], image(state="disabled"), ApprovalStatus.REJECTED, "the AMI is disabled"),
    ],
)  # fmt: skip
def test_judge_approval(tags_set, callers, the_image, status, reason):
    decision = judge_approval(POLICY, tags_set, callers, the_image)

    assert decision.status is status
    assert decision.reason == reason


def test_the_approver_is_the_matching_principal():
    assert judge_approval(POLICY, APPROVAL, [SESSION, APPROVER], image()).approver == APPROVER


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


def test_client_tokens_are_deterministic_per_source_and_target():
    token = client_token("ami-0a1b2c3d4e5f60718", "us-east-1", "eu-west-1")

    assert token == client_token("ami-0a1b2c3d4e5f60718", "us-east-1", "eu-west-1")
    assert token != client_token("ami-0a1b2c3d4e5f60718", "us-east-1", "ap-southeast-2")
    assert len(token) <= 64
    assert token.isascii()


def test_plan_copies_skips_regions_with_a_replica_and_encrypts_where_a_key_is_named():
    requests = plan_copies(POLICY, image(), ["eu-west-1", "ap-southeast-2"], {"ap-southeast-2": "ami-replica"}, SESSION)

    [request] = requests
    assert request.region == "eu-west-1"
    assert (request.encrypted, request.kms_key_id) == (True, "alias/ami-replicas")
    assert request.tags == {f"{P}source-image": "us-east-1/ami-0a1b2c3d4e5f60718", f"{P}approved-by": SESSION}
    assert request.name == "payments-api-al2023-1.4.0"


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
