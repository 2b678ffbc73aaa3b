"""Non-compliant and never-judged AMIs: judged again with enforcement's rules against the current policy."""

from __future__ import annotations

from typing import Any

import pytest

from ami_governance.models.findings import Finding, FindingKind, ResourceType
from ami_governance.models.scan import ImageRecord, Listing
from ami_governance.rules.findings import find_non_compliant
from tests.unit.findings_support import (
    ACCOUNT,
    COMPLIANCE,
    FAILED,
    IMAGE_ID_TAG,
    NOW,
    POLICY,
    REGION,
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

CASES: list[tuple[str, ImageRecord, dict[str, Any], list[tuple[str, str]]]] = [
    ("compliant then and now", image(A), {}, []),
    (
        "recorded compliant, non-compliant under today's policy",
        image(A, tags={COMPLIANCE: "compliant", IMAGE_ID_TAG: A}),
        {},
        [(A, "verdict-changed")],
    ),
    (
        "recorded non-compliant and still",
        image(A, name="Bad Name", tags=judged(A, "non-compliant")),
        {},
        [(A, "violations")],
    ),
    ("never judged, compliant now", image(A, tags={"CostCenter": "CC-1234"}), {}, [(A, "never-judged")]),
    ("never judged and non-compliant now", image(A, name="x", tags={}), {}, [(A, "never-judged")]),
    (
        "no tag, but the inventory holds a verdict",
        image(A, tags={"CostCenter": "CC-1234"}),
        {"inventory": [record(A, compliance="compliant")]},
        [],
    ),
    (
        "a copy carrying its source's verdict was never judged itself",
        image(A, tags={**judged(ami(9)), "CostCenter": "CC-1234"}),
        {},
        [(A, "never-judged")],
    ),
    ("exempt by tag", image(A, tags=judged(A, "exempt", Exempt="yes") | {"CostCenter": "bad"}), {}, []),
    ("pending: still being made", image(A, state="pending", tags={}), {}, []),
    (
        "disabled and non-compliant",
        image(A, state="disabled", name="x", tags=judged(A, "non-compliant")),
        {},
        [(A, "violations")],
    ),
    (
        "never-judged is not claimed when the inventory could not be read",
        image(A, tags={"CostCenter": "CC-1234"}),
        {"inventory_error": FAILED},
        [],
    ),
    (
        "a non-compliant one still is",
        image(A, name="x", tags={}),
        {"inventory_error": FAILED},
        [(A, "violations")],
    ),
]


@pytest.mark.parametrize(("listed", "extra", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_non_compliant_and_never_judged(
    listed: ImageRecord, extra: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    assert keys(find_non_compliant(POLICY, evidence(scan(images=[listed]), **extra), NOW)) == expected


def test_the_violations_are_the_reason_and_their_fixes_the_fix() -> None:
    listed = image(
        A,
        name="Web Server",
        created=10.2,
        tags={COMPLIANCE: "compliant", IMAGE_ID_TAG: A, "Owner": "team-a"},
        snapshots=[(snap(1), 8), (snap(2), 30)],
    )
    region_scan = scan(images=[listed], snapshots=[snapshot(snap(1), size=8)])
    assert find_non_compliant(POLICY, evidence(region_scan), NOW) == [
        Finding(
            kind=FindingKind.NON_COMPLIANT,
            account_id=ACCOUNT,
            region=REGION,
            resource_type=ResourceType.IMAGE,
            resource_id=A,
            reason=(
                f"name 'Web Server' does not match {POLICY.naming.pattern if POLICY.naming else ''}; tag CostCenter is"
                " missing (recorded as compliant: the policy changed since it was judged)"
            ),
            fix=(
                "create the AMI again with a name (AMI names cannot be changed); "
                r"add tag CostCenter (matching ^CC-\d{4}$)"
            ),
            name="Web Server",
            detail="verdict-changed",
            owner_tags={"Owner": "team-a"},
            age_days=10,
            size_gib=38,  # 8 listed + 30 as the AMI declares the snapshot that is not listed
            monthly_cost=1.9,
            related_ids=(snap(1), snap(2)),
        )
    ]


def test_a_never_judged_ami_says_what_it_would_be_judged_now() -> None:
    (finding,) = find_non_compliant(POLICY, evidence(scan(images=[image(A, name="x", tags={})])), NOW)
    assert finding.reason == (
        f"never judged (no {COMPLIANCE} tag, no verdict in the inventory); judged now: non-compliant: name 'x' does "
        f"not match {POLICY.naming.pattern if POLICY.naming else ''}; tag CostCenter is missing"
    )


def test_nothing_is_judged_when_the_images_listing_failed() -> None:
    region_scan = scan(images=[image(A, name="x", tags={})], errors={Listing.IMAGES: FAILED})
    assert find_non_compliant(POLICY, evidence(region_scan), NOW) == []


@pytest.mark.parametrize(
    ("listed", "kind"),
    [
        (image(A, tags={"CostCenter": "CC-1234"}), FindingKind.UNJUDGED),
        (image(A, name="x", tags={}), FindingKind.NON_COMPLIANT),
    ],
    ids=["compliant now: unjudged, not non-compliant", "non-compliant now: non-compliant"],
)
def test_a_never_judged_ami_counts_as_non_compliant_only_when_it_is(listed: ImageRecord, kind: FindingKind) -> None:
    [finding] = find_non_compliant(POLICY, evidence(scan(images=[listed])), NOW)
    assert (finding.kind, finding.detail) == (kind, "never-judged")
