"""Pure rules for the snapshots a deregistered AMI leaves behind: which ones, whether each may go, what became of
each, and what the clean-up of the AMI comes to (its result, the GB freed, the metrics).

A snapshot is deleted only when every check passes; the first failing check is recorded as the reason it was
kept. The checks never look at anything but facts read from AWS and the policy.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from ami_governance.models.cleanup import (
    CleanupResult,
    DeregisterCall,
    ImageCleanup,
    KeepReason,
    OutcomeKind,
    ReasonKind,
    SnapshotDecision,
    SnapshotFacts,
    SnapshotOutcome,
)
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
DELETING_TAG_VALUE = "deleting"


def description_filters(image_id: str) -> list[str]:
    """DescribeSnapshots description filters (wildcards) that find both kinds for one AMI in a single call."""
    return [f"Created by CreateImage(*) for {image_id}*", f"Copied for DestinationAmi {image_id} *"]


def image_named_in_description(description: str) -> str | None:
    """The AMI a snapshot description says the snapshot was made for, in either AWS format."""
    created = CREATED_BY_CREATE_IMAGE.match(description)
    if created:
        return created.group(2)
    copied = COPIED_FOR_DESTINATION.match(description)
    return copied.group(1) if copied else None


def live_users(users: Mapping[str, str] | None, image_id: str) -> list[str]:
    """AMIs that use a snapshot, leaving out the deregistered AMI itself and any other deregistered one:
    DescribeImages shows recently deregistered AMIs for a short while."""
    return [user for user, state in (users or {}).items() if user != image_id and state != "deregistered"]


def still_registered(image_id: str, snapshot_ids: Iterable[str], users: Mapping[str, Mapping[str, str]]) -> bool:
    """Whether the AMI still uses its own snapshots (`users`: {snapshot: {AMI: state}}): the event is stale,
    replayed or mis-routed (or the AMI came back from the Recycle Bin)."""
    return any(users.get(s, {}).get(image_id) not in (None, "deregistered") for s in snapshot_ids)


def decide(  # noqa: PLR0911 - one return per safety check, in the order they apply
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

    def keep(kind: ReasonKind, detail: str = "") -> SnapshotDecision:
        return SnapshotDecision(snapshot_id, KeepReason(kind, detail), facts.volume_size_gb if facts else 0)

    if facts is None:
        return keep(ReasonKind.GONE, "not found (already deleted, or in the Recycle Bin)")
    if image_protected:
        # The protection tag blocks every destructive action: the AMI's own snapshots outlive its deregistration.
        return keep(ReasonKind.IMAGE_PROTECTED)
    if facts.owner_id != account_id:
        return keep(ReasonKind.FOREIGN_OWNER, facts.owner_id)
    users = sorted(set(used_by))
    if users:
        return keep(ReasonKind.IN_USE, ", ".join(users))
    if policy.protection_tag_key in facts.tags:
        return keep(ReasonKind.PROTECTED, policy.protection_tag_key)
    belongs_to = facts.tags.get(policy.tag_key(SystemTag.IMAGE_ID))
    if belongs_to and belongs_to != image_id:
        return keep(ReasonKind.BELONGS_TO_OTHER, belongs_to)
    if facts.state != "completed":
        return keep(ReasonKind.NOT_COMPLETED, facts.state)
    minimum_age = timedelta(days=policy.cleanup.min_age_days)
    if now - facts.start_time < minimum_age:
        return keep(ReasonKind.TOO_YOUNG, str(policy.cleanup.min_age_days))
    return SnapshotDecision(snapshot_id, None, facts.volume_size_gb)


def deletions_left(cap: int, previous: Iterable[SnapshotOutcome]) -> int:
    """The cap is per deregistration: deletions by an earlier attempt of this clean-up count."""
    return max(0, cap - sum(1 for outcome in previous if outcome.kind is OutcomeKind.DELETED))


def apply_cap(decisions: Sequence[SnapshotDecision], allowed: int, cap: int) -> list[SnapshotDecision]:
    """At most `allowed` more deletions (of the `cap` per deregistration); the rest are kept, and say why."""
    capped: list[SnapshotDecision] = []
    for decision in decisions:
        if decision.delete and allowed <= 0:
            capped.append(SnapshotDecision(decision.snapshot_id, KeepReason(ReasonKind.CAPPED, str(cap)),
                                           decision.size_gb))  # fmt: skip
            continue
        if decision.delete:
            allowed -= 1
        capped.append(decision)
    return capped


def gone_outcome(
    call: DeregisterCall | None, snapshot_id: str, reason: KeepReason, recorded_size_gb: int
) -> SnapshotOutcome:
    """The outcome of a recorded snapshot that no longer exists (its size: the one recorded when the AMI became
    available). Without the CloudTrail record (the state change came first) nobody can yet say whether
    DeregisterImage deleted it: it awaits that record."""
    if call is None:
        return SnapshotOutcome(snapshot_id, OutcomeKind.AWAITING_CALL, recorded_size_gb)
    if call.deleted(snapshot_id):
        return SnapshotOutcome(snapshot_id, OutcomeKind.DELETED_BY_DEREGISTER_IMAGE, recorded_size_gb)
    return SnapshotOutcome.kept(snapshot_id, reason, recorded_size_gb)


# Failures after which the request may have been applied: it was sent, and the answer was lost on the way back.
# (Throttling, 5xx and connect timeouts mean AWS did nothing.)
# UNCONFIRMED: what the clean-up records for a snapshot just before it deletes it.
UNCONFIRMED = "DeletionUnconfirmed"
UNANSWERED_ERRORS = frozenset({"ReadTimeoutError", "ConnectionClosedError", UNCONFIRMED})


def _unanswered(outcome: SnapshotOutcome) -> bool:
    return outcome.kind is OutcomeKind.FAILED and outcome.error in UNANSWERED_ERRORS


def settle(
    decisions: Sequence[SnapshotDecision],
    previous: Mapping[str, SnapshotOutcome],
    call: DeregisterCall | None,
    recorded_sizes: Mapping[str, Any],
) -> tuple[list[SnapshotOutcome], list[SnapshotDecision]]:
    """(the outcomes known without acting, the decisions to delete). A snapshot an earlier attempt deleted keeps
    that outcome; a gone one is settled by what the DeregisterImage call says; the others are kept, and say why."""
    outcomes: list[SnapshotOutcome] = []
    to_delete: list[SnapshotDecision] = []
    for decision in decisions:
        earlier = previous.get(decision.snapshot_id)
        if earlier is not None and earlier.kind.final:
            outcomes.append(earlier)
        elif decision.reason is None:
            to_delete.append(decision)
        elif decision.reason.kind is ReasonKind.GONE and earlier is not None and _unanswered(earlier):
            # The earlier attempt's DeleteSnapshot was sent but its answer never came: it did delete it.
            outcomes.append(SnapshotOutcome(decision.snapshot_id, OutcomeKind.DELETED, earlier.size_gb))
        elif decision.reason.kind is ReasonKind.GONE:
            size_gb = int(recorded_sizes.get(decision.snapshot_id, 0))
            outcomes.append(gone_outcome(call, decision.snapshot_id, decision.reason, size_gb))
        else:
            outcomes.append(SnapshotOutcome.kept(decision.snapshot_id, decision.reason, decision.size_gb))
    return outcomes, to_delete


def summarise(
    image_id: str,
    region: str,
    source: str,
    outcomes: list[SnapshotOutcome],
    *,
    dry_run: bool,
    any_snapshots: bool,
    failed: bool,
) -> ImageCleanup:
    """The clean-up of one AMI from its snapshots' outcomes: its result and the GB it frees."""
    by_ec2 = sum(o.size_gb for o in outcomes if o.kind is OutcomeKind.DELETED_BY_DEREGISTER_IMAGE)
    freed = sum(o.size_gb for o in outcomes if o.kind.frees)
    result = CleanupResult.DRY_RUN if dry_run else CleanupResult.CLEANED
    if not any_snapshots:
        result = CleanupResult.NOTHING_TO_DO
    elif any(o.kind is OutcomeKind.AWAITING_CALL for o in outcomes):
        result = CleanupResult.AWAITING_CALL
    elif any(o.deferred for o in outcomes):
        result = CleanupResult.DEFERRED
    if failed:
        result = CleanupResult.INCOMPLETE
    return ImageCleanup(image_id, region, result, source, outcomes, freed, by_ec2)


