"""Pure remediation planning: what enforce mode does to a non-compliant AMI, and how it is undone.

The remediation tag records what was done, so that a later evaluation knows what to undo when the
AMI becomes compliant, and a repeated event does not act twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from ami_governance.models.image import ComplianceStatus, ImageFacts, Verdict
from ami_governance.models.policy import GovernancePolicy, Mode, RemediationAction
from ami_governance.rules.tags import NONE_VALUE, SystemTag

# AWS rejects a deprecation time in the past and rounds to the minute; keep a margin.
MIN_DEPRECATION_LEAD = timedelta(minutes=5)


class Ec2Action(StrEnum):
    DISABLE_IMAGE = "DisableImage"
    ENABLE_IMAGE = "EnableImage"
    ENABLE_DEPRECATION = "EnableImageDeprecation"
    DISABLE_DEPRECATION = "DisableImageDeprecation"


@dataclass(frozen=True)
class RemediationPlan:
    """EC2 calls to make (in order), then the remediation tag value to record; empty = nothing to do."""

    actions: tuple[Ec2Action, ...] = ()
    deprecate_at: datetime | None = None
    tag_value: str | None = None
    summary: str = ""
    counts_against_cap: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def is_empty(self) -> bool:
        return not self.actions and self.tag_value is None


NOTHING = RemediationPlan()


def _applied(tag_value: str | None) -> str | None:
    """The remediation currently in force according to the tag: 'disabled', 'deprecated', 'deregister-after'."""
    if not tag_value:
        return None
    head = tag_value.split(" ", 1)[0]
    return head if head in {"disabled", "deprecated", "deregister-after"} else None


def plan_remediation(
    policy: GovernancePolicy,
    image: ImageFacts,
    verdict: Verdict,
    now: datetime,
    cap_reached: bool = False,
) -> RemediationPlan:
    current = image.tags.get(policy.tag_key(SystemTag.REMEDIATION))
    applied = _applied(current)
    if policy.mode is not Mode.ENFORCE:
        # Audit mode changes nothing but tags, undoing included (and its role has no EC2 write rights).
        return NOTHING
    if verdict.status is not ComplianceStatus.NON_COMPLIANT:
        return _plan_undo(applied)
    if policy.remediation.action is RemediationAction.NONE:
        return NOTHING
    if applied is not None:
        return NOTHING  # already remediated: a repeated event must not act twice
    if policy.protection_tag_key in image.tags:
        value = f"skipped: protected by {policy.protection_tag_key}"
        return NOTHING if current == value else RemediationPlan(tag_value=value, summary=value)
    if cap_reached:
        return RemediationPlan(summary="skipped: blast-radius cap for this event reached", notes=("cap",))
    grace = timedelta(days=policy.remediation.grace_period_days)
    action = policy.remediation.action
    if action is RemediationAction.DISABLE:
        return RemediationPlan(
            (Ec2Action.DISABLE_IMAGE,), tag_value="disabled", summary="disabled the AMI", counts_against_cap=True
        )
    if action is RemediationAction.DEPRECATE:
        at = (now + max(grace, MIN_DEPRECATION_LEAD)).replace(second=0, microsecond=0)
        stamp = at.strftime("%Y-%m-%dT%H:%MZ")
        return RemediationPlan(
            (Ec2Action.ENABLE_DEPRECATION,),
            deprecate_at=at,
            tag_value=f"deprecated {stamp}",
            summary=f"deprecated the AMI as of {stamp}",
            counts_against_cap=True,
        )
    deadline = (now + grace).strftime("%Y-%m-%dT%H:%M:%SZ")
    return RemediationPlan(
        tag_value=f"deregister-after {deadline}",
        summary=f"scheduled for deregistration after {deadline} unless fixed",
        counts_against_cap=True,
    )


def _plan_undo(applied: str | None) -> RemediationPlan:
    if applied == "disabled":
        return RemediationPlan((Ec2Action.ENABLE_IMAGE,), tag_value=NONE_VALUE, summary="re-enabled the AMI")
    if applied == "deprecated":
        return RemediationPlan(
            (Ec2Action.DISABLE_DEPRECATION,), tag_value=NONE_VALUE, summary="cancelled the deprecation"
        )
    if applied == "deregister-after":
        return RemediationPlan(tag_value=NONE_VALUE, summary="cancelled the scheduled deregistration")
    return NOTHING


def describe_intended(policy: GovernancePolicy) -> str:
    """What enforce mode would do, for notices sent in audit mode."""
    action = policy.remediation.action
    if action is RemediationAction.NONE:
        return "none configured"
    days = policy.remediation.grace_period_days
    return {
        RemediationAction.DISABLE: "enforce mode would disable the AMI",
        RemediationAction.DEPRECATE: f"enforce mode would deprecate the AMI after {days} days",
        RemediationAction.DEREGISTER: f"enforce mode would deregister the AMI after {days} days",
    }[action]
