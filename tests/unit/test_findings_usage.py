"""Unused and stale AMIs, and the candidates DescribeImageReferences is asked about."""

from __future__ import annotations

from typing import Any

import pytest

from ami_governance.models.scan import (
    FleetRecord,
    ImageParameterRecord,
    ImageRecord,
    InstanceRecord,
    LaunchConfigurationRecord,
    LaunchTemplateVersionRecord,
    Listing,
)
from ami_governance.rules.findings import find_stale, find_unused, reference_candidates
from tests.unit.findings_support import (
    APPROVED,
    FAILED,
    NOW,
    POLICY,
    PROTECTED,
    REMEDIATION,
    ami,
    evidence,
    image,
    judged,
    record,
    scan,
)

A, B, C, D = ami(1), ami(2), ami(3), ami(4)
IDLE = image(A, created=200, launched=100)
OVERDUE = "deregister-after 2026-11-30T00:00:00Z"

UNUSED: list[tuple[str, dict[str, Any], dict[str, Any], list[str]]] = [
    ("nothing references it, last launched 100 days ago", {}, {"checked": [A]}, [A]),
    (
        "used only by a stopped instance",
        {"instances": [InstanceRecord("i-0123456789abcdef0", A, "stopped")]},
        {"checked": [A]},
        [],
    ),
    (
        "used only by a launch template version",
        {"launch_template_versions": [LaunchTemplateVersionRecord("lt-0123456789abcdef0", "web", 3, False, False, A)]},
        {"checked": [A]},
        [],
    ),
    (
        "used only by an SSM parameter",
        {"image_parameters": [ImageParameterRecord("/golden/web", A)]},
        {"checked": [A]},
        [],
    ),
    (
        "used only by a launch configuration",
        {"launch_configurations": [LaunchConfigurationRecord("web-lc", A)]},
        {"checked": [A]},
        [],
    ),
    (
        "named by an instant fleet's override",
        {"fleets": [FleetRecord("fleet-1", "instant", "active", image_ids=(A,))]},
        {"checked": [A]},
        [],
    ),
    (
        "referenced by an Image Builder recipe (DescribeImageReferences)",
        {},
        {"checked": [A], "references": {A: "arn:aws:imagebuilder:us-east-1:111122223333:image-recipe/web/1.0.0"}},
        [],
    ),
    ("its reference check failed", {}, {"checked": [A], "unchecked": [A]}, []),
    ("its references were not checked", {}, {}, []),
]


@pytest.mark.parametrize(("listings", "extra", "expected"), [c[1:] for c in UNUSED], ids=[c[0] for c in UNUSED])
def test_unused_is_referenced_by_nothing_and_idle(
    listings: dict[str, Any], extra: dict[str, Any], expected: list[str]
) -> None:
    found = find_unused(POLICY, evidence(scan(images=[IDLE], **listings), **extra), NOW)
    assert [f.resource_id for f in found] == expected


@pytest.mark.parametrize(
    ("listed", "expected"),
    [
        (image(A, created=200, launched=20), []),
        (image(A, created=200, launched=30.5), []),  # beyond 30 days, within AWS's 24-hour reporting lag
        (image(A, created=200, launched=31.5), [A]),
        (image(A, created=100, launched=None), [A]),  # never launched: counted from its creation
        (image(A, created=10, launched=None), []),
        (image(A, created=None, launched=None), []),
        (image(A, state="disabled", created=100), [A]),
        (image(A, state="pending", created=100), []),
    ],
    ids=[
        "launched-20d",
        "launched-30.5d",
        "launched-31.5d",
        "never-old",
        "never-new",
        "no-dates",
        "disabled",
        "pending",
    ],
)
def test_unused_means_not_launched_for_the_policys_days(listed: ImageRecord, expected: list[str]) -> None:
    assert [f.resource_id for f in find_unused(POLICY, evidence(scan(images=[listed]), checked=[A]), NOW)] == expected


@pytest.mark.parametrize(
    "listing",
    [
        Listing.IMAGES,
        Listing.INSTANCES,
        Listing.LAUNCH_TEMPLATE_VERSIONS,
        Listing.PINNED_LAUNCH_TEMPLATE_VERSIONS,
        Listing.AUTO_SCALING_GROUPS,
        Listing.LAUNCH_CONFIGURATIONS,
        Listing.FLEETS,
        Listing.SSM_IMAGE_PARAMETERS,
    ],
)
def test_nothing_is_unused_when_a_listing_of_uses_failed(listing: str) -> None:
    region_scan = scan(images=[IDLE], errors={listing: FAILED})
    assert find_unused(POLICY, evidence(region_scan, checked=[A]), NOW) == []
    assert reference_candidates(POLICY, region_scan, (), NOW) == ()


def test_an_unused_finding_says_why_and_how_to_fix_it() -> None:
    (finding,) = find_unused(POLICY, evidence(scan(images=[IDLE]), checked=[A]), NOW)
    assert finding.reason == (
        "referenced by no instance, launch template, launch configuration, fleet, SSM parameter or other resource "
        "(DescribeImageReferences); last launched 2026-08-23 (100 days ago), beyond report.unused_days=30"
    )
    assert finding.fix == (
        f"aws ec2 deregister-image --region us-east-1 --image-id {A} --delete-associated-snapshots "
        f"(or keep it restorable: aws ec2 disable-image --region us-east-1 --image-id {A})"
    )


