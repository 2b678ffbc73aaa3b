"""Orphaned snapshots: given a region's listings and inventory, exactly the snapshots made for an AMI that is gone,
none that anything still needs (the false positives other tools report), and none when a listing failed."""

from __future__ import annotations

from typing import Any

import pytest

from ami_governance.models.findings import Finding, FindingKind, ResourceType
from ami_governance.models.scan import Listing, RecycleBinImageRecord, RecycleBinSnapshotRecord
from ami_governance.rules.findings import find_orphaned_snapshots
from ami_governance.rules.findings.snapshots import made_for
from tests.unit.findings_support import (
    ACCOUNT,
    FAILED,
    NOW,
    POLICY,
    PROTECTED,
    REGION,
    TARGET,
    ami,
    copied_for,
    created_by,
    evidence,
    image,
    keys,
    record,
    scan,
    snap,
    snapshot,
)

GONE, LIVE, OTHER = ami(1), ami(2), ami(3)
S1, S2 = snap(1), snap(2)
OLD_COPY = f"[Copied {snap(9)} from us-west-2] {created_by(ami(9))}"

CASES: list[tuple[str, dict[str, Any], list[tuple[str, str]]]] = [
    ("CreateImage snapshot of a gone AMI", {"snapshots": [snapshot(S1, created_by(GONE))]}, [(S1, "create-image")]),
    ("CopyImage snapshot of a gone copy", {"snapshots": [snapshot(S1, copied_for(GONE))]}, [(S1, "copy-image")]),
    (
        "CreateImage description without AWS's ' from vol-' (older, and moto's)",
        {"snapshots": [snapshot(S1, f"Created by CreateImage(i-0123456789abcdef0) for {GONE}")]},
        [(S1, "create-image")],
    ),
    ("an old copied snapshot names its source's AMI elsewhere", {"snapshots": [snapshot(S1, OLD_COPY)]}, []),
    (
        "an old copied snapshot the inventory recorded for a gone AMI",
        {"snapshots": [snapshot(S1, OLD_COPY)], "inventory": [record(GONE, snapshot_ids=(S1,))]},
        [(S1, "inventory")],
    ),
    (
        "recorded by the inventory for a deregistered AMI",
        {
            "snapshots": [snapshot(S1, "my backup")],
            "inventory": [record(GONE, snapshot_ids=(S1,), state="deregistered")],
        },
        [(S1, "inventory")],
    ),
    (
        "used by a disabled AMI (DescribeImages IncludeDisabled lists it)",
        {
            "snapshots": [snapshot(S1, created_by(GONE))],
            "images": [image(LIVE, state="disabled", snapshots=[(S1, 8)])],
        },
        [],
    ),
    (
        "used by a deprecated AMI",
        {
            "snapshots": [snapshot(S1, created_by(LIVE))],
            "images": [image(LIVE, snapshots=[(S1, 8)], deprecation_time=NOW)],
        },
        [],
    ),
    (
        "its AMI is gone but another AMI was registered from it",
        {"snapshots": [snapshot(S1, created_by(GONE))], "images": [image(OTHER, snapshots=[(S1, 8)])]},
        [],
    ),
    (
        "its AMI is in the AMI Recycle Bin (a restore needs it)",
        {"snapshots": [snapshot(S1, created_by(GONE))], "recycle_bin_images": [RecycleBinImageRecord(GONE)]},
        [],
    ),
    (
        "the inventory's AMI is in the AMI Recycle Bin",
        {
            "snapshots": [snapshot(S1)],
            "inventory": [record(GONE, snapshot_ids=(S1,))],
            "recycle_bin_images": [RecycleBinImageRecord(GONE)],
        },
        [],
    ),
    ("protected by its tag", {"snapshots": [snapshot(S1, created_by(GONE), tags={PROTECTED: "x"})]}, []),
    (
        "its AMI was protected when the inventory last saw it",
        {"snapshots": [snapshot(S1, created_by(GONE))], "inventory": [record(GONE, protected=True)]},
        [],
    ),
    (
        "already in the snapshot Recycle Bin",
        {"snapshots": [snapshot(S1, created_by(GONE))], "recycle_bin_snapshots": [RecycleBinSnapshotRecord(S1)]},
        [],
    ),
    ("still pending (an AMI is being made)", {"snapshots": [snapshot(S1, created_by(GONE), state="pending")]}, []),
    (
        "its AMI is listed but does not use it",
        {"snapshots": [snapshot(S1, created_by(LIVE))], "images": [image(LIVE, snapshots=[(S2, 8)])]},
        [],
    ),
    (
        "the description and the inventory disagree and one AMI still exists",
        {
            "snapshots": [snapshot(S1, created_by(LIVE))],
            "images": [image(LIVE)],
            "inventory": [record(GONE, snapshot_ids=(S1,))],
        },
        [],
    ),
    ("made for no AMI (a plain backup)", {"snapshots": [snapshot(S1, "nightly backup of vol-0123")]}, []),
    (
        "the inventory names a snapshot that is gone",
        {"inventory": [record(GONE, snapshot_ids=(S1,))]},
        [],
    ),
    (
        "two orphans and a used one, in listing order",
        {
            "snapshots": [snapshot(S2, copied_for(GONE)), snapshot(S1, created_by(GONE)), snapshot(snap(3))],
            "images": [image(LIVE, snapshots=[(snap(3), 8)])],
        },
        [(S2, "copy-image"), (S1, "create-image")],
    ),
]


