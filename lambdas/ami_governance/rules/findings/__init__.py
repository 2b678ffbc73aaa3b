"""The report's findings: pure functions of each (account, region)'s evidence and the policy. No boto3, no clock.

Kinds, one module each: orphaned snapshots (snapshots), non-compliant and never-judged AMIs (compliance), unused and
stale AMIs (usage), replication drift (drift), exposure (exposure), untrusted sources (sources), overdue deadlines
and clean-ups (overdue).

Incomplete evidence. A finding rests on positive evidence (the snapshot, the public flag, the tag it reports) and
often on negative evidence (no AMI uses the snapshot, nothing references the AMI). A failed listing is never taken
for an empty one: where a listing that the finding's negative evidence needs failed, the finding is not made at all
(it could be false, and the region is reported incomplete with the listing's error), unless it also holds without
that listing — then it is reported with `actionable=False` (e.g. a replica the inventory records as failed, in a
region whose scan is incomplete; an AMI whose launch permissions could not be read). The sweep never acts on a
finding that is not actionable. Each kind names the listings it needs (`*_LISTINGS`).

Cost. Every finding carries its resource's own size and monthly cost (an AMI: its snapshots, each counted for every
AMI that uses it), so one resource found by several kinds is counted by each: totals over kinds are upper bounds.

Details (`Finding.detail`, the sub-kind): orphaned-snapshot create-image | copy-image | inventory (what ties the
snapshot to its gone AMI); non-compliant violations | verdict-changed (recorded compliant or exempt, non-compliant
under today's policy) | never-judged (non-compliant now; an AMI never judged that is compliant now is kind
unjudged, detail never-judged: the sweep judges and tags both); unused and stale '';
drift missing-replica | region-added | failed-replica | deregistered-replica | replica-gone | source-gone; exposure
public-image | shared-outside | sharing-unknown | public-snapshot | image-block-public-access-off |
snapshot-block-public-access-off; untrusted-source instance | launch-template; overdue deregister-overdue |
cleanup-deferred | cleanup-dry-run.

The index of each region (`RegionIndex`) is built once by `find_all`, so that the whole report is linear in the
listings (dictionary look-ups, no scan of one listing per item of another).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ami_governance.models.findings import Finding, InventoryRecord, RegionEvidence
from ami_governance.models.policy import GovernancePolicy
from ami_governance.models.scan import RegionScan
from ami_governance.rules.findings.compliance import find_non_compliant
from ami_governance.rules.findings.drift import find_drift
from ami_governance.rules.findings.exposure import find_exposure
from ami_governance.rules.findings.index import RegionIndex
from ami_governance.rules.findings.overdue import find_overdue, overdue_images
from ami_governance.rules.findings.snapshots import find_orphaned_snapshots
from ami_governance.rules.findings.sources import find_untrusted_sources
from ami_governance.rules.findings.usage import (
    STALE_LISTINGS,
    UNUSED_LISTINGS,
    find_stale,
    find_unused,
    stale_candidates,
    unused_candidates,
)

__all__ = [
    "RegionIndex",
    "find_all",
    "find_drift",
    "find_exposure",
    "find_non_compliant",
    "find_orphaned_snapshots",
    "find_overdue",
    "find_stale",
    "find_untrusted_sources",
    "find_unused",
    "reference_candidates",
    "sort_key",
]

REGION_KINDS = (
    find_orphaned_snapshots,
    find_non_compliant,
    find_unused,
    find_stale,
    find_exposure,
    find_untrusted_sources,
    find_overdue,
)


def reference_candidates(
    policy: GovernancePolicy, scan: RegionScan, inventory: Sequence[InventoryRecord], now: datetime
) -> tuple[str, ...]:
    """The AMIs whose DescribeImageReferences answer can change a finding: those that could be unused or stale (or
    are overdue for deregistration: the answer decides whether that finding is actionable) and that the bulk
    listings do not already show in use. None when a listing those findings need failed: no answer could make one."""
    index = RegionIndex.of(RegionEvidence(scan=scan, inventory=tuple(inventory)))
    candidates: list[str] = []
    if not index.failed(UNUSED_LISTINGS):
        candidates += unused_candidates(policy, index, now)
    if not index.failed(STALE_LISTINGS):
        candidates += stale_candidates(policy, index, now)
        candidates += [i.image_id for i, _ in overdue_images(policy, index, now) if i.image_id not in index.referrers]
    return tuple(sorted(set(candidates)))


def sort_key(finding: Finding) -> tuple[str, str, str, str, str, str]:
    return (
        finding.kind.value,
        finding.account_id,
        finding.region,
        finding.resource_id,
        finding.detail,
        finding.reason,
    )


def find_all(policy: GovernancePolicy, evidences: Sequence[RegionEvidence], now: datetime) -> list[Finding]:
    """Every finding of every (account, region), sorted by kind, account, region and resource id."""
    indexes = [RegionIndex.of(evidence) for evidence in evidences]
    findings = [
        finding for index in indexes for find in REGION_KINDS for finding in find(policy, index.evidence, now, index)
    ]
    findings.extend(find_drift(policy, indexes, now))
    return sorted(findings, key=sort_key)
