"""scripts/report_benchmark.py in its --small mode (1 region x 200 AMIs x 600 snapshots): the moto server starts and
is seeded, both runs complete, and every bulk listing costs exactly the minimum number of calls; the per-image
DescribeImageAttribute calls go from one per AMI (empty inventory) to none (populated inventory)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from scripts import report_benchmark

SMALL_MINIMUM = {
    "auto-scaling-groups": 1,
    "fleets": 1,
    "image-block-public-access": 1,
    "images": 1,
    "instance-image-metadata": 1,
    "instances": 1,
    "launch-configurations": 1,
    "launch-template-versions": 1,
    "pinned-launch-template-versions": 2,
    "public-snapshots": 1,
    "recycle-bin-images": 1,
    "recycle-bin-snapshots": 1,
    "snapshot-block-public-access": 1,
    "snapshots": 1,
    "ssm-image-parameters (DescribeParameters)": 1,
    "ssm-image-parameters (GetParameters)": 1,
}


def test_the_small_estate_is_measured(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "figures.json"

    assert report_benchmark.main(["--small", "--output", str(output)]) == 0

    figures = json.loads(output.read_text())
    assert figures["regions"] == ["us-east-1"]
    assert figures["estate_per_region"]["images"] == 200
    assert figures["estate_per_region"]["snapshots_listed"] == 600
    assert figures["inventory_records"] == 200
    empty, populated = figures["runs"]
    for run in (empty, populated):
        assert run["complete"] is True
        assert run["region_errors"] == {}
        assert run["minimum"] == SMALL_MINIMUM
        assert {listing: run["calls"][listing] for listing in SMALL_MINIMUM} == SMALL_MINIMUM
        assert run["bulk_calls"] == run["bulk_minimum"] == 17
        assert run["calls"]["inventory (DynamoDB Scan)"] == 1
        assert run["candidates"] > 0
        assert run["calls"][report_benchmark.PER_CANDIDATE] == run["image_references_minimum"]
        assert run["image_references_minimum"] == math.ceil(run["candidates"] / 10)  # one region
    # Every listed AMI has no record in the empty table: one DescribeImageAttribute each; none once recorded.
    assert empty["images_without_fresh_record"] == 200
    assert empty["calls"][report_benchmark.PER_IMAGE] == 200
    assert populated["images_without_fresh_record"] == 0
    assert report_benchmark.PER_IMAGE not in populated["calls"]
    assert empty["total_calls"] == 17 + 1 + empty["calls"][report_benchmark.PER_CANDIDATE] + 200
    # The inventory holds what the event path records (sharing included): the same findings either way.
    assert populated["findings"] == empty["findings"] > 0
    assert populated["wall_time_under_tracemalloc"] is True
    assert 0 < figures["peak_memory"]["tracemalloc_peak_mib"] < figures["peak_memory"]["ru_maxrss_mib"]
    assert figures["custodian_reference"] == {"calls": 6000, "describe_image_attribute": 5700}

    table = capsys.readouterr().out
    assert "| images | 1 | 1 | 1 |" in table
    assert "| launch-permissions (per image) | 200 / 0 (AMIs without a fresh record) | 200 | 0 |" in table