# ---- stale: keep_newest 2 per application/os family, max age 365 days ------------------------------------------


def family(*ages: float, name: str = "web-al2023-{}", **tags_by_index: dict[str, str]) -> list[ImageRecord]:
    return [
        image(ami(n), name.format(n), created=age, tags=judged(ami(n), **tags_by_index.get(f"i{n}", {})))
        for n, age in enumerate(ages, start=1)
    ]


STALE: list[tuple[str, list[ImageRecord], dict[str, Any], list[str]]] = [
    ("the third newest of a family", family(30, 20, 10), {}, [A]),
    ("within keep_newest", family(20, 10), {}, []),
    ("the newest approved is kept", family(30, 20, 10, i1={APPROVED: "true"}), {}, []),
    ("an older approved one is not", family(40, 30, 20, 10, i1={APPROVED: "true"}, i2={APPROVED: "true"}), {}, [A]),
    (
        "approved per the inventory",
        family(30, 20, 10),
        {"inventory": [record(A, approval_status="approved")]},
        [],
    ),
    ("protected by its tag", family(30, 20, 10, i1={PROTECTED: ""}), {}, []),
    ("protected per the inventory", family(30, 20, 10), {"inventory": [record(A, protected=True)]}, []),
    (
        "two families rank apart",
        [*family(30, 20), image(C, "db-al2023-3", created=25), image(D, "web-ubuntu24-4", created=5)],
        {},
        [],
    ),
    ("older than max_age_days", family(400), {}, [A]),
    ("no family: only max_age applies", [image(A, "Legacy", created=400), image(B, "Legacy2", created=30)], {}, [A]),
    (
        "no family and approved: never stale",
        [image(A, "Legacy", created=400, tags=judged(A, **{APPROVED: "true"}))],
        {},
        [],
    ),
    (
        "a disabled one counts in its family",
        [image(A, "web-al2023-1", state="disabled", created=30), *family(30, 20, 10)[1:]],
        {},
        [A],
    ),
]


@pytest.mark.parametrize(("listed", "extra", "expected"), [c[1:] for c in STALE], ids=[c[0] for c in STALE])
def test_stale_is_beyond_retention_but_never_the_newest_approved_or_protected(
    listed: list[ImageRecord], extra: dict[str, Any], expected: list[str]
) -> None:
    everything = [i.image_id for i in listed]
    found = find_stale(POLICY, evidence(scan(images=listed), checked=everything, **extra), NOW)
    assert [f.resource_id for f in found] == expected


@pytest.mark.parametrize(
    ("listings", "extra"),
    [
        ({"instances": [InstanceRecord("i-0123456789abcdef0", A, "running")]}, {"checked": []}),
        ({}, {"checked": [A], "references": {A: "arn:aws:ec2:us-east-1:111122223333:launch-template/lt-1"}}),
        ({}, {"checked": [A], "unchecked": [A]}),
        ({}, {"checked": []}),
        ({}, {"checked": [A], "inventory_error": FAILED}),
    ],
    ids=["in-use-bulk", "in-use-confirmed", "check-failed", "not-checked", "inventory-unreadable"],
)
def test_an_ami_in_use_or_not_known_unused_is_never_stale(listings: dict[str, Any], extra: dict[str, Any]) -> None:
    assert find_stale(POLICY, evidence(scan(images=family(30, 20, 10), **listings), **extra), NOW) == []


def test_a_stale_finding_names_the_rule() -> None:
    (finding,) = find_stale(POLICY, evidence(scan(images=family(400, 20, 10)), checked=[A]), NOW)
    assert (finding.resource_id, finding.reason) == (
        A,
        "beyond retention: number 3 of its family web/al2023, which keeps the 2 newest; 400 days old, beyond "
        "retention.max_age_days=365; not approved as its family's newest, not protected, not in use",
    )


# ---- the candidates DescribeImageReferences is asked about --------------------------------------------------------


def test_candidates_are_the_amis_only_describe_image_references_can_settle() -> None:
    listed = [
        image(A, "a-al2023-1", created=200, launched=100),  # unused candidate
        image(B, "b-al2023-1", created=200, launched=1),  # launched yesterday: neither unused nor stale
        image(C, "c-al2023-1", created=200, launched=100),  # used by an instance: the bulk listing settles it
        *[image(ami(n), f"web-al2023-{n}", created=10 + n, launched=1) for n in (5, 6, 7)],  # 7: the third newest
        image(ami(8), "Bad", created=5, launched=1, tags=judged(ami(8), "non-compliant", **{REMEDIATION: OVERDUE})),
    ]
    instances = [InstanceRecord("i-0123456789abcdef0", C, "stopped")]
    candidates = reference_candidates(POLICY, scan(images=listed, instances=instances), (), NOW)
    assert candidates == (A, ami(7), ami(8))


def test_protected_and_approved_amis_are_no_stale_candidates_but_may_be_unused_ones() -> None:
    listed = [
        image(ami(1), "web-al2023-1", created=30, launched=1, tags=judged(ami(1), **{PROTECTED: ""})),
        image(ami(2), "web-al2023-2", created=20, launched=1),
        image(ami(3), "web-al2023-3", created=10, launched=1),
        image(ami(4), "Legacy", created=400, tags=judged(ami(4), **{PROTECTED: ""})),  # unused all the same
    ]
    assert reference_candidates(POLICY, scan(images=listed), (), NOW) == (ami(4),)
