"""Replication drift across regions: approved sources without their replicas, replicas without their source."""

from __future__ import annotations

from typing import Any

import pytest

from ami_governance.models.findings import RegionEvidence
from ami_governance.models.scan import Listing, RecycleBinImageRecord
from ami_governance.rules.findings import RegionIndex, find_drift
from tests.unit.findings_support import (
    FAILED,
    NOW,
    OTHER_REGION,
    POLICY,
    REGION,
    TARGET,
    ami,
    evidence,
    image,
    judged,
    record,
    scan,
)

SOURCE, REPLICA, OTHER_REPLICA = ami(1), ami(2), ami(3)
AVAILABLE_BOTH = {
    TARGET: {"state": "available", "image_id": REPLICA},
    OTHER_REGION: {"state": "available", "image_id": OTHER_REPLICA},
}


def drift(evidences: list[RegionEvidence]) -> list[tuple[str, str, str, bool]]:
    found = find_drift(POLICY, [RegionIndex.of(e) for e in evidences], NOW)
    return [(f.region, f.resource_id, f.detail, f.actionable) for f in found]


def source_region(
    replicas: dict[str, Any], targets: tuple[str, ...] = (TARGET, OTHER_REGION), **image_fields: Any
) -> RegionEvidence:
    approved = record(SOURCE, approval_status="approved", replication_targets=targets, replicas=replicas)
    return evidence(scan(images=[image(SOURCE, **image_fields)]), inventory=[approved])


def target_region(region: str, *images: str, errors: dict[str, str] | None = None) -> RegionEvidence:
    return evidence(scan(region, images=[image(i) for i in images], errors=errors))


SOURCES: list[tuple[str, dict[str, Any], list[RegionEvidence], list[tuple[str, str, str, bool]]]] = [
    (
        "every replica there",
        AVAILABLE_BOTH,
        [target_region(TARGET, REPLICA), target_region(OTHER_REGION, OTHER_REPLICA)],
        [],
    ),
    (
        "no replica in a target region",
        {TARGET: AVAILABLE_BOTH[TARGET]},
        [target_region(TARGET, REPLICA), target_region(OTHER_REGION)],
        [(REGION, SOURCE, "missing-replica", True)],
    ),
    (
        "failed copy",
        {**AVAILABLE_BOTH, OTHER_REGION: {"state": "failed", "error": "KMS key disabled"}},
        [target_region(TARGET, REPLICA), target_region(OTHER_REGION)],
        [(REGION, SOURCE, "failed-replica", True)],
    ),
    (
        "deregistered replica",
        {**AVAILABLE_BOTH, OTHER_REGION: {"state": "deregistered", "image_id": OTHER_REPLICA}},
        [target_region(TARGET, REPLICA), target_region(OTHER_REGION)],
        [(REGION, SOURCE, "deregistered-replica", True)],
    ),
    (
        "available per the inventory but not listed there",
        AVAILABLE_BOTH,
        [target_region(TARGET, REPLICA), target_region(OTHER_REGION)],
        [(REGION, SOURCE, "replica-gone", True)],
    ),
    ("the target region was not scanned", AVAILABLE_BOTH, [target_region(TARGET, REPLICA)], []),
    (
        "the target region's images listing failed",
        AVAILABLE_BOTH,
        [target_region(TARGET, REPLICA), target_region(OTHER_REGION, errors={Listing.IMAGES: FAILED})],
        [],
    ),
    (
        "copies under way or withdrawn",
        {TARGET: {"state": "copying"}, OTHER_REGION: {"state": "withdrawn"}},
        [target_region(TARGET), target_region(OTHER_REGION)],
        [],
    ),
    (
        "a failed copy in a region whose scan is incomplete: said, not actionable",
        {**AVAILABLE_BOTH, OTHER_REGION: {"state": "failed"}},
        [target_region(TARGET, REPLICA), target_region(OTHER_REGION, errors={Listing.INSTANCES: FAILED})],
        [(REGION, SOURCE, "failed-replica", False)],
    ),
    (
        "a failed copy to a region not scanned: not actionable",
        {**AVAILABLE_BOTH, OTHER_REGION: {"state": "failed"}},
        [target_region(TARGET, REPLICA)],
        [(REGION, SOURCE, "failed-replica", False)],
    ),
]


