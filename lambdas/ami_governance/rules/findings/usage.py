"""Unused and stale AMIs, and the candidates only DescribeImageReferences can settle.

Unused: nothing in the bulk listings launches from it (instances in any state, launch template versions: $Default,
$Latest and every version an Auto Scaling group or fleet pins, launch configurations, instant fleets' image
overrides, SSM image parameters; every launch configuration counts, attached to a group or not: a group can use it
tomorrow), DescribeImageReferences confirmed nothing references it (Image Builder recipes
and everything else AWS tracks), and it has not been launched for `report.unused_days`. AWS reports a launch up to
24 hours late (LastLaunchedTime), so a day is added to the period; an AMI without LastLaunchedTime (never launched
since 2017) counts from its creation.

Stale: beyond the retention rules — not among the `keep_newest` newest of its family (the values of
`retention.family_groups` in its name), or older than `max_age_days` — and never the newest approved AMI of its
family, never one in use, never a protected one. An AMI whose name gives no family is a family of its own for the
"newest approved" rule (an approved one is never stale) and is not ranked by `keep_newest`.

Both claim an absence (no use), so neither is made when a listing that shows uses failed, nor for an AMI whose
reference check failed or was not made: such an AMI is not reported at all.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from ami_governance.models.findings import Finding, FindingKind, RegionEvidence
from ami_governance.models.policy import GovernancePolicy, compiled
from ami_governance.models.scan import ImageRecord, Listing
from ami_governance.rules.findings.index import (
    GOVERNED_STATES,
    INVENTORY,
    REFERENCE_LISTINGS,
    RegionIndex,
    age_days,
    image_finding,
)

LAUNCH_REPORTING_LAG = timedelta(days=1)
UNUSED_LISTINGS: tuple[str, ...] = (Listing.IMAGES, *REFERENCE_LISTINGS)
STALE_LISTINGS: tuple[str, ...] = (*UNUSED_LISTINGS, INVENTORY)  # approval and protection are in the inventory

Family = tuple[str, ...]


def idle_since(image: ImageRecord) -> datetime | None:
    return image.last_launched_time or image.creation_date


def idle_too_long(policy: GovernancePolicy, image: ImageRecord, now: datetime) -> bool:
    since = idle_since(image)
    return since is not None and now - since > timedelta(days=policy.report.unused_days) + LAUNCH_REPORTING_LAG


def unused_candidates(policy: GovernancePolicy, index: RegionIndex, now: datetime) -> list[str]:
    """AMIs idle too long that no bulk listing shows in use: only DescribeImageReferences can tell."""
    return [
        image.image_id
        for image in index.images.values()
        if image.state in GOVERNED_STATES
        and image.image_id not in index.referrers
        and idle_too_long(policy, image, now)
    ]


def find_unused(
    policy: GovernancePolicy, evidence: RegionEvidence, now: datetime, index: RegionIndex | None = None
) -> list[Finding]:
    index = index or RegionIndex.of(evidence)
    if index.failed(UNUSED_LISTINGS):
        return []
    return [
        _unused(policy, index, index.images[image_id], now)
        for image_id in unused_candidates(policy, index, now)
        if index.in_use(image_id) is False
    ]


def _unused(policy: GovernancePolicy, index: RegionIndex, image: ImageRecord, now: datetime) -> Finding:
    if image.last_launched_time is not None:
        idle = f"last launched {image.last_launched_time:%Y-%m-%d} ({age_days(image.last_launched_time, now)} days ago)"
    else:
        idle = f"never launched since it was created {age_days(image.creation_date, now)} days ago"
    reason = (
        "referenced by no instance, launch template, launch configuration, fleet, SSM parameter or other resource "
        f"(DescribeImageReferences); {idle}, beyond report.unused_days={policy.report.unused_days}"
    )
    fix = deregister_fix(index.region, image.image_id)
    return image_finding(policy, index, image, now, FindingKind.UNUSED, "", reason, fix)


def deregister_fix(region: str, image_id: str) -> str:
    return (
        f"aws ec2 deregister-image --region {region} --image-id {image_id} --delete-associated-snapshots "
        f"(or keep it restorable: aws ec2 disable-image --region {region} --image-id {image_id})"
    )


# ---- stale ---------------------------------------------------------------------------------------------------


def family_of(policy: GovernancePolicy, name: str) -> Family | None:
    groups = policy.report.retention.family_groups
    if not groups or policy.naming is None:
        return None
    match = compiled(policy.naming.pattern).fullmatch(name)
    return None if match is None else tuple(match.group(group) or "" for group in groups)


def approved(policy: GovernancePolicy, index: RegionIndex, image: ImageRecord) -> bool:
    record = index.inventory.get(image.image_id)
    tagged = image.tags.get(policy.approval_tag_key) == policy.approval.value
    return tagged or (record is not None and record.approval_status == "approved")


def _newest_first(images: Iterable[ImageRecord]) -> list[ImageRecord]:
    # An AMI without a creation date is ranked last: it can never be shown to be among the newest.
    dated = sorted(images, key=lambda i: i.image_id)
    return sorted(dated, key=lambda i: i.creation_date.timestamp() if i.creation_date else float("-inf"), reverse=True)


def families(policy: GovernancePolicy, index: RegionIndex) -> dict[Family | None, list[ImageRecord]]:
    grouped: defaultdict[Family | None, list[ImageRecord]] = defaultdict(list)
    for image in index.images.values():
        if image.state in GOVERNED_STATES:
            grouped[family_of(policy, image.name)].append(image)
    return {family: _newest_first(images) for family, images in grouped.items()}


def beyond_retention(policy: GovernancePolicy, index: RegionIndex, now: datetime) -> dict[str, str]:
    """AMI -> why it is beyond retention, leaving out the newest approved one of each family and protected ones
    (uses are checked apart: they need DescribeImageReferences)."""
    retention = policy.report.retention
    stale: dict[str, str] = {}
    for family, members in families(policy, index).items():
        newest_approved = next((i.image_id for i in members if approved(policy, index, i)), None)
        for rank, image in enumerate(members, start=1):
            if image.image_id == newest_approved or (family is None and approved(policy, index, image)):
                continue
            if index.protected(policy, image.image_id):
                continue
            why = _why_stale(retention.keep_newest, retention.max_age_days, family, rank, image, now)
            if why:
                stale[image.image_id] = why
    return stale


def _why_stale(
    keep_newest: int | None,
    max_age_days: int | None,
    family: Family | None,
    rank: int,
    image: ImageRecord,
    now: datetime,
) -> str:
    reasons = []
    if keep_newest is not None and family is not None and rank > keep_newest:
        reasons.append(f"number {rank} of its family {'/'.join(family)}, which keeps the {keep_newest} newest")
    age = age_days(image.creation_date, now)
    if max_age_days is not None and age is not None and age > max_age_days:
        reasons.append(f"{age} days old, beyond retention.max_age_days={max_age_days}")
    return "; ".join(reasons)


def stale_candidates(policy: GovernancePolicy, index: RegionIndex, now: datetime) -> list[str]:
    return [image_id for image_id in beyond_retention(policy, index, now) if image_id not in index.referrers]


def find_stale(
    policy: GovernancePolicy, evidence: RegionEvidence, now: datetime, index: RegionIndex | None = None
) -> list[Finding]:
    index = index or RegionIndex.of(evidence)
    if index.failed(STALE_LISTINGS):
        return []
    findings = []
    for image_id, why in beyond_retention(policy, index, now).items():
        if index.in_use(image_id) is False:
            image = index.images[image_id]
            reason = f"beyond retention: {why}; not approved as its family's newest, not protected, not in use"
            fix = deregister_fix(index.region, image_id)
            findings.append(image_finding(policy, index, image, now, FindingKind.STALE, "", reason, fix))
    return findings
