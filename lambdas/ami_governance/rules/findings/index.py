"""One region's evidence indexed once (AMI by id, snapshot -> the AMIs that use it, AMI -> what references it, ...),
so that every finding is a dictionary look-up rather than a scan of the other listings: 2,000 AMIs x 6,000
snapshots stay linear. Also the small helpers every finding shares: age, size, cost, owner tags."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from ami_governance.models.findings import (
    Finding,
    FindingKind,
    InventoryRecord,
    LaunchPermissions,
    RegionEvidence,
    ResourceType,
)
from ami_governance.models.image import ImageFacts
from ami_governance.models.policy import GovernancePolicy
from ami_governance.models.scan import ImageRecord, Listing, RegionScan, SnapshotRecord

INVENTORY = "inventory"  # the key RegionEvidence.errors gives a failed inventory read
WHOLE_SCAN = "scan"  # the key the report service gives a scan that failed as a whole: every listing is missing

# The listings that show an AMI in use; each one that failed could hide a use.
REFERENCE_LISTINGS: tuple[str, ...] = (
    Listing.INSTANCES,
    Listing.LAUNCH_TEMPLATE_VERSIONS,
    Listing.PINNED_LAUNCH_TEMPLATE_VERSIONS,
    Listing.FLEETS,
    Listing.AUTO_SCALING_GROUPS,  # the source of the pinned versions
    Listing.LAUNCH_CONFIGURATIONS,
    Listing.SSM_IMAGE_PARAMETERS,
)

# States of the AMIs that retention, use and compliance are about: a pending AMI is still being made, a failed one
# never was (EC2 lists it for a while).
GOVERNED_STATES = frozenset({"available", "disabled"})


@dataclass(frozen=True)
class RegionIndex:
    evidence: RegionEvidence
    images: Mapping[str, ImageRecord]
    snapshots: Mapping[str, SnapshotRecord]
    snapshot_users: Mapping[str, tuple[str, ...]]  # snapshot -> listed AMIs (any state) whose block devices use it
    referrers: Mapping[str, tuple[str, ...]]  # AMI -> what in the bulk listings launches from it, in words
    confirmed: Mapping[str, tuple[str, ...]]  # AMI -> ARNs DescribeImageReferences names
    checked: frozenset[str]  # AMIs DescribeImageReferences answered for
    recycle_bin_images: frozenset[str]
    recycle_bin_snapshots: frozenset[str]
    inventory: Mapping[str, InventoryRecord]
    permissions: Mapping[str, LaunchPermissions]
    errors: Mapping[str, str]

    @classmethod
    def of(cls, evidence: RegionEvidence) -> RegionIndex:
        scan = evidence.scan
        users: defaultdict[str, list[str]] = defaultdict(list)
        for image in scan.images:
            for snapshot_id in image.snapshot_ids:
                users[snapshot_id].append(image.image_id)
        confirmed: defaultdict[str, list[str]] = defaultdict(list)
        for reference in evidence.references.references:
            confirmed[reference.image_id].append(reference.arn)
        inventory = {record.image_id: record for record in evidence.inventory}
        permissions = {
            record.image_id: record.launch_permissions for record in evidence.inventory if record.launch_permissions
        }
        permissions.update({p.image_id: p for p in evidence.launch_permissions})
        return cls(
            evidence=evidence,
            images={image.image_id: image for image in scan.images},
            snapshots={snapshot.snapshot_id: snapshot for snapshot in scan.snapshots},
            snapshot_users={snapshot: tuple(images) for snapshot, images in users.items()},
            referrers=bulk_referrers(scan),
            confirmed={image: tuple(arns) for image, arns in confirmed.items()},
            checked=frozenset(evidence.references.checked) - frozenset(evidence.references.unchecked),
            recycle_bin_images=frozenset(record.image_id for record in scan.recycle_bin_images),
            recycle_bin_snapshots=frozenset(record.snapshot_id for record in scan.recycle_bin_snapshots),
            inventory=inventory,
            permissions=permissions,
            errors=evidence.errors,
        )

    @property
    def account_id(self) -> str:
        return self.evidence.account_id

    @property
    def region(self) -> str:
        return self.evidence.region

    def failed(self, listings: Iterable[str]) -> bool:
        return WHOLE_SCAN in self.errors or any(listing in self.errors for listing in listings)

    def in_use(self, image_id: str) -> bool | None:
        """True when anything references the AMI, False when nothing does and DescribeImageReferences confirmed
        it, None when that is not known (not checked, or its check failed)."""
        if image_id in self.referrers or image_id in self.confirmed:
            return True
        return False if image_id in self.checked else None

    def uses(self, image_id: str) -> tuple[str, ...]:
        """What references the AMI, bulk listings first, in words."""
        return self.referrers.get(image_id, ()) + self.confirmed.get(image_id, ())

    def protected(self, policy: GovernancePolicy, image_id: str) -> bool:
        image = self.images.get(image_id)
        record = self.inventory.get(image_id)
        tagged = image is not None and policy.protection_tag_key in image.tags
        return tagged or (record is not None and record.protected)


def bulk_referrers(scan: RegionScan) -> dict[str, tuple[str, ...]]:
    """AMI -> the instances (any state), launch template versions ($Default, $Latest and the pinned ones), launch
    configurations, fleet overrides and SSM image parameters that name it."""
    found: defaultdict[str, list[str]] = defaultdict(list)
    for instance in scan.instances:
        found[instance.image_id].append(f"instance {instance.instance_id} ({instance.state})")
    for version in scan.launch_template_versions:
        if version.image_id:
            found[version.image_id].append(f"launch template {version.template_name} version {version.version}")
    for configuration in scan.launch_configurations:
        found[configuration.image_id].append(f"launch configuration {configuration.name}")
    for fleet in scan.fleets:
        for image_id in fleet.image_ids:
            found[image_id].append(f"fleet {fleet.fleet_id}")
    for parameter in scan.image_parameters:
        found[parameter.image_id].append(f"SSM parameter {parameter.name}")
    return {image_id: tuple(dict.fromkeys(uses)) for image_id, uses in found.items()}


def image_facts(image: ImageRecord, region: str) -> ImageFacts:
    """A listed AMI as the enforcement rules see one (the same view enforcement builds from DescribeImages)."""
    return ImageFacts(
        image_id=image.image_id,
        region=region,
        owner_id=image.owner_id,
        name=image.name,
        state=image.state,
        tags=dict(image.tags),
        snapshot_ids=image.snapshot_ids,
        snapshot_sizes={s.snapshot_id: s.volume_size_gib for s in image.snapshots if s.volume_size_gib is not None},
        source_image_id=image.source_image_id,
        source_region=image.source_image_region,
        creation_date=image.creation_date.strftime("%Y-%m-%dT%H:%M:%S.000Z") if image.creation_date else None,
        deprecation_time=image.deprecation_time.strftime("%Y-%m-%dT%H:%M:%S.000Z") if image.deprecation_time else None,
        description=image.description,
    )


def age_days(since: datetime | None, now: datetime) -> int | None:
    return None if since is None else max(0, (now - since) // timedelta(days=1))


def owner_tags(policy: GovernancePolicy, tags: Mapping[str, str]) -> dict[str, str]:
    return {key: tags[key] for key in policy.report.owner_tags if key in tags}


def snapshot_cost(policy: GovernancePolicy, region: str, snapshot: SnapshotRecord) -> float:
    return round(policy.snapshot_price(region, snapshot.storage_tier) * snapshot.volume_size_gib, 4)


def snapshots_size_cost(
    policy: GovernancePolicy, index: RegionIndex, snapshot_ids: Iterable[str], declared: Mapping[str, int] | None = None
) -> tuple[int, float]:
    """GiB and USD per month of snapshots: as listed (size and tier), else the size the AMI declares (standard tier),
    else nothing (a snapshot that is gone costs nothing)."""
    size, cost = 0, 0.0
    for snapshot_id in dict.fromkeys(snapshot_ids):
        snapshot = index.snapshots.get(snapshot_id)
        if snapshot is not None:
            size += snapshot.volume_size_gib
            cost += snapshot_cost(policy, index.region, snapshot)
        elif declared and declared.get(snapshot_id):
            size += declared[snapshot_id]
            cost += policy.snapshot_price(index.region) * declared[snapshot_id]
    return size, round(cost, 4)


def image_size_cost(policy: GovernancePolicy, index: RegionIndex, image: ImageRecord) -> tuple[int, float]:
    declared = {s.snapshot_id: s.volume_size_gib for s in image.snapshots if s.volume_size_gib is not None}
    return snapshots_size_cost(policy, index, image.snapshot_ids, declared)


def listed(items: Iterable[str], limit: int = 3) -> str:
    """A few items in words, and how many more."""
    items = list(items)
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def image_finding(
    policy: GovernancePolicy,
    index: RegionIndex,
    image: ImageRecord,
    now: datetime,
    kind: FindingKind,
    detail: str,
    reason: str,
    fix: str,
    actionable: bool = True,
) -> Finding:
    size, cost = image_size_cost(policy, index, image)
    return Finding(
        kind=kind,
        account_id=index.account_id,
        region=index.region,
        resource_type=ResourceType.IMAGE,
        resource_id=image.image_id,
        reason=reason,
        fix=fix,
        name=image.name,
        detail=detail,
        owner_tags=owner_tags(policy, image.tags),
        age_days=age_days(image.creation_date, now),
        size_gib=size,
        monthly_cost=cost,
        actionable=actionable,
        related_ids=image.snapshot_ids,
    )