@pytest.mark.parametrize(("replicas", "others", "expected"), [c[1:] for c in SOURCES], ids=[c[0] for c in SOURCES])
def test_approved_sources_without_their_replicas(
    replicas: dict[str, Any], others: list[RegionEvidence], expected: list[tuple[str, str, str, bool]]
) -> None:
    assert drift([source_region(replicas), *others]) == expected


def test_a_region_added_to_the_policy_since_the_approval() -> None:
    others = [target_region(TARGET, REPLICA), target_region(OTHER_REGION)]
    assert drift([source_region({TARGET: AVAILABLE_BOTH[TARGET]}, targets=(TARGET,)), *others]) == [
        (REGION, SOURCE, "region-added", True)
    ]


def test_the_amis_regions_tag_narrows_the_targets() -> None:
    narrowed = judged(SOURCE, **{POLICY.replication_regions_tag_key: TARGET})
    others = [target_region(TARGET, REPLICA), target_region(OTHER_REGION)]
    assert drift([source_region({TARGET: AVAILABLE_BOTH[TARGET]}, tags=narrowed), *others]) == []


def test_a_source_no_longer_listed_has_no_drift_of_its_own() -> None:
    approved = record(SOURCE, approval_status="approved", replication_targets=(TARGET,))
    assert drift([evidence(scan(), inventory=[approved]), target_region(TARGET)]) == []


def replica_region(*errors: str) -> RegionEvidence:
    replica = record(REPLICA, TARGET, replica_of=f"{REGION}/{SOURCE}")
    return evidence(scan(TARGET, images=[image(REPLICA)], errors=dict.fromkeys(errors, FAILED)), inventory=[replica])


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (evidence(scan(images=[image(SOURCE)])), []),
        (evidence(scan()), [(TARGET, REPLICA, "source-gone", True)]),
        (evidence(scan(recycle_bin_images=[RecycleBinImageRecord(SOURCE)])), [(TARGET, REPLICA, "source-gone", True)]),
        (evidence(scan(errors={Listing.IMAGES: FAILED})), []),
        (evidence(scan(errors={Listing.FLEETS: FAILED})), [(TARGET, REPLICA, "source-gone", False)]),
        (None, []),
    ],
    ids=["source-listed", "source-gone", "source-in-bin", "source-unlisted", "source-incomplete", "source-not-scanned"],
)
def test_replicas_whose_source_is_gone(
    source: RegionEvidence | None, expected: list[tuple[str, str, str, bool]]
) -> None:
    assert drift([replica_region(), *([source] if source else [])]) == expected


def test_drift_says_what_is_missing_and_how_to_copy_it() -> None:
    others = [target_region(TARGET, REPLICA), target_region(OTHER_REGION)]
    (finding,) = find_drift(
        POLICY, [RegionIndex.of(e) for e in [source_region({TARGET: AVAILABLE_BOTH[TARGET]}), *others]], NOW
    )
    assert (finding.reason, finding.fix) == (
        f"approved, but no replica in {OTHER_REGION}",
        f"approve it again (its approval tag) to copy only what is missing, or: aws ec2 copy-image --region "
        f"{OTHER_REGION} --source-region {REGION} --source-image-id {SOURCE} --name <name> --copy-image-tags",
    )


def test_a_region_whose_scan_failed_as_a_whole_hides_nothing_as_gone() -> None:
    """The report service names a scan that raised `scan`: its empty listings are missing, not empty."""
    broken = target_region(OTHER_REGION, errors={"scan": "EndpointConnectionError: could not connect"})
    assert drift([source_region(AVAILABLE_BOTH), target_region(TARGET, REPLICA), broken]) == []
    assert drift([replica_region(), evidence(scan(errors={"scan": "ClientError: AuthFailure"}))]) == []
