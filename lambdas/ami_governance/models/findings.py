"""What the report finds, what the sweep does about it, and the evidence both are computed from.

The evidence of one (account, region) is the scan's records (models.scan) plus the inventory's records of that
region and the AMIs' launch permissions; findings are pure functions of it and the policy (rules.findings). A
report is the findings and sweep actions of every scanned (account, region), with each region's completeness: a
region whose evidence is incomplete is reported as such, and nothing in it is acted on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from ami_governance.models.scan import (
    InstanceImageMetadataScan,
    ReferenceCheck,
    RegionScan,
    ScanResult,
)

REPORT_SCHEMA_VERSION = 1


class FindingKind(StrEnum):
    ORPHANED_SNAPSHOT = "orphaned-snapshot"
    NON_COMPLIANT = "non-compliant"
    UNJUDGED = "unjudged"  # never judged by the event path (imported, made before deployment), compliant now
    UNUSED = "unused"
    STALE = "stale"
    DRIFT = "drift"
    EXPOSURE = "exposure"
    UNTRUSTED_SOURCE = "untrusted-source"
    OVERDUE = "overdue"


class ResourceType(StrEnum):
    IMAGE = "image"
    SNAPSHOT = "snapshot"
    INSTANCE = "instance"
    LAUNCH_TEMPLATE = "launch-template"
    REGION = "region"  # a region-wide setting (block public access)


@dataclass(frozen=True)
class Finding:
    """One thing out of policy, with the reason in words and how to fix it. `actionable` is False when the
    evidence it rests on is incomplete (a listing failed): the sweep never acts on such a finding."""

    kind: FindingKind
    account_id: str
    region: str
    resource_type: ResourceType
    resource_id: str
    reason: str
    fix: str
    name: str = ""
    detail: str = ""  # the finding's sub-kind, e.g. public-image, shared-outside, missing-replica, cleanup-deferred
    owner_tags: dict[str, str] = field(default_factory=dict)  # the policy's report.owner_tags found on the resource
    age_days: int | None = None
    size_gib: int = 0
    monthly_cost: float = 0.0  # USD: snapshot storage at the policy's price for the region (an upper bound)
    actionable: bool = True
    related_ids: tuple[str, ...] = ()  # e.g. the snapshots of an AMI, the AMI an instance runs


class VerifiedBy(StrEnum):
    """How an AMI's launch permissions are known."""

    INVENTORY = "inventory"  # recorded from the ModifyImageAttribute events the event path saw
    DESCRIBE = "describe"  # read now with DescribeImageAttribute (no record, or the full verification is due)
    UNKNOWN = "unknown"  # the read failed: the AMI's sharing is unknown (not "not shared")


@dataclass(frozen=True)
class LaunchPermissions:
    image_id: str
    verified_by: VerifiedBy
    public: bool = False
    accounts: tuple[str, ...] = ()
    organization_arns: tuple[str, ...] = ()
    ou_arns: tuple[str, ...] = ()
    recorded_at: datetime | None = None
    error: str | None = None  # VerifiedBy.UNKNOWN: why the read failed, "Code: message"


@dataclass(frozen=True)
class InventoryRecord:
    """The inventory's item of one AMI in one region, as far as the report reads it (plain values: the inventory
    adapter's `plain_item`). Absent fields are None or empty."""

    image_id: str
    region: str
    account: str | None = None
    name: str | None = None
    state: str | None = None
    snapshot_ids: tuple[str, ...] = ()
    protected: bool = False
    compliance: str | None = None
    source_image_id: str | None = None
    source_region: str | None = None
    replica_of: str | None = None  # '<region>/<ami id>' of the source of a replica
    approval_status: str | None = None
    approved_at: str | None = None
    replication_targets: tuple[str, ...] = ()
    replicas: dict[str, dict[str, Any]] = field(default_factory=dict)  # region -> entry (state, image_id, ...)
    cleanup_status: str | None = None  # done | dry-run | deferred | failed | awaiting-call | not-deregistered
    cleanup_at: str | None = None
    cleanup_snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)  # snapshot id -> outcome, size_gb, at
    launch_permissions: LaunchPermissions | None = None  # recorded by the event path

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> InventoryRecord:
        """From a plain inventory item; tolerant of fields older items lack."""
        permissions = item.get("launch_permissions")
        return cls(
            image_id=str(item["image_id"]),
            region=str(item["region"]),
            account=_str_or_none(item.get("account")),
            name=_str_or_none(item.get("name")),
            state=_str_or_none(item.get("state")),
            snapshot_ids=tuple(str(s) for s in item.get("snapshot_ids") or ()),
            protected=item.get("protected") is True,
            compliance=_str_or_none(item.get("compliance")),
            source_image_id=_str_or_none(item.get("source_image_id")),
            source_region=_str_or_none(item.get("source_region")),
            replica_of=_str_or_none(item.get("replica_of")),
            approval_status=_str_or_none(item.get("approval_status")),
            approved_at=_str_or_none(item.get("approved_at")),
            replication_targets=tuple(str(r) for r in item.get("replication_targets") or ()),
            replicas={
                str(region): dict(entry)
                for region, entry in (item.get("replicas") or {}).items()
                if isinstance(entry, Mapping)
            },
            cleanup_status=_str_or_none(item.get("cleanup_status")),
            cleanup_at=_str_or_none(item.get("cleanup_at")),
            cleanup_snapshots={
                str(snapshot): dict(entry)
                for snapshot, entry in (item.get("cleanup_snapshots") or {}).items()
                if isinstance(entry, Mapping)
            },
            launch_permissions=(
                recorded_launch_permissions(str(item["image_id"]), permissions)
                if isinstance(permissions, Mapping)
                else None
            ),
        )


