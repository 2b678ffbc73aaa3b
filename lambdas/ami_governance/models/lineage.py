"""Approval and replication states, and what the inventory records of an approval on the approved (source) AMI's
item."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ApprovalStatus(StrEnum):
    NOT_AN_APPROVAL = "not-an-approval"  # the tag change does not set the approval tag to its value
    APPROVED = "approved"
    PENDING = "pending"  # approved, but the AMI is not available yet: copies start on its `available` event
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"  # the approval tag is not (or no longer) on the AMI when the approval is handled


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
