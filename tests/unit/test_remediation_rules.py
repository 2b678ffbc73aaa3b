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


def image(state="available", deprecated=False, **tags):
    return ImageFacts(
        "ami-1",
        "us-east-1",
        "123456789012",
        "n",
        state,
        tags=dict(tags),
        deprecation_time="2026-12-04T10:30:00.000Z" if deprecated else None,
    )


DISABLED_BY_US = {f"{P}remediation": "disabled"}
DEPRECATED_BY_US = {f"{P}remediation": "deprecated 2026-12-04T10:30Z"}


@pytest.mark.parametrize(
    ("the_policy", "the_image", "verdict", "actions", "tag"),
    [
        # audit mode and "none" never act
        (policy(mode="audit"), image(), BAD, (), None),
        (policy(mode="audit"), image(state="disabled", **DISABLED_BY_US), GOOD, (), None),
        (policy(action="none"), image(), BAD, (), None),
        # remediate according to what the AMI is, not only what the tag says
        (policy(), image(), BAD, (Ec2Action.DISABLE_IMAGE,), "disabled"),
        (policy(), image(state="disabled", **DISABLED_BY_US), BAD, (), None),
        (policy(), image(state="disabled"), BAD, (), None),
        (policy(), image(**DISABLED_BY_US), BAD, (Ec2Action.DISABLE_IMAGE,), "disabled"),  # re-enabled by hand
        (policy(), image(state="pending"), BAD, (), None),  # waits for `available`
        (policy(), image(**{f"{P}protected": "yes"}), BAD, (), f"skipped: protected by {P}protected"),
        (policy(action="deprecate"), image(), BAD, (Ec2Action.ENABLE_DEPRECATION,), "deprecated 2026-12-04T10:30Z"),
        (policy(action="deprecate"), image(deprecated=True), BAD, (), None),
        (
            policy(action="deprecate", days=0),
            image(),
            BAD,
            (Ec2Action.ENABLE_DEPRECATION,),
            "deprecated 2026-11-27T10:35Z",
        ),
        (policy(action="deregister"), image(), BAD, (), "deregister-after 2026-12-04T10:30:45Z"),
        # undo only what this system did and is still in force
        (policy(), image(), GOOD, (), None),
        (policy(), image(state="disabled", **DISABLED_BY_US), GOOD, (Ec2Action.ENABLE_IMAGE,), "none"),
        (policy(), image(state="disabled"), GOOD, (), None),  # disabled by someone else: not ours to undo
        (policy(), image(**DISABLED_BY_US), GOOD, (), "none"),  # already enabled by hand: just clear the record
        (
            policy(action="disable"),
            image(deprecated=True, **DEPRECATED_BY_US),
            GOOD,
            (Ec2Action.DISABLE_DEPRECATION,),
            "none",
        ),
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
