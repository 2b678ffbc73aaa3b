"""What snapshot clean-up knows and decides: a snapshot's facts, what the DeregisterImage call said, why a snapshot
is kept, what happened to each snapshot, and the clean-up of one deregistered AMI.

Decisions and outcomes are kinds (enums) with particulars. Their texts (recorded in the inventory, returned by
the Lambda, logged and notified) are made here from the kinds, and the texts an earlier attempt recorded are
parsed back into kinds here: nothing else reads meaning out of an outcome's text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


@dataclass(frozen=True)
class SnapshotFacts:
    """A snapshot as `DescribeSnapshots` shows it, reduced to what the clean-up rules need."""

    snapshot_id: str
    owner_id: str
    state: str
    volume_size_gb: int
    start_time: datetime
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)


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


class ReasonKind(StrEnum):
    """Why a snapshot is kept: the first check that failed (rules/cleanup.py), or what stopped its deletion."""

    GONE = "gone"
    IMAGE_PROTECTED = "image-protected"
    FOREIGN_OWNER = "foreign-owner"
    IN_USE = "in-use"
    PROTECTED = "protected"
    BELONGS_TO_OTHER = "belongs-to-other"
    NOT_COMPLETED = "not-completed"
    TOO_YOUNG = "too-young"
    CAPPED = "capped"
    DELETE_REFUSED = "delete-refused"  # DeleteSnapshot: InvalidSnapshot.InUse (an AMI took it up meanwhile)
    UNMARKABLE = "unmarkable"  # at the tag limit: it cannot carry the mark the Recycle Bin rule keeps

    @property
    def template(self) -> str:
        """The recorded text; `{}` stands for the particulars (an account, AMIs, a tag key, a state...)."""
        return _REASON_TEXTS[self]

    @property
    def deferred(self) -> bool:
        """A reason that passes with time (the snapshot ages or completes, the cap allows more next time): the
        clean-up is left deferred, for the scheduled sweep to take up again. The others keep a snapshot for good."""
        return self in _DEFERRED_REASONS


_REASON_TEXTS: dict[ReasonKind, str] = {
    ReasonKind.GONE: "gone: {}",
    ReasonKind.IMAGE_PROTECTED: "image protected",
    ReasonKind.FOREIGN_OWNER: "owned by account {}",
    ReasonKind.IN_USE: "used by {}",
    ReasonKind.PROTECTED: "protected by {}",
    ReasonKind.BELONGS_TO_OTHER: "tagged as belonging to {}",
    ReasonKind.NOT_COMPLETED: "snapshot is {}",
    ReasonKind.TOO_YOUNG: "younger than {} days",
    ReasonKind.CAPPED: "blast-radius cap of {} reached",
    ReasonKind.DELETE_REFUSED: "in use (DeleteSnapshot refused)",
    ReasonKind.UNMARKABLE: "at the tag limit, cannot be marked",
}
_DEFERRED_REASONS = frozenset({ReasonKind.NOT_COMPLETED, ReasonKind.TOO_YOUNG, ReasonKind.CAPPED})


@dataclass(frozen=True)
class KeepReason:
    kind: ReasonKind
    detail: str = ""  # the particulars the text names, e.g. the owner's account or the minimum age in days

    @property
    def text(self) -> str:
        return self.kind.template.format(self.detail)

    @classmethod
    def parse(cls, text: str) -> KeepReason | None:
        """The reason a recorded text states, or None for a text no reason has."""
        for kind in ReasonKind:
            lead, placeholder, tail = kind.template.partition("{}")
            if not placeholder:
                if text == lead:
                    return cls(kind)
            elif text.startswith(lead) and text.endswith(tail) and len(text) >= len(lead) + len(tail):
                return cls(kind, text[len(lead) : len(text) - len(tail)])
        return None


@dataclass(frozen=True)
class SnapshotDecision:
    snapshot_id: str
    reason: KeepReason | None  # why it is kept; None when it may be deleted
    size_gb: int = 0

    @property
    def delete(self) -> bool:
        return self.reason is None


class OutcomeKind(StrEnum):
    DELETED = "deleted"
    WOULD_DELETE = "would-delete"  # dry-run
    KEPT = "kept"
    FAILED = "failed"
    DELETED_BY_DEREGISTER_IMAGE = "deleted-by-deregister-image"  # EC2 did it (DeleteAssociatedSnapshots)
    # Gone when the state change was handled: only the CloudTrail record can say whether DeregisterImage deleted
    # it. Settled when that record arrives.
    AWAITING_CALL = "awaiting-call"

    @property
    def final(self) -> bool:
        """The snapshot is deleted: a later attempt of the same clean-up keeps the outcome as it was recorded."""
        return self in (OutcomeKind.DELETED, OutcomeKind.DELETED_BY_DEREGISTER_IMAGE)

    @property
    def frees(self) -> bool:
        """Its GB count as freed (as would be freed, in dry-run); EC2's own deletions too: they are gone."""
        return self in (OutcomeKind.DELETED, OutcomeKind.WOULD_DELETE, OutcomeKind.DELETED_BY_DEREGISTER_IMAGE)


