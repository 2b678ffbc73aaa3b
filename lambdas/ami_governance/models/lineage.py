"""Approval and replication states, and what the inventory records of an approval on the approved (source) AMI's
item."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class ApprovalStatus(StrEnum):
    NOT_AN_APPROVAL = "not-an-approval"  # the tag change does not set the approval tag to its value
    APPROVED = "approved"
    PENDING = "pending"  # approved, but the AMI is not available yet: copies start on its `available` event
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"  # the approval tag is not (or no longer) on the AMI when the approval is handled
    # approved, the AMI is available, but enforcement's verdict is not on it yet: the approval waits for it
    UNJUDGED = "unjudged"


class ReplicaState(StrEnum):
    QUEUED = "queued"  # a copy job is on the queue
    COPYING = "copying"  # claimed by a copy worker; `image_id` once CopyImage answered
    AVAILABLE = "available"
    FAILED = "failed"
    DEREGISTERED = "deregistered"  # the replica was deregistered after it existed (drift)
    WITHDRAWN = "withdrawn"  # the approval tag was removed before this region's copy started: no copy made


@dataclass(frozen=True)
class ApprovalRecord:
    status: str  # approved | pending
    approved_by: str
    approved_at: str  # ISO time; also the time a round's regions are queued
    event_id: str  # the approval's CloudTrail event: it names the round its copy jobs belong to
    account: str
    name: str

    def recorded_fields(self) -> dict[str, str]:
        """The source item's attributes this approval sets."""
        return {
            "approval_status": self.status,
            "approved_by": self.approved_by,
            "approved_at": self.approved_at,
            "approval_event_id": self.event_id,
            "account": self.account,
            "name": self.name,
        }


@dataclass(frozen=True)
class RoundPlan:
    """An approved round as the inventory records it on the source's item."""

    approval: ApprovalRecord
    targets: Sequence[str]  # every target region of the round, queued now or not
    generations: Mapping[str, int]  # the regions this round queues, each with its copy generation
    read: Mapping[str, Mapping[str, Any]]  # the replicas map as read while planning: the optimistic lock

    def queued_entries(self) -> dict[str, dict[str, Any]]:
        """The replication entry each queued region starts with, stamped with the approval's time and event."""
        return {
            target: {
                "state": ReplicaState.QUEUED.value,
                "queued_at": self.approval.approved_at,
                "approval_event_id": self.approval.event_id,
                "generation": generation,
            }
            for target, generation in self.generations.items()
        }


@dataclass(frozen=True)
class ReplicaSettlement:
    """A replica (None: its CopyImage failed before any AMI existed) reached an end state in its target region."""

    target: str
    replica_id: str | None
    state: ReplicaState
    at: str
    error: str | None = None