# The metric each outcome counts under, in the order they are emitted. EC2's own deletions count as deletions;
# an outcome awaiting the DeregisterImage call is counted once it is settled.
OUTCOME_METRICS: dict[OutcomeKind, str] = {
    OutcomeKind.DELETED: "SnapshotsDeleted",
    OutcomeKind.DELETED_BY_DEREGISTER_IMAGE: "SnapshotsDeleted",
    OutcomeKind.WOULD_DELETE: "SnapshotsWouldDelete",
    OutcomeKind.KEPT: "SnapshotsKept",
    OutcomeKind.FAILED: "SnapshotsFailed",
}


def outcome_counts(outcomes: Iterable[SnapshotOutcome], previous: Mapping[str, SnapshotOutcome]) -> dict[str, int]:
    """{metric: number} of the outcomes that are new: one an earlier attempt recorded as it is now is not
    counted again."""

    def is_new(outcome: SnapshotOutcome) -> bool:
        earlier = previous.get(outcome.snapshot_id)
        return earlier is None or earlier.outcome != outcome.outcome

    counted = Counter(OUTCOME_METRICS[o.kind] for o in outcomes if o.kind in OUTCOME_METRICS and is_new(o))
    return {name: counted[name] for name in dict.fromkeys(OUTCOME_METRICS.values()) if counted[name]}


def monthly_cost(gb: int, price_per_gb_month: float) -> float:
    """Upper bound of what `gb` of snapshots cost a month: snapshots are incremental, blocks may be shared."""
    return round(gb * price_per_gb_month, 2)
