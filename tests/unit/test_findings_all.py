"""Every kind over several regions at once: sorted, deterministic, and free of the false positives other tools
report (an AMI deleted while a launch template used it, snapshots of disabled AMIs, copied-AMI orphans missed)."""

from __future__ import annotations

import random

from ami_governance.models.findings import FindingKind, RegionEvidence
from ami_governance.models.scan import (
    InstanceImageMetadataScan,
    InstanceImageRecord,
    InstanceRecord,
    LaunchTemplateVersionRecord,
)
from ami_governance.rules.findings import find_all, reference_candidates
from tests.unit.findings_support import (
    NOW,
    POLICY,
    REGION,
    STRANGER,
    TARGET,
    ami,
    copied_for,
    created_by,
    days_ago,
    evidence,
    image,
    record,
    scan,
    snap,
    snapshot,
)

GONE_WITH_TEMPLATE, DISABLED, COPY_GONE, IDLE, COMMUNITY = ami(1), ami(2), ami(3), ami(4), ami(5)


def estate() -> list[RegionEvidence]:
    east = scan(
        images=[
            image(DISABLED, "db-al2023-1", state="disabled", created=20, launched=1, snapshots=[(snap(2), 8)]),
            image(IDLE, "api-al2023-1", created=100, snapshots=[(snap(4), 16)]),
        ],
        snapshots=[
            snapshot(snap(1), created_by(GONE_WITH_TEMPLATE)),  # its AMI is gone: an orphan
            snapshot(snap(2), created_by(DISABLED)),  # used by the disabled AMI: not an orphan
            snapshot(snap(4), created_by(IDLE), size=16),
        ],
        launch_template_versions=[
            LaunchTemplateVersionRecord("lt-0123456789abcdef0", "web", 1, True, True, GONE_WITH_TEMPLATE)
        ],
        instances=[InstanceRecord("i-0123456789abcdef0", COMMUNITY, "running", days_ago(3))],
    )
    west = scan(TARGET, snapshots=[snapshot(snap(3), copied_for(COPY_GONE), size=30)])
    metadata = InstanceImageMetadataScan(
        (InstanceImageRecord("i-0123456789abcdef0", "running", days_ago(3), COMMUNITY, STRANGER, None, "cheap-image"),)
    )
    return [
        evidence(west),
        evidence(east, checked=[IDLE], instance_images=metadata, inventory=[record(DISABLED, compliance="compliant")]),
    ]


def test_the_estate_gives_exactly_the_expected_findings_in_order() -> None:
    found = find_all(POLICY, estate(), NOW)
    assert [(f.kind, f.region, f.resource_id, f.detail) for f in found] == [
        (FindingKind.ORPHANED_SNAPSHOT, TARGET, snap(3), "copy-image"),  # the copied-AMI orphan
        (FindingKind.ORPHANED_SNAPSHOT, REGION, snap(1), "create-image"),
        (FindingKind.UNTRUSTED_SOURCE, REGION, "i-0123456789abcdef0", "instance"),
        (FindingKind.UNUSED, REGION, IDLE, ""),
    ]
    # the AMI deleted while a launch template used it is not "unused" (it is gone) and its template is no finding
    assert all(f.resource_id not in {GONE_WITH_TEMPLATE, "lt-0123456789abcdef0"} for f in found)


def test_the_order_does_not_depend_on_the_order_of_the_evidence() -> None:
    evidences = estate()
    first = find_all(POLICY, evidences, NOW)
    random.Random(7).shuffle(evidences)
    assert find_all(POLICY, list(reversed(evidences)), NOW) == first


def test_only_the_amis_the_bulk_listings_cannot_settle_are_candidates() -> None:
    east = estate()[1]
    assert reference_candidates(POLICY, east.scan, east.inventory, NOW) == (IDLE,)


def test_a_large_region_is_indexed_once() -> None:
    """2,000 AMIs x 3 snapshots each, 6,000 snapshots: every AMI used, every snapshot owned, nothing found but the
    stale ones, all in use (a scan of one listing per item of another would make this test take minutes)."""
    images = [
        image(
            ami(n),
            f"app{chr(97 + n % 26)}-al2023-{n}",
            created=10 + n / 1000,
            launched=1,
            snapshots=[(snap(3 * n + k), 8) for k in range(3)],
        )
        for n in range(2000)
    ]
    snapshots = [snapshot(snap(3 * n + k), created_by(ami(n))) for n in range(2000) for k in range(3)]
    instances = [InstanceRecord(f"i-{n:017x}", ami(n), "running") for n in range(2000)]
    region = evidence(scan(images=images, snapshots=snapshots, instances=instances))
    assert find_all(POLICY, [region], NOW) == []