def build(case: dict[str, Any], errors: dict[str, str] | None = None, inventory_error: str | None = None) -> Any:
    listings = {k: v for k, v in case.items() if k != "inventory"}
    return evidence(
        scan(errors=errors, **listings), inventory=case.get("inventory", ()), inventory_error=inventory_error
    )


@pytest.mark.parametrize(("case", "expected"), [(c, e) for _, c, e in CASES], ids=[name for name, _, _ in CASES])
def test_orphans_are_exactly_the_snapshots_of_gone_amis_that_nothing_needs(
    case: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    assert keys(find_orphaned_snapshots(POLICY, build(case), NOW)) == expected


@pytest.mark.parametrize(
    "listing",
    [Listing.SNAPSHOTS, Listing.IMAGES, Listing.RECYCLE_BIN_IMAGES, Listing.RECYCLE_BIN_SNAPSHOTS],
)
def test_no_orphan_is_claimed_when_a_listing_it_rests_on_failed(listing: str) -> None:
    case = {"snapshots": [snapshot(S1, created_by(GONE))]}
    assert find_orphaned_snapshots(POLICY, build(case, errors={listing: FAILED}), NOW) == []


def test_no_orphan_is_claimed_when_the_inventory_could_not_be_read() -> None:
    case = {"snapshots": [snapshot(S1, created_by(GONE))]}
    assert find_orphaned_snapshots(POLICY, build(case, inventory_error=FAILED), NOW) == []


def test_an_orphan_carries_its_size_cost_age_owner_tags_and_fix() -> None:
    tags = {"Owner": "team-a", "Name": "web root", "Other": "x"}
    case = {"snapshots": [snapshot(S1, created_by(GONE), size=20, started=45.5, tags=tags)]}
    assert find_orphaned_snapshots(POLICY, build(case), NOW) == [
        Finding(
            kind=FindingKind.ORPHANED_SNAPSHOT,
            account_id=ACCOUNT,
            region=REGION,
            resource_type=ResourceType.SNAPSHOT,
            resource_id=S1,
            reason=(
                f"made for {GONE} (by CreateImage), which no longer exists (not listed, not in the Recycle Bin); "
                "no AMI uses the snapshot"
            ),
            fix=f"aws ec2 delete-snapshot --region {REGION} --snapshot-id {S1}",
            name="web root",
            detail="create-image",
            owner_tags={"Owner": "team-a"},
            age_days=45,
            size_gib=20,
            monthly_cost=1.0,
            related_ids=(GONE,),
        )
    ]


@pytest.mark.parametrize(
    ("region", "tier", "cost"),
    [(REGION, "standard", 0.5), (TARGET, "standard", 0.55), (REGION, "archive", 0.125)],
)
def test_the_cost_is_the_policy_price_of_the_region_and_tier(region: str, tier: str, cost: float) -> None:
    orphan = snapshot(S1, created_by(GONE), size=10, storage_tier=tier)
    (finding,) = find_orphaned_snapshots(POLICY, evidence(scan(region, snapshots=[orphan])), NOW)
    assert finding.monthly_cost == pytest.approx(cost)


@pytest.mark.parametrize(
    ("description", "expected"),
    [
        (created_by(GONE), (GONE, "create-image")),
        (copied_for(GONE), (GONE, "copy-image")),
        (OLD_COPY, None),
        ("Copied for DestinationAmi nothing", None),
        ("", None),
    ],
)
def test_descriptions_name_the_ami_of_this_region_they_were_made_for(
    description: str, expected: tuple[str, str] | None
) -> None:
    assert made_for(description) == expected
