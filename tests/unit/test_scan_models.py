"""The scan records are plain data that round-trip through JSON exactly (a scan unit crosses process boundaries)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from ami_governance.models.scan import (
    AutoScalingGroupRecord,
    ImageParameterRecord,
    ImageRecord,
    ImageReference,
    ImageSnapshot,
    InstanceImageMetadataScan,
    InstanceImageRecord,
    InstanceRecord,
    LaunchConfigurationRecord,
    LaunchTemplateRef,
    LaunchTemplateVersionRecord,
    Listing,
    RecycleBinImageRecord,
    RecycleBinSnapshotRecord,
    ReferenceCheck,
    RegionScan,
    SnapshotRecord,
)

WHEN = datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)


def full_scan() -> RegionScan:
    return RegionScan(
        account_id="111122223333",
        region="eu-west-1",
        scanned_at=WHEN,
        images=(
            ImageRecord(
                image_id="ami-1",
                name="app-1",
                owner_id="111122223333",
                state="disabled",
                creation_date=WHEN - timedelta(days=400),
                description="d",
                tags={"Owner": "team", "": ""},
                snapshots=(ImageSnapshot("snap-1", 8), ImageSnapshot("snap-2")),
                public=True,
                last_launched_time=WHEN,
                source_image_id="ami-0",
                source_image_region="us-east-1",
                deprecation_time=WHEN + timedelta(days=1),
            ),
            ImageRecord(image_id="ami-2", name="", owner_id="111122223333", state="available"),
        ),
        snapshots=(
            SnapshotRecord("snap-1", "111122223333", "completed", 8, WHEN, "x", {"a": "b"}, "archive", True, "vol-1"),
        ),
        instances=(InstanceRecord("i-1", "ami-1", "stopped", WHEN),),
        launch_template_versions=(LaunchTemplateVersionRecord("lt-1", "web", 3, True, False, "ami-1"),),
        auto_scaling_groups=(
            AutoScalingGroupRecord(
                "asg", None, (LaunchTemplateRef("lt-1", "web", "3"), LaunchTemplateRef(None, "b", "$Default"))
            ),
        ),
        launch_configurations=(LaunchConfigurationRecord("lc", "ami-2"),),
        image_parameters=(ImageParameterRecord("/golden/web", "ami-1"),),
        recycle_bin_images=(RecycleBinImageRecord("ami-9", "old", "", WHEN, WHEN + timedelta(days=7)),),
        recycle_bin_snapshots=(RecycleBinSnapshotRecord("snap-9", "d", "vol-9", WHEN, None),),
        image_block_public_access="block-new-sharing",
        snapshot_block_public_access=None,
        listing_errors={Listing.SNAPSHOT_BLOCK_PUBLIC_ACCESS.value: "AccessDenied: no"},
    )


def test_a_region_scan_round_trips_through_json_exactly() -> None:
    scan = full_scan()
    text = scan.to_json()
    again = RegionScan.from_json(text)
    assert again == scan
    assert again.to_json() == text
    assert isinstance(again.images[0].snapshots, tuple)
    assert again.scanned_at.tzinfo is not None
    assert not again.complete
    json.loads(text)  # plain JSON


def test_timestamps_are_written_in_utc_and_read_back_as_the_same_instant() -> None:
    paris = timezone(timedelta(hours=1))
    scan = RegionScan("1", "r", datetime(2026, 1, 1, 12, tzinfo=paris))
    assert json.loads(scan.to_json())["scanned_at"] == "2026-01-01T11:00:00+00:00"
    assert RegionScan.from_json(scan.to_json()).scanned_at == scan.scanned_at


def test_a_naive_timestamp_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        RegionScan("1", "r", datetime(2026, 1, 1)).to_json()


def test_an_empty_scan_is_complete() -> None:
    assert RegionScan("1", "r", WHEN).complete


def test_the_per_candidate_results_round_trip_too() -> None:
    check = ReferenceCheck(
        checked=("ami-1", "ami-2"),
        references=(ImageReference("ami-1", "ec2:LaunchTemplate", "arn:aws:ec2:r:1:launch-template/lt-1"),),
        unchecked=("ami-3",),
        listing_errors={"image-references": "Throttling: slow down"},
    )
    assert ReferenceCheck.from_json(check.to_json()) == check
    assert check.referenced("ami-1")
    assert not check.referenced("ami-2")
    metadata = InstanceImageMetadataScan(
        (InstanceImageRecord("i-1", "running", WHEN, "ami-1", "123", None, "n", None),)
    )
    assert InstanceImageMetadataScan.from_json(metadata.to_json()) == metadata
    assert metadata.complete
