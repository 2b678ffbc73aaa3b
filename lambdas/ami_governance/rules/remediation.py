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


def _recorded(tag_value: str | None) -> str | None:
    """What this system recorded doing: 'disabled', 'deprecated', 'deregister-after' (or None)."""
    if not tag_value:
        return None
    head = tag_value.split(" ", 1)[0]
    return head if head in {"disabled", "deprecated", "deregister-after"} else None


# States in which EC2 accepts DisableImage / EnableImageDeprecation; a pending AMI waits for `available`.
REMEDIABLE_STATES = frozenset({"available", "disabled"})


def plan_remediation(  # noqa: PLR0911 - one return per situation of the AMI, each a plan
    policy: GovernancePolicy,
    image: ImageFacts,
    verdict: Verdict,
    now: datetime,
    cap_reached: bool = False,
) -> RemediationPlan:
    """The plan follows what the AMI *is* (state, deprecation time), not only what the tag says we did: an AMI
    someone re-enabled by hand is disabled again, and only what this system did is ever undone."""
    current = image.tags.get(policy.tag_key(SystemTag.REMEDIATION))
    recorded = _recorded(current)
    if policy.mode is not Mode.ENFORCE:
        # Audit mode changes nothing but tags, undoing included (and its role has no EC2 write rights).
        return NOTHING
    if verdict.status is not ComplianceStatus.NON_COMPLIANT:
        return _plan_undo(recorded, image)
    action = policy.remediation.action
    if action is RemediationAction.NONE:
        return NOTHING
    in_force = {
        RemediationAction.DISABLE: image.state == "disabled",
        RemediationAction.DEPRECATE: image.deprecation_time is not None,
        RemediationAction.DEREGISTER: recorded == "deregister-after",
    }[action]
    if in_force:
        return NOTHING  # already remediated: a repeated event must not act twice
    if policy.protection_tag_key in image.tags:
        value = f"skipped: protected by {policy.protection_tag_key}"
        return NOTHING if current == value else RemediationPlan(tag_value=value, summary=value)
    if image.state not in REMEDIABLE_STATES:
        return RemediationPlan(summary=f"deferred: the AMI is {image.state}; applied once it is available")
    if cap_reached:
        return RemediationPlan(summary="skipped: blast-radius cap for this event reached", notes=("cap",))
    grace = timedelta(days=policy.remediation.grace_period_days)
    if action is RemediationAction.DISABLE:
        return RemediationPlan(
            (Ec2Action.DISABLE_IMAGE,),
            tag_value="disabled",
            summary="disabled the AMI (DisableImage also removes its launch permissions)",
            counts_against_cap=True,
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


def _plan_undo(recorded: str | None, image: ImageFacts) -> RemediationPlan:
    """Undo only what this system did and is still in force (a human's DisableImage is not ours to undo)."""
    if recorded == "disabled" and image.state == "disabled":
        return RemediationPlan(
            (Ec2Action.ENABLE_IMAGE,),
            tag_value=NONE_VALUE,
            summary="re-enabled the AMI (launch permissions removed by DisableImage are not restored)",
        )
    if recorded == "deprecated" and image.deprecation_time is not None:
        return RemediationPlan(
            (Ec2Action.DISABLE_DEPRECATION,), tag_value=NONE_VALUE, summary="cancelled the deprecation"
        )
    if recorded == "deregister-after":
        return RemediationPlan(tag_value=NONE_VALUE, summary="cancelled the scheduled deregistration")
    if recorded is not None:
        return RemediationPlan(tag_value=NONE_VALUE, summary="the remediation was already undone by hand")
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
