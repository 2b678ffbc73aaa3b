"""Replication drift, across regions: an approved source (inventory approval_status approved, still listed in its
region) whose target region (the policy's replication regions, narrowed by the AMI's regions tag: the same
`target_regions` replication uses) has no replica (`missing-replica`; `region-added` when the region was not a
target when the AMI was approved), a failed one (`failed-replica`), a deregistered one (`deregistered-replica`), or
an `available` one that the target region's scan does not list (`replica-gone`); and a replica (inventory
replica_of) whose source is gone from its region's scan (`source-gone`). Copies queued, under way or withdrawn are
not drift.

A finding that needs another region's listing (replica-gone, source-gone) is made only when that region was scanned
and its images listing succeeded; every drift finding is actionable only when both regions' evidence is complete.
The finding is in the region of the resource it names: the source AMI, or the replica.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from ami_governance.models.findings import Finding, FindingKind, InventoryRecord
from ami_governance.models.lineage import ReplicaState
from ami_governance.models.policy import GovernancePolicy
from ami_governance.models.scan import ImageRecord, Listing
from ami_governance.rules.approval import target_regions
from ami_governance.rules.findings.index import RegionIndex, image_facts, image_finding

MISSING, ADDED, FAILED, DEREGISTERED = "missing-replica", "region-added", "failed-replica", "deregistered-replica"
REPLICA_GONE, SOURCE_GONE = "replica-gone", "source-gone"

Regions = Mapping[tuple[str, str], RegionIndex]  # (account, region) -> index


def find_drift(policy: GovernancePolicy, indexes: Sequence[RegionIndex], now: datetime) -> list[Finding]:
    regions: Regions = {(index.account_id, index.region): index for index in indexes}
    findings: list[Finding] = []
    for index in indexes:
        for record in index.inventory.values():
            image = index.images.get(record.image_id)
            if image is None:
                continue
            if record.approval_status == "approved":
                findings.extend(_source_drift(policy, regions, index, image, record, now))
            if record.replica_of:
                findings.extend(_replica_drift(policy, regions, index, image, record.replica_of, now))
    return findings


def _source_drift(
    policy: GovernancePolicy,
    regions: Regions,
    index: RegionIndex,
    image: ImageRecord,
    record: InventoryRecord,
    now: datetime,
) -> list[Finding]:
    findings = []
    for target in target_regions(policy, image_facts(image, index.region)).regions:
        entry = record.replicas.get(target)
        there = regions.get((index.account_id, target))
        detail = _replica_problem(target, entry, record, there)
        if detail is None:
            continue
        reason, fix = _source_words(detail, index.region, image.image_id, target, entry)
        actionable = index.evidence.complete and there is not None and there.evidence.complete
        findings.append(image_finding(policy, index, image, now, FindingKind.DRIFT, detail, reason, fix, actionable))
    return findings


def _replica_problem(
    target: str, entry: Mapping[str, Any] | None, record: InventoryRecord, there: RegionIndex | None
) -> str | None:
    if entry is None:
        return MISSING if target in record.replication_targets else ADDED
    state = entry.get("state")
    if state == ReplicaState.FAILED:
        return FAILED
    if state == ReplicaState.DEREGISTERED:
        return DEREGISTERED
    if state != ReplicaState.AVAILABLE or there is None or there.failed((Listing.IMAGES,)):
        return None
    return None if entry.get("image_id") in there.images else REPLICA_GONE


def _source_words(
    detail: str, region: str, image_id: str, target: str, entry: Mapping[str, Any] | None
) -> tuple[str, str]:
    replica = (entry or {}).get("image_id") or "its replica"
    reason = {
        MISSING: f"approved, but no replica in {target}",
        ADDED: f"approved, but {target} was added to replication.regions since: no replica there",
        FAILED: f"approved, but its copy to {target} failed ({(entry or {}).get('error') or 'no error recorded'})",
        DEREGISTERED: f"approved, but its replica {replica} in {target} was deregistered",
        REPLICA_GONE: f"approved, but its replica {replica} is not listed in {target} any more",
    }[detail]
    fix = (
        f"approve it again (its approval tag) to copy only what is missing, or: aws ec2 copy-image --region {target} "
        f"--source-region {region} --source-image-id {image_id} --name <name> --copy-image-tags"
    )
    return reason, fix


def _replica_drift(
    policy: GovernancePolicy,
    regions: Regions,
    index: RegionIndex,
    image: ImageRecord,
    replica_of: str,
    now: datetime,
) -> list[Finding]:
    source_region, _, source_id = replica_of.partition("/")
    there = regions.get((index.account_id, source_region))
    if there is None or there.failed((Listing.IMAGES,)) or source_id in there.images:
        return []
    in_bin = source_id in there.recycle_bin_images
    reason = f"a replica of {replica_of}, which is gone from {source_region}" + (
        " (it is in the AMI Recycle Bin there)" if in_bin else ""
    )
    fix = (
        "if the source was retired on purpose: "
        + f"aws ec2 deregister-image --region {index.region} --image-id {image.image_id}"
    )
    if in_bin:
        fix += (
            "; else restore it: "
            + f"aws ec2 restore-image-from-recycle-bin --region {source_region} --image-id {source_id}"
        )
    actionable = index.evidence.complete and there.evidence.complete
    return [image_finding(policy, index, image, now, FindingKind.DRIFT, SOURCE_GONE, reason, fix, actionable)]
