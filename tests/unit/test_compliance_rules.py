"""Pure compliance rules, table-tested."""

from __future__ import annotations

import pytest

from ami_governance.models.image import ComplianceStatus, Creator, EvaluationSubject
from ami_governance.models.policy import load_policy_file, parse_policy
from ami_governance.rules.compliance import evaluate, find_exemption
from tests.conftest import POLICY_FILE

POLICY = load_policy_file(POLICY_FILE)
GOOD_NAME = "payments-api-al2023-1.4.0"
GOOD_TAGS = {"Owner": "payments-team", "Environment": "prod", "CostCenter": "CC-1042"}


NOBODY = Creator()
IMAGE_BUILDER_ROLE = (
    "arn:aws:iam::111122223333:role/aws-service-role/imagebuilder.amazonaws.com/AWSServiceRoleForImageBuilder"
)


def subject(name=GOOD_NAME, tags=None, creator=NOBODY, no_reboot=False):
    return EvaluationSubject(name=name, tags=GOOD_TAGS if tags is None else tags, creator=creator, no_reboot=no_reboot)


@pytest.mark.parametrize(
    ("case", "expected_status", "expected_violations"),
    [
        (subject(), "compliant", []),
        (subject(name="test image"), "non-compliant", ["naming"]),
        (subject(name="payments-api-al2023-1.4"), "non-compliant", ["naming"]),
        (subject(name=" payments-api-al2023-1.4.0"), "non-compliant", ["naming"]),
        (subject(tags={}), "non-compliant", ["missing-tag:Owner", "missing-tag:Environment", "missing-tag:CostCenter"]),
        (subject(tags={**GOOD_TAGS, "Environment": "qa"}), "non-compliant", ["tag-value:Environment"]),
        (subject(tags={**GOOD_TAGS, "Environment": "Prod"}), "non-compliant", ["tag-value:Environment"]),
        (subject(tags={**GOOD_TAGS, "CostCenter": "CC-10421"}), "non-compliant", ["tag-value:CostCenter"]),
        (subject(tags={**GOOD_TAGS, "Application": "payments-api"}), "compliant", []),
        (subject(tags={**GOOD_TAGS, "Application": "billing"}), "non-compliant", ["name-tag-mismatch:Application"]),
        (subject(no_reboot=True), "compliant", []),
    ],
)
def test_evaluate(case, expected_status, expected_violations):
    verdict = evaluate(POLICY, case)

    assert verdict.status.value == expected_status
    assert [v.short for v in verdict.violations] == expected_violations


def test_no_reboot_is_a_warning_by_default():
    verdict = evaluate(POLICY, subject(no_reboot=True))

    assert [w.short for w in verdict.warnings] == ["no-reboot"]


@pytest.mark.parametrize(
    ("stance", "violations", "warnings"),
    [
        ("allow", [], []),
        ("warn", [], ["no-reboot"]),
        ("violation", ["no-reboot"], []),
    ],
)
def test_no_reboot_stances(stance, violations, warnings):
    document = POLICY.model_dump(mode="json")
    document["consistency"]["no_reboot"] = stance
    policy = parse_policy(document)

    verdict = evaluate(policy, subject(no_reboot=True))

    assert [v.short for v in verdict.violations] == violations
    assert [w.short for w in verdict.warnings] == warnings


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        (subject(name="x", tags={"ami-governance:exempt": "true"}), "tag ami-governance:exempt=true"),
        (subject(name="x", tags={"ami-governance:exempt": "yes"}), None),
        (
            subject(name="x", creator=Creator(invoked_by="imagebuilder.amazonaws.com")),
            "invoked by imagebuilder.amazonaws.com",
        ),
        (subject(name="x", creator=Creator(invoked_by="autoscaling.amazonaws.com")), None),
        (
            subject(
                name="x",
                creator=Creator(principal_arn=IMAGE_BUILDER_ROLE),
            ),
            f"creator {IMAGE_BUILDER_ROLE}",
        ),
        (subject(name="x", creator=Creator(principal_arn="arn:aws:iam::111122223333:role/PlatformEngineer")), None),
    ],
)
def test_exemptions(case, reason):
    assert find_exemption(POLICY, case) == reason
    expected = ComplianceStatus.EXEMPT if reason else ComplianceStatus.NON_COMPLIANT
    assert evaluate(POLICY, case).status is expected


def test_policy_without_naming_or_tags_finds_everything_compliant():
    policy = parse_policy({"home_region": "us-east-1", "governed_regions": ["us-east-1"]})

    assert evaluate(policy, subject(name="anything at all", tags={})).status is ComplianceStatus.COMPLIANT