def recorded_launch_permissions(image_id: str, recorded: Mapping[str, Any]) -> LaunchPermissions:
    """The inventory's `launch_permissions` map (written by the event path) as a value."""
    at = recorded.get("recorded_at")
    return LaunchPermissions(
        image_id=image_id,
        verified_by=VerifiedBy.INVENTORY,
        public=recorded.get("public") is True,
        accounts=tuple(str(a) for a in recorded.get("accounts") or ()),
        organization_arns=tuple(str(a) for a in recorded.get("organization_arns") or ()),
        ou_arns=tuple(str(a) for a in recorded.get("ou_arns") or ()),
        recorded_at=datetime.fromisoformat(str(at).replace("Z", "+00:00")) if at else None,
    )


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class RegionEvidence:
    """Everything the findings of one (account, region) are computed from."""

    scan: RegionScan
    references: ReferenceCheck = field(default_factory=ReferenceCheck)
    instance_images: InstanceImageMetadataScan = field(default_factory=InstanceImageMetadataScan)
    launch_permissions: tuple[LaunchPermissions, ...] = ()
    inventory: tuple[InventoryRecord, ...] = ()
    inventory_error: str | None = None  # the inventory could not be read: "Code: message"

    @property
    def account_id(self) -> str:
        return self.scan.account_id

    @property
    def region(self) -> str:
        return self.scan.region

    @property
    def errors(self) -> dict[str, str]:
        """Every failed listing of this region's evidence: listing -> "Code: message"."""
        parts: list[ScanResult] = [self.scan, self.references, self.instance_images]
        errors = {name: error for part in parts for name, error in part.listing_errors.items()}
        if self.inventory_error:
            errors["inventory"] = self.inventory_error
        return errors

    @property
    def complete(self) -> bool:
        return not self.errors


class ActionKind(StrEnum):
    DEREGISTER_OVERDUE = "deregister-overdue"
    RETRY_CLEANUP = "retry-cleanup"
    DELETE_ORPHANED_SNAPSHOT = "delete-orphaned-snapshot"
    DEREGISTER_STALE = "deregister-stale"
    JUDGE = "judge"  # an AMI no event judged (imported, made before the deployment) gets its verdict tags


class ActionStatus(StrEnum):
    DONE = "done"
    FAILED = "failed"
    WOULD_DO = "would-do"  # dry-run
    CAPPED = "capped"  # over the run's blast-radius cap: left for the next run
    SKIPPED = "skipped"  # a safety check refused it (the reason says which)


@dataclass(frozen=True)
class SweepAction:
    kind: ActionKind
    account_id: str
    region: str
    resource_id: str
    status: ActionStatus
    reason: str
    finding_kind: FindingKind | None = None


@dataclass(frozen=True)
class RegionStatus:
    """One scanned (account, region): complete or not (with each failed listing's error), what was listed, and how
    the AMIs' launch permissions were verified."""

    account_id: str
    region: str
    complete: bool
    errors: dict[str, str] = field(default_factory=dict)
    images: int = 0
    snapshots: int = 0
    instances: int = 0
    verified_by: dict[str, int] = field(default_factory=dict)  # VerifiedBy value -> number of AMIs
    api_calls: int = 0


@dataclass(frozen=True)
class Report:
    run_id: str
    generated_at: datetime
    mode: str  # the policy's mode: audit | enforce
    sweep: str  # off | dry-run | on
    regions: tuple[RegionStatus, ...] = ()
    findings: tuple[Finding, ...] = ()
    actions: tuple[SweepAction, ...] = ()
    schema_version: int = REPORT_SCHEMA_VERSION

    @property
    def complete(self) -> bool:
        return all(region.complete for region in self.regions)

    @property
    def monthly_cost(self) -> float:
        return round(sum(finding.monthly_cost for finding in self.findings), 2)

    def count(self, kind: FindingKind) -> int:
        return sum(1 for finding in self.findings if finding.kind is kind)
