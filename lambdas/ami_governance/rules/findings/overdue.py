"""Overdue: AMIs past the deadline their `deregister` remediation tagged (`<prefix>remediation` =
`deregister-after <ISO time>`, rules.remediation), and clean-ups left `deferred` or `dry-run`.

A deadline counts only while the AMI is still non-compliant under the current policy (a policy change can make it
compliant before enforcement clears the tag: that AMI is not deregistered). The finding says whether anything uses
the AMI; it is actionable only when that is known (bulk listings and DescribeImageReferences), since the sweep never
deregisters an AMI in use. A clean-up finding is about a deregistered AMI: one listed again (restored) or in the AMI
Recycle Bin has no clean-up due, and none is reported while either listing failed.
"""

from __future__ import annotations

from datetime import datetime

from ami_governance.models.findings import Finding, FindingKind, InventoryRecord, RegionEvidence, ResourceType
from ami_governance.models.image import ComplianceStatus
from ami_governance.models.policy import GovernancePolicy
from ami_governance.models.scan import ImageRecord, Listing
from ami_governance.rules.findings.compliance import judge, own_tags
from ami_governance.rules.findings.index import (
    INVENTORY,
    REFERENCE_LISTINGS,
    RegionIndex,
    image_finding,
    listed,
    snapshots_size_cost,
)
from ami_governance.rules.tags import SystemTag

DEREGISTER_OVERDUE = "deregister-overdue"
CLEANUP_DETAILS = {"deferred": "cleanup-deferred", "dry-run": "cleanup-dry-run"}
DEADLINE_PREFIX = "deregister-after "


def deregister_deadline(value: str | None) -> datetime | None:
    if not value or not value.startswith(DEADLINE_PREFIX):
        return None
    try:
        return datetime.fromisoformat(value.removeprefix(DEADLINE_PREFIX).strip().replace("Z", "+00:00"))
    except ValueError:
        return None


def overdue_images(policy: GovernancePolicy, index: RegionIndex, now: datetime) -> list[tuple[ImageRecord, datetime]]:
    overdue = []
    for image in index.images.values():
        deadline = deregister_deadline(own_tags(policy, image).get(policy.tag_key(SystemTag.REMEDIATION)))
        if deadline is not None and deadline < now and judge(policy, image).status is ComplianceStatus.NON_COMPLIANT:
            overdue.append((image, deadline))
    return overdue


def find_overdue(
    policy: GovernancePolicy, evidence: RegionEvidence, now: datetime, index: RegionIndex | None = None
) -> list[Finding]:
    index = index or RegionIndex.of(evidence)
    findings: list[Finding] = []
    if not index.failed((Listing.IMAGES,)):
        overdue = overdue_images(policy, index, now)
        findings.extend(_deregister_overdue(policy, index, image, deadline, now) for image, deadline in overdue)
    if not index.failed((INVENTORY, Listing.IMAGES, Listing.RECYCLE_BIN_IMAGES)):
        for record in index.inventory.values():
            detail = CLEANUP_DETAILS.get(record.cleanup_status or "")
            gone = record.image_id not in index.images and record.image_id not in index.recycle_bin_images
            if detail and gone:
                findings.append(_cleanup_left(policy, index, record, detail))
    return findings


def _deregister_overdue(
    policy: GovernancePolicy, index: RegionIndex, image: ImageRecord, deadline: datetime, now: datetime
) -> Finding:
    in_use = index.in_use(image.image_id)
    known = in_use is not None and not index.failed((*REFERENCE_LISTINGS, INVENTORY))
    violations = "; ".join(v.message for v in judge(policy, image).violations)
    reason = f"past its deregistration deadline {deadline:%Y-%m-%dT%H:%M:%SZ} and still non-compliant: {violations}"
    if in_use:
        reason += f"; in use by {listed(index.uses(image.image_id))}"
    elif in_use is None:
        reason += "; whether anything uses it is not known"
    if index.protected(policy, image.image_id):
        reason += f"; protected by {policy.protection_tag_key}: the sweep leaves it"
    fix = (
        f"fix the violations, or deregister it: aws ec2 deregister-image --region {index.region} "
        f"--image-id {image.image_id} --delete-associated-snapshots (the sweep does so when report.sweep."
        "deregister_overdue is on, in enforce mode)"
    )
    return image_finding(policy, index, image, now, FindingKind.OVERDUE, DEREGISTER_OVERDUE, reason, fix, known)


def _cleanup_left(policy: GovernancePolicy, index: RegionIndex, record: InventoryRecord, detail: str) -> Finding:
    snapshot_ids = tuple(s for s in (*record.snapshot_ids, *record.cleanup_snapshots) if s in index.snapshots)
    snapshot_ids = tuple(dict.fromkeys(snapshot_ids))
    size, cost = snapshots_size_cost(policy, index, snapshot_ids)
    left = listed(snapshot_ids) if snapshot_ids else "none of its snapshots are listed any more"
    if detail == CLEANUP_DETAILS["dry-run"]:
        reason = f"the clean-up of deregistered {record.image_id} ran in dry-run (cleanup.dry_run): left {left}"
        fix = "set cleanup.dry_run: false; the sweep retries it (report.sweep.retry_deferred_cleanups)"
    else:
        reason = f"the clean-up of deregistered {record.image_id} was deferred: left {left}"
        fix = "the sweep retries it through the clean-up and its checks (report.sweep.retry_deferred_cleanups)"
    return Finding(
        kind=FindingKind.OVERDUE,
        account_id=index.account_id,
        region=index.region,
        resource_type=ResourceType.IMAGE,
        resource_id=record.image_id,
        reason=reason,
        fix=fix,
        name=record.name or "",
        detail=detail,
        size_gib=size,
        monthly_cost=cost,
        related_ids=snapshot_ids,
    )
