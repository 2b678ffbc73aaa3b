"""The whole report over a seeded estate on moto (tests/integration/report_estate.py): exactly the expected
findings, none of the other tools' false positives, and a second run that trusts the inventory for sharing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from moto import mock_aws

from ami_governance.adapters.clients import reset_clients
from ami_governance.adapters.inventory import Inventory
from ami_governance.adapters.launch_permissions import LaunchPermissionReader
from ami_governance.adapters.scan import RegionScanner
from ami_governance.models.findings import FindingKind, Report
from ami_governance.models.policy import load_policy_file
from ami_governance.services.report import ReportService
from tests.conftest import POLICY_FILE
from tests.integration.report_estate import HOME, OTHER, SeededEstate, seed
from tests.support import INVENTORY_TABLE, MOTO_ACCOUNT, create_home_resources

POLICY = load_policy_file(POLICY_FILE)


@pytest.fixture
def estate() -> Iterator[SeededEstate]:
    with mock_aws():
        reset_clients()
        create_home_resources(POLICY.model_dump_json())
        yield seed(POLICY, datetime.now(UTC))
        reset_clients()


def report(estate: SeededEstate) -> Report:
    return ReportService(
        policy=POLICY,
        account_id=MOTO_ACCOUNT,
        scanner_for=lambda region: RegionScanner(MOTO_ACCOUNT, region),
        permissions_for=LaunchPermissionReader,
        inventory=Inventory(INVENTORY_TABLE, HOME),
        now=lambda: estate.now,
    ).run([HOME, OTHER])


def test_the_seeded_estate_gives_exactly_its_findings(estate: SeededEstate) -> None:
    result = report(estate)

    assert result.complete, result.regions
    assert {(f.kind, f.region, f.resource_id) for f in result.findings} == estate.expected


def test_none_of_the_false_positives_other_tools_make(estate: SeededEstate) -> None:
    found = {(f.kind, f.resource_id) for f in report(estate).findings}

    # Snapshots of a disabled AMI, of an AMI in the Recycle Bin, a protected one and a shared live one: not orphaned.
    for name in ("disabled-al2023-1.0.0", "binned-al2023-1.0.0", "kept-al2023-1.0.0", "shared-al2023-1.0.0"):
        assert (FindingKind.ORPHANED_SNAPSHOT, estate.snapshots[name]) not in found, name
    # AMIs used only by a launch template, an SSM parameter, a launch configuration or a stopped instance.
    for name in ("web-al2023-1.0.1", "ssm-al2023-1.0.0", "lc-al2023-1.0.0", "stopped-al2023-1.0.0"):
        assert (FindingKind.UNUSED, estate.images[name]) not in found, name
        assert (FindingKind.STALE, estate.images[name]) not in found, name
    # The copied AMI's orphan, which description matching on CreateImage alone misses.
    assert (FindingKind.ORPHANED_SNAPSHOT, estate.snapshots["copy:web-al2023-1.0.4"]) in found


def test_a_second_run_reads_launch_permissions_from_the_inventory(estate: SeededEstate) -> None:
    first = report(estate)
    second = report(estate)

    home_first, home_second = (next(s for s in r.regions if s.region == HOME) for r in (first, second))
    assert home_first.verified_by == {"describe": home_first.images}
    assert home_second.verified_by == {"inventory": home_second.images}
    # The first run's per-AMI DescribeImageAttribute calls are gone from the second.
    assert home_first.api_calls - home_second.api_calls >= home_first.images
    assert {(f.kind, f.region, f.resource_id) for f in second.findings} == estate.expected
