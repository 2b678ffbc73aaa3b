"""Overdue: AMIs past their deregister-after deadline, and clean-ups left deferred or dry-run."""

from __future__ import annotations

from typing import Any

import pytest

from ami_governance.models.scan import ImageRecord, InstanceRecord, Listing, RecycleBinImageRecord
from ami_governance.rules.findings import find_overdue
from tests.unit.findings_support import (
    FAILED,
    NOW,
    POLICY,
    PROTECTED,
    REMEDIATION,
    ami,
    evidence,
    image,
    judged,
    keys,
    record,
    scan,
    snap,
    snapshot,
)

A = ami(1)
PAST, FUTURE = "deregister-after 2026-11-30T12:00:00Z", "deregister-after 2026-12-08T12:00:00Z"


def bad(tags: dict[str, str] | None = None, **fields: Any) -> ImageRecord:
    """An AMI that is still non-compliant (its name breaks the convention)."""
    return image(A, "Bad Name", tags=judged(A, "non-compliant", **(tags or {})), **fields)


DEADLINES: list[tuple[str, ImageRecord, list[tuple[str, str]]]] = [
    ("past its deadline", bad({REMEDIATION: PAST}), [(A, "deregister-overdue")]),
    ("before its deadline", bad({REMEDIATION: FUTURE}), []),
    ("compliant under today's policy", image(A, tags=judged(A, "non-compliant", **{REMEDIATION: PAST})), []),
    (
        "a copy carries its source's deadline, not its own",
        image(A, "Bad Name", tags={**judged(ami(9), "non-compliant"), REMEDIATION: PAST}),
        [],
    ),
    ("another remediation", bad({REMEDIATION: "disabled"}), []),
    ("a deadline that is not a time", bad({REMEDIATION: "deregister-after soon"}), []),
]


@pytest.mark.parametrize(("listed", "expected"), [c[1:] for c in DEADLINES], ids=[c[0] for c in DEADLINES])
def test_amis_past_their_deadline_and_still_non_compliant(listed: ImageRecord, expected: list[tuple[str, str]]) -> None:
    assert keys(find_overdue(POLICY, evidence(scan(images=[listed]), checked=[A]), NOW)) == expected


@pytest.mark.parametrize(
    ("listings", "extra", "actionable", "tail"),
    [
        ({}, {"checked": [A]}, True, ""),
        (
            {"instances": [InstanceRecord("i-0123456789abcdef0", A, "stopped")]},
            {},
            True,
            "; in use by instance i-0123456789abcdef0 (stopped)",
        ),
        ({}, {}, False, "; whether anything uses it is not known"),
        ({}, {"checked": [A], "unchecked": [A]}, False, "; whether anything uses it is not known"),
        ({"errors": {Listing.INSTANCES: FAILED}}, {"checked": [A]}, False, ""),
    ],
    ids=["unused", "in-use", "not-checked", "check-failed", "instances-unlisted"],
)
def test_an_overdue_ami_is_actionable_only_when_its_uses_are_known(
    listings: dict[str, Any], extra: dict[str, Any], actionable: bool, tail: str
) -> None:
    (finding,) = find_overdue(POLICY, evidence(scan(images=[bad({REMEDIATION: PAST})], **listings), **extra), NOW)
    assert finding.actionable is actionable
    assert finding.reason.startswith(
        "past its deregistration deadline 2026-11-30T12:00:00Z and still non-compliant: name"
    )
    assert finding.reason.endswith(tail)


def test_a_protected_overdue_ami_says_the_sweep_leaves_it() -> None:
    (finding,) = find_overdue(
        POLICY, evidence(scan(images=[bad({REMEDIATION: PAST, PROTECTED: ""})]), checked=[A]), NOW
    )
    assert finding.reason.endswith(f"; protected by {PROTECTED}: the sweep leaves it")


CLEANUPS: list[tuple[str, dict[str, Any], list[tuple[str, str]]]] = [
    ("deferred", {"inventory": [record(A, cleanup_status="deferred")]}, [(A, "cleanup-deferred")]),
    ("dry-run", {"inventory": [record(A, cleanup_status="dry-run")]}, [(A, "cleanup-dry-run")]),
    ("done", {"inventory": [record(A, cleanup_status="done")]}, []),
    ("failed (the clean-up's own retries)", {"inventory": [record(A, cleanup_status="failed")]}, []),
    ("the AMI is listed again", {"inventory": [record(A, cleanup_status="deferred")], "images": [image(A)]}, []),
    (
        "the AMI is in the Recycle Bin",
        {"inventory": [record(A, cleanup_status="deferred")], "recycle_bin_images": [RecycleBinImageRecord(A)]},
        [],
    ),
]


@pytest.mark.parametrize(("case", "expected"), [c[1:] for c in CLEANUPS], ids=[c[0] for c in CLEANUPS])
def test_cleanups_left_deferred_or_in_dry_run(case: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    listings = {k: v for k, v in case.items() if k != "inventory"}
    assert keys(find_overdue(POLICY, evidence(scan(**listings), inventory=case["inventory"]), NOW)) == expected


@pytest.mark.parametrize(
    ("errors", "inventory_error"),
    [({Listing.IMAGES: FAILED}, None), ({Listing.RECYCLE_BIN_IMAGES: FAILED}, None), ({}, FAILED)],
)
def test_no_cleanup_is_claimed_when_its_ami_might_be_back(errors: dict[str, str], inventory_error: str | None) -> None:
    region_evidence = evidence(
        scan(errors=errors), inventory=[record(A, cleanup_status="deferred")], inventory_error=inventory_error
    )
    assert find_overdue(POLICY, region_evidence, NOW) == []


def test_a_cleanup_finding_counts_the_snapshots_still_there() -> None:
    left = record(
        A,
        name="web-al2023-1",
        cleanup_status="deferred",
        snapshot_ids=(snap(1), snap(2)),
        cleanup_snapshots={snap(3): {"outcome": "kept: too young"}},
    )
    region_scan = scan(snapshots=[snapshot(snap(1), size=10), snapshot(snap(3), size=30, storage_tier="archive")])
    (finding,) = find_overdue(POLICY, evidence(region_scan, inventory=[left]), NOW)
    assert (finding.name, finding.size_gib, finding.monthly_cost, finding.related_ids, finding.reason) == (
        "web-al2023-1",
        40,
        0.875,  # 10 GiB standard at 0.05 + 30 GiB archive at 0.0125
        (snap(1), snap(3)),
        f"the clean-up of deregistered {A} was deferred: left {snap(1)}, {snap(3)}",
    )
