"""Pure rules for the snapshots a deregistered AMI leaves behind: which ones, and whether each may go.

A snapshot is deleted only when every check passes; the first failing check is recorded as the reason it was
kept. The checks never look at anything but facts read from AWS and the policy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ami_governance.models.policy import GovernancePolicy
from ami_governance.rules.tags import SystemTag

# The two descriptions AWS gives the snapshots of an AMI (a convention, never a contract: every match is
# confirmed against the AMIs that still use the snapshot before anything is deleted).
CREATED_BY_CREATE_IMAGE = re.compile(
    r"^Created by CreateImage\((i-[0-9a-f]+)\) for (ami-[0-9a-f]+)( from vol-[0-9a-f]+)?$"
)
COPIED_FOR_DESTINATION = re.compile(
    r"^Copied for DestinationAmi (ami-[0-9a-f]+) from SourceAmi (ami-[0-9a-f]+) for SourceSnapshot (snap-[0-9a-f]+)"
)
# DescribeSnapshots description filters (wildcards) that find both kinds for one AMI in a single call.
DELETING_TAG_VALUE = "deleting"

DELETED_BY_DEREGISTER_IMAGE = "deleted by DeregisterImage"
# A recorded snapshot already gone when the state change is handled: DeregisterImage may have deleted it
# (DeleteAssociatedSnapshots), which only its CloudTrail record says. Settled when that record arrives.
GONE_AWAITING_CALL = "gone: awaiting the DeregisterImage call"
IMAGE_PROTECTED = "image protected"


def description_filters(image_id: str) -> list[str]:
    return [f"Created by CreateImage(*) for {image_id}*", f"Copied for DestinationAmi {image_id} *"]


def image_named_in_description(description: str) -> str | None:
    """The AMI a snapshot description says the snapshot was made for, in either AWS format."""
    created = CREATED_BY_CREATE_IMAGE.match(description)
    if created:
        return created.group(2)
    copied = COPIED_FOR_DESTINATION.match(description)
    return copied.group(1) if copied else None


@dataclass(frozen=True)
class SnapshotFacts:
    snapshot_id: str
    owner_id: str
    state: str
    volume_size_gb: int
    start_time: datetime
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SnapshotDecision:
    snapshot_id: str
    delete: bool
    reason: str  # why kept, or "" when it may be deleted
    size_gb: int = 0


@dataclass(frozen=True)
class DeregisterCall:
    """What the CloudTrail record of DeregisterImage says EC2 deleted itself: whether the call asked for it
    (DeleteAssociatedSnapshots) and, when the response lists them, EC2's ReturnCode per snapshot."""

    delete_associated_snapshots: bool
    results: Mapping[str, str] | None = None

    def deleted(self, snapshot_id: str) -> bool:
        if self.results is not None:
            return self.results.get(snapshot_id) == "success"
        return self.delete_associated_snapshots


def gone_outcome(call: DeregisterCall | None, snapshot_id: str, reason: str) -> str:
    """The outcome of a recorded snapshot that no longer exists. Without the CloudTrail record (the state change
    came first) nobody can yet say whether DeregisterImage deleted it: it awaits that record."""
    if call is None:
        return GONE_AWAITING_CALL
    return DELETED_BY_DEREGISTER_IMAGE if call.deleted(snapshot_id) else f"kept: {reason}"


def decide(
    policy: GovernancePolicy,
    snapshot_id: str,
    facts: SnapshotFacts | None,
    image_id: str,
    account_id: str,
    used_by: Iterable[str],
    now: datetime,
    image_protected: bool = False,
) -> SnapshotDecision:
    """Whether one snapshot of the deregistered AMI `image_id` may be deleted, and if not, why. `image_protected`:
    the AMI carried the protection tag when it was last recorded (it cannot be described any more)."""

    def keep(reason: str) -> SnapshotDecision:
        return SnapshotDecision(snapshot_id, False, reason, facts.volume_size_gb if facts else 0)

    if facts is None:
        return keep("gone: not found (already deleted, or in the Recycle Bin)")
    if image_protected:
        # The protection tag blocks every destructive action: the AMI's own snapshots outlive its deregistration.
        return keep(IMAGE_PROTECTED)
    if facts.owner_id != account_id:
        return keep(f"owned by account {facts.owner_id}")
    users = sorted(set(used_by))
    if users:
        return keep(f"used by {', '.join(users)}")
    if policy.protection_tag_key in facts.tags:
        return keep(f"protected by {policy.protection_tag_key}")
    belongs_to = facts.tags.get(policy.tag_key(SystemTag.IMAGE_ID))
    if belongs_to and belongs_to != image_id:
        return keep(f"tagged as belonging to {belongs_to}")
    if facts.state != "completed":
        return keep(f"snapshot is {facts.state}")
    minimum_age = timedelta(days=policy.cleanup.min_age_days)
    if now - facts.start_time < minimum_age:
        return keep(f"younger than {policy.cleanup.min_age_days} days")
    return SnapshotDecision(snapshot_id, True, "", facts.volume_size_gb)


def apply_cap(decisions: Sequence[SnapshotDecision], allowed: int, cap: int) -> list[SnapshotDecision]:
    """At most `allowed` more deletions (of the `cap` per deregistration); the rest are kept, and say why."""
    capped: list[SnapshotDecision] = []
    for decision in decisions:
        if decision.delete and allowed <= 0:
            capped.append(SnapshotDecision(decision.snapshot_id, False, f"blast-radius cap of {cap} reached",
                                           decision.size_gb))  # fmt: skip
            continue
        if decision.delete:
            allowed -= 1
        capped.append(decision)
    return capped


def monthly_cost(gb: int, price_per_gb_month: float) -> float:
    """Upper bound of what `gb` of snapshots cost a month: snapshots are incremental, blocks may be shared."""
    return round(gb * price_per_gb_month, 2)
