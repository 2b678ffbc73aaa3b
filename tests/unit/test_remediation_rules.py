"""Pure remediation planning, table-tested."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ami_governance.models.image import ComplianceStatus, ImageFacts, Verdict
from ami_governance.models.policy import load_policy_file, parse_policy
from ami_governance.rules.remediation import Ec2Action, describe_intended, plan_remediation
from tests.conftest import POLICY_FILE

NOW = datetime(2026, 11, 27, 10, 30, 45, tzinfo=UTC)
P = "ami-governance:"
BAD = Verdict(ComplianceStatus.NON_COMPLIANT)
GOOD = Verdict(ComplianceStatus.COMPLIANT)


def policy(mode="enforce", action="disable", days=7):
    document = load_policy_file(POLICY_FILE).model_dump(mode="json")
    document["mode"] = mode
    document["remediation"] = {"action": action, "grace_period_days": days}
    return parse_policy(document)


def image(**tags):
    return ImageFacts("ami-1", "us-east-1", "123456789012", "n", "available", tags=dict(tags))


@pytest.mark.parametrize(
    ("the_policy", "the_image", "verdict", "actions", "tag"),
    [
        (policy(mode="audit"), image(), BAD, (), None),
        (policy(action="none"), image(), BAD, (), None),
        (policy(), image(), BAD, (Ec2Action.DISABLE_IMAGE,), "disabled"),
        (policy(), image(**{f"{P}remediation": "disabled"}), BAD, (), None),
        (policy(), image(**{f"{P}protected": "yes"}), BAD, (), f"skipped: protected by {P}protected"),
        (policy(action="deprecate"), image(), BAD, (Ec2Action.ENABLE_DEPRECATION,), "deprecated 2026-12-04T10:30Z"),
        (
            policy(action="deprecate", days=0),
            image(),
            BAD,
            (Ec2Action.ENABLE_DEPRECATION,),
            "deprecated 2026-11-27T10:35Z",
        ),
        (policy(action="deregister"), image(), BAD, (), "deregister-after 2026-12-04T10:30:45Z"),
        (policy(), image(), GOOD, (), None),
        (policy(), image(**{f"{P}remediation": "disabled"}), GOOD, (Ec2Action.ENABLE_IMAGE,), "none"),
        (
            policy(action="disable"),
            image(**{f"{P}remediation": "deprecated 2026-12-04T10:30Z"}),
            GOOD,
            (Ec2Action.DISABLE_DEPRECATION,),
            "none",
        ),
        (policy(mode="audit"), image(**{f"{P}remediation": "disabled"}), GOOD, (), None),
        (
            policy(),
            image(**{f"{P}remediation": "deregister-after 2026-12-04T10:30:45Z"}),
            Verdict(ComplianceStatus.EXEMPT),
            (),
            "none",
        ),
        (policy(), image(**{f"{P}remediation": "none"}), GOOD, (), None),
    ],
)
def test_plan(the_policy, the_image, verdict, actions, tag):
    plan = plan_remediation(the_policy, the_image, verdict, NOW)

    assert plan.actions == actions
    assert plan.tag_value == tag


def test_cap_stops_further_remediation():
    plan = plan_remediation(policy(), image(), BAD, NOW, cap_reached=True)

    assert plan.actions == ()
    assert plan.summary == "skipped: blast-radius cap for this event reached"


def test_audit_notices_say_what_enforce_would_do():
    assert describe_intended(policy(mode="audit", action="deregister", days=3)) == (
        "enforce mode would deregister the AMI after 3 days"
    )
