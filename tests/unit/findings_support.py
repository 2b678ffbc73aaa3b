"""Small hand-built evidences for the findings' table tests: one policy, builders with AWS-shaped ids, and a
fixed clock."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from ami_governance.models.findings import Finding, InventoryRecord, LaunchPermissions, RegionEvidence
from ami_governance.models.policy import GovernancePolicy, parse_policy
from ami_governance.models.scan import (
    ImageRecord,
    ImageReference,
    ImageSnapshot,
    InstanceImageMetadataScan,
    ReferenceCheck,
    RegionScan,
    SnapshotRecord,
)

ACCOUNT = "111122223333"
PARTNER = "444455556666"  # in replication.share_with
STRANGER = "999988887777"
ORG = "arn:aws:organizations::111122223333:organization/o-abc123def4"
REGION, TARGET, OTHER_REGION = "us-east-1", "eu-west-1", "eu-central-1"
NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)

POLICY_DOCUMENT: dict[str, Any] = {
    "home_region": REGION,
    "governed_regions": [REGION, TARGET, OTHER_REGION],
    "naming": {"pattern": r"^(?P<application>[a-z]+)-(?P<os>al2023|ubuntu24)-(?P<version>\d+)$"},
    "required_tags": {"CostCenter": {"pattern": r"^CC-\d{4}$"}},
    "exemptions": {"tags": {"Exempt": "yes"}},
    "replication": {
        "regions": [TARGET, OTHER_REGION],
        "share_with": {"accounts": [PARTNER], "organization_arns": [ORG]},
    },
    "report": {
        "unused_days": 30,
        "retention": {"keep_newest": 2, "max_age_days": 365, "family_groups": ["application", "os"]},
        "owner_tags": ["Owner", "CostCenter"],
        "snapshot_price_per_gb_month": {TARGET: 0.055},
        "trusted_owners": ["self", "amazon", PARTNER],
    },
}
POLICY: GovernancePolicy = parse_policy(POLICY_DOCUMENT)
PROTECTED = POLICY.protection_tag_key
COMPLIANCE = POLICY.tag_key("compliance")
IMAGE_ID_TAG = POLICY.tag_key("image-id")
REMEDIATION = POLICY.tag_key("remediation")
APPROVED = POLICY.approval_tag_key
GOOD_TAGS = {"CostCenter": "CC-1234"}


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def ami(n: int) -> str:
    return f"ami-{n:017x}"


def snap(n: int) -> str:
    return f"snap-{n:017x}"


def judged(image_id: str, status: str = "compliant", **tags: str) -> dict[str, str]:
    """Tags of an AMI enforcement judged: its verdict and its own id (without which the verdict is inherited)."""
    return {**GOOD_TAGS, COMPLIANCE: status, IMAGE_ID_TAG: image_id, **tags}


def image(
    image_id: str,
    name: str = "web-al2023-1",
    *,
    state: str = "available",
    created: float | None = 400,
    launched: float | None = None,
    tags: Mapping[str, str] | None = None,
    snapshots: Iterable[tuple[str, int]] = (),
    **fields: Any,
) -> ImageRecord:
    return ImageRecord(
        image_id=image_id,
        name=name,
        owner_id=ACCOUNT,
        state=state,
        creation_date=None if created is None else days_ago(created),
        last_launched_time=None if launched is None else days_ago(launched),
        tags=dict(judged(image_id) if tags is None else tags),
        snapshots=tuple(ImageSnapshot(s, size) for s, size in snapshots),
        **fields,
    )


def snapshot(
    snapshot_id: str,
    description: str = "",
    *,
    size: int = 8,
    state: str = "completed",
    started: float = 200,
    tags: Mapping[str, str] | None = None,
    **fields: Any,
) -> SnapshotRecord:
    return SnapshotRecord(
        snapshot_id=snapshot_id,
        owner_id=ACCOUNT,
        state=state,
        volume_size_gib=size,
        start_time=days_ago(started),
        description=description,
        tags=dict(tags or {}),
        **fields,
    )


def created_by(image_id: str) -> str:
    return f"Created by CreateImage(i-0123456789abcdef0) for {image_id} from vol-0123456789abcdef0"


def copied_for(image_id: str, source: str = "ami-0fedcba9876543210") -> str:
    return (
        f"Copied for DestinationAmi {image_id} from SourceAmi {source} for SourceSnapshot "
        "snap-0a85657906cb9d36f. Task created on 1,524,247,133,370."
    )


def scan(region: str = REGION, errors: Mapping[str, str] | None = None, **listings: Any) -> RegionScan:
    return RegionScan(
        account_id=ACCOUNT,
        region=region,
        scanned_at=NOW,
        listing_errors=dict(errors or {}),
        **{name: tuple(items) if isinstance(items, list | tuple) else items for name, items in listings.items()},
    )


def evidence(
    region_scan: RegionScan,
    *,
    checked: Iterable[str] = (),
    unchecked: Iterable[str] = (),
    references: Mapping[str, str] | None = None,
    inventory: Iterable[InventoryRecord] = (),
    permissions: Iterable[LaunchPermissions] = (),
    instance_images: InstanceImageMetadataScan | None = None,
    inventory_error: str | None = None,
) -> RegionEvidence:
    refs = tuple(
        ImageReference(image_id, "imagebuilder:ImageRecipe", arn) for image_id, arn in (references or {}).items()
    )
    return RegionEvidence(
        scan=region_scan,
        references=ReferenceCheck(checked=tuple(checked), references=refs, unchecked=tuple(unchecked)),
        instance_images=instance_images or InstanceImageMetadataScan(),
        launch_permissions=tuple(permissions),
        inventory=tuple(inventory),
        inventory_error=inventory_error,
    )


def record(image_id: str, region: str = REGION, **fields: Any) -> InventoryRecord:
    return InventoryRecord(image_id=image_id, region=region, account=ACCOUNT, **fields)


def keys(findings: Iterable[Finding]) -> list[tuple[str, str]]:
    """(resource id, detail) of each finding, in order: what most table cases compare."""
    return [(finding.resource_id, finding.detail) for finding in findings]


FAILED = "RequestLimitExceeded: Request limit exceeded."
