"""What the inventory records of an approval, on the approved (source) AMI's item."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ApprovalRecord:
    status: str  # approved | pending
    approved_by: str
    approved_at: str  # ISO time; also the time a round's regions are queued
    event_id: str  # the approval's CloudTrail event: it names the round its copy jobs belong to
    account: str
    name: str
