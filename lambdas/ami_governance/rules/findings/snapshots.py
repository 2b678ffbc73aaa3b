"""Orphaned snapshots: made for an AMI of this region that no longer exists, and used by none that does.

A snapshot is nominated by what ties it to an AMI: its description in either of AWS's formats (`Created by
CreateImage(i-…) for ami-… from vol-…`; `Copied for DestinationAmi ami-… from SourceAmi ami-… for SourceSnapshot
snap-…. Task created on …`), or the inventory's record of a deregistered AMI's snapshots. A description of the form
`[Copied snap-… from <region>] <description of the source>` (CopySnapshot's, also found on the snapshots of AMIs
copied long ago) names the *source's* AMI, in another region: it says nothing about which AMI here, if any, the copy
was made for, so it nominates nothing; such a snapshot is an orphan only if the inventory recorded it for an AMI.

A nominee is kept (no finding) when: it is not `completed` (an AMI being created or copied owns it); any listed AMI
uses it, whatever its state (disabled and deprecated ones are listed: DescribeImages IncludeDisabled); it is in the
snapshot Recycle Bin; an AMI it was made for still exists, or sits in the AMI Recycle Bin (a restore needs its
snapshots: that bin's records have no block devices, so the nomination is the only link); it carries the protection
tag; the inventory recorded an AMI it was made for as protected.
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import datetime

from ami_governance.models.findings import Finding, FindingKind, RegionEvidence, ResourceType
from ami_governance.models.policy import GovernancePolicy
from ami_governance.models.scan import Listing, SnapshotRecord
from ami_governance.rules.cleanup import COPIED_FOR_DESTINATION, CREATED_BY_CREATE_IMAGE
from ami_governance.rules.findings.index import (
    INVENTORY,
    RegionIndex,
    age_days,
    owner_tags,
    snapshot_cost,
)

# Every exclusion above is read from one of these: when one failed, no snapshot is called an orphan.
ORPHAN_LISTINGS: tuple[str, ...] = (
    Listing.SNAPSHOTS,
    Listing.IMAGES,
    Listing.RECYCLE_BIN_IMAGES,
    Listing.RECYCLE_BIN_SNAPSHOTS,
    INVENTORY,
)
COPIED_SNAPSHOT = re.compile(r"^\[Copied (snap-[0-9a-f]+) from ([a-z0-9-]+)\]")

CREATE_IMAGE, COPY_IMAGE, RECORDED = "create-image", "copy-image", "inventory"


def made_for(description: str) -> tuple[str, str] | None:
    """(AMI of this region, how it is known) that a snapshot description says the snapshot was made for."""
    if COPIED_SNAPSHOT.match(description):
        return None
    created = CREATED_BY_CREATE_IMAGE.match(description)
    if created:
        return created.group(2), CREATE_IMAGE
    copied = COPIED_FOR_DESTINATION.match(description)
    return (copied.group(1), COPY_IMAGE) if copied else None


def nominations(index: RegionIndex) -> dict[str, dict[str, str]]:
    """Snapshot -> {AMI it was made for: how that is known}, for the AMIs that are not listed."""
    found: defaultdict[str, dict[str, str]] = defaultdict(dict)
    for snapshot in index.snapshots.values():
        nominee = made_for(snapshot.description)
        if nominee is not None:
            found[snapshot.snapshot_id][nominee[0]] = nominee[1]
    for record in index.inventory.values():
        if record.image_id not in index.images:
            for snapshot_id in record.snapshot_ids:
                found[snapshot_id].setdefault(record.image_id, RECORDED)
    # An AMI that is still listed exists: its snapshots are not orphans, whether or not it uses them.
    return {
        snapshot: amis
        for snapshot, amis in found.items()
        if snapshot in index.snapshots and not any(ami in index.images for ami in amis)
    }


def kept_because(policy: GovernancePolicy, index: RegionIndex, snapshot: SnapshotRecord, amis: dict[str, str]) -> str:
    """Why a nominated snapshot is not an orphan ('' when it is one): the first exclusion that applies."""
    users = index.snapshot_users.get(snapshot.snapshot_id)
    in_bin = [ami for ami in amis if ami in index.recycle_bin_images]
    exclusions = (
        (snapshot.state != "completed", f"snapshot is {snapshot.state}"),
        (bool(users), "used by " + ", ".join(users or ())),
        (snapshot.snapshot_id in index.recycle_bin_snapshots, "in the snapshot Recycle Bin"),
        (bool(in_bin), f"its AMI {', '.join(in_bin)} is in the AMI Recycle Bin"),
        (policy.protection_tag_key in snapshot.tags, f"protected by {policy.protection_tag_key}"),
        (any(index.protected(policy, ami) for ami in amis), "its AMI was protected"),
    )
    return next((why for applies, why in exclusions if applies), "")


def find_orphaned_snapshots(
    policy: GovernancePolicy, evidence: RegionEvidence, now: datetime, index: RegionIndex | None = None
) -> list[Finding]:
    index = index or RegionIndex.of(evidence)
    if index.failed(ORPHAN_LISTINGS):
        return []
    findings = []
    for snapshot_id, amis in nominations(index).items():
        snapshot = index.snapshots[snapshot_id]
        if not kept_because(policy, index, snapshot, amis):
            findings.append(_orphan(policy, index, snapshot, amis, now))
    return findings


def _orphan(
    policy: GovernancePolicy, index: RegionIndex, snapshot: SnapshotRecord, amis: dict[str, str], now: datetime
) -> Finding:
    how = {CREATE_IMAGE: "by CreateImage", COPY_IMAGE: "by CopyImage", RECORDED: "as the inventory recorded"}
    made = "; ".join(f"made for {ami} ({how[source]})" for ami, source in sorted(amis.items()))
    return Finding(
        kind=FindingKind.ORPHANED_SNAPSHOT,
        account_id=index.account_id,
        region=index.region,
        resource_type=ResourceType.SNAPSHOT,
        resource_id=snapshot.snapshot_id,
        reason=f"{made}, which no longer exists (not listed, not in the Recycle Bin); no AMI uses the snapshot",
        fix=f"aws ec2 delete-snapshot --region {index.region} --snapshot-id {snapshot.snapshot_id}",
        name=snapshot.tags.get("Name", ""),
        detail=sorted(amis.values())[0],
        owner_tags=owner_tags(policy, snapshot.tags),
        age_days=age_days(snapshot.start_time, now),
        size_gib=snapshot.volume_size_gib,
        monthly_cost=snapshot_cost(policy, index.region, snapshot),
        related_ids=tuple(sorted(amis)),
    )