# The texts of the outcomes that have no particulars.
_OUTCOME_TEXTS: dict[OutcomeKind, str] = {
    OutcomeKind.DELETED: "deleted",
    OutcomeKind.WOULD_DELETE: "would-delete",
    OutcomeKind.DELETED_BY_DEREGISTER_IMAGE: "deleted by DeregisterImage",
    OutcomeKind.AWAITING_CALL: "gone: awaiting the DeregisterImage call",
}
_KEPT_LEAD = "kept: "
_FAILED_LEAD = "failed: "


@dataclass(frozen=True)
class SnapshotOutcome:
    snapshot_id: str
    kind: OutcomeKind
    size_gb: int = 0
    reason: KeepReason | None = None  # why it was kept: a kept outcome has one, no other does
    error: str = ""  # the error code of a failed deletion

    def __post_init__(self) -> None:
        if (self.kind is OutcomeKind.KEPT) != (self.reason is not None):
            raise ValueError(f"{self.snapshot_id}: {self.kind} outcome with reason {self.reason}")

    @classmethod
    def kept(cls, snapshot_id: str, reason: KeepReason, size_gb: int = 0) -> SnapshotOutcome:
        return cls(snapshot_id, OutcomeKind.KEPT, size_gb, reason)

    @property
    def outcome(self) -> str:
        """The text: deleted | would-delete | kept: <reason> | failed: <error> | deleted by DeregisterImage |
        gone: awaiting the DeregisterImage call."""
        if self.reason is not None:
            return f"{_KEPT_LEAD}{self.reason.text}"
        if self.kind is OutcomeKind.FAILED:
            return f"{_FAILED_LEAD}{self.error}"
        return _OUTCOME_TEXTS[self.kind]

    @property
    def deferred(self) -> bool:
        return self.reason is not None and self.reason.kind.deferred

    def as_dict(self) -> dict[str, Any]:
        return {"snapshot_id": self.snapshot_id, "outcome": self.outcome, "size_gb": self.size_gb}

    @classmethod
    def parse(cls, snapshot_id: str, text: str, size_gb: int = 0) -> SnapshotOutcome | None:
        """The outcome a recorded text states, or None for a text no outcome has."""
        fixed = next((kind for kind, fixed_text in _OUTCOME_TEXTS.items() if text == fixed_text), None)
        if fixed is not None:
            return cls(snapshot_id, fixed, size_gb)
        if text.startswith(_FAILED_LEAD):
            return cls(snapshot_id, OutcomeKind.FAILED, size_gb, error=text.removeprefix(_FAILED_LEAD))
        reason = KeepReason.parse(text.removeprefix(_KEPT_LEAD)) if text.startswith(_KEPT_LEAD) else None
        return cls.kept(snapshot_id, reason, size_gb) if reason is not None else None


def recorded_outcomes(records: Mapping[str, Any]) -> dict[str, SnapshotOutcome]:
    """The outcomes an earlier attempt of a clean-up recorded ({snapshot id: {"outcome": text, "size_gb": n}}),
    leaving out any entry that states no outcome (the caller says which)."""
    outcomes: dict[str, SnapshotOutcome] = {}
    for snapshot_id, record in records.items():
        if not isinstance(record, Mapping):
            continue
        try:
            size_gb = int(record.get("size_gb", 0))
        except (TypeError, ValueError):
            size_gb = 0  # the outcome still holds (a deleted snapshot stays deleted), its GB are not known
        outcome = SnapshotOutcome.parse(str(snapshot_id), str(record.get("outcome", "")), size_gb)
        if outcome is not None:
            outcomes[outcome.snapshot_id] = outcome
    return outcomes


class CleanupResult(StrEnum):
    CLEANED = "cleaned"
    DRY_RUN = "dry-run"
    DEFERRED = "deferred"  # a snapshot is kept for a reason that passes: the scheduled sweep takes it up again
    AWAITING_CALL = "awaiting-call"  # a recorded snapshot was gone at the state change: the CloudTrail event settles
    ALREADY_HANDLED = "already-handled"
    NOTHING_TO_DO = "nothing-to-do"
    INCOMPLETE = "incomplete"  # some snapshots failed: the event is retried


@dataclass
class ImageCleanup:
    image_id: str
    region: str
    result: CleanupResult
    source: str = ""  # inventory | description
    snapshots: list[SnapshotOutcome] = field(default_factory=list)
    gb_freed: int = 0  # deleted, would be deleted (dry-run) or deleted by DeregisterImage itself
    gb_freed_by_deregister_image: int = 0
    notified: str | None = None
    replicas: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """As the Lambda answers it: each snapshot's outcome as its text."""
        return {
            **asdict(self),
            "result": self.result.value,
            "snapshots": [snapshot.as_dict() for snapshot in self.snapshots],
        }
