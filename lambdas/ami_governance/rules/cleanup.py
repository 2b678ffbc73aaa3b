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


def decide(
    policy: GovernancePolicy,
    snapshot_id: str,
    facts: SnapshotFacts | None,
    image_id: str,
    account_id: str,
    used_by: Iterable[str],
    now: datetime,
) -> SnapshotDecision:
    """Whether one snapshot of the deregistered AMI `image_id` may be deleted, and if not, why."""

    def keep(reason: str) -> SnapshotDecision:
        return SnapshotDecision(snapshot_id, False, reason, facts.volume_size_gb if facts else 0)

    if facts is None:
        return keep("gone: not found (already deleted, or in the Recycle Bin)")
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
