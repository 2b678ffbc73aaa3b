"""The report service on moto: regions scanned concurrently into evidence, failures kept per region, launch
permissions read from EC2 only where the inventory has no fresh record."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from ami_governance.adapters.clients import reset_clients
from ami_governance.adapters.scan import RegionScanner
from ami_governance.models.findings import InventoryRecord, LaunchPermissions, RegionStatus, VerifiedBy
from ami_governance.models.policy import load_policy_file
from ami_governance.services.report import ReportService, UnknownRegion
from emulator import moto_extensions
from tests.conftest import POLICY_FILE
from tests.integration.conftest import ACCOUNT, PUBLIC_AMI

HOME, OTHER = "us-east-1", "eu-west-1"
NOW = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
POLICY = load_policy_file(POLICY_FILE)

moto_extensions.apply()


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        reset_clients()
        yield
        reset_clients()


def new_image(region: str, name: str) -> str:
    ec2 = boto3.client("ec2", region_name=region)
    instance = ec2.run_instances(ImageId=PUBLIC_AMI, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    return str(ec2.create_image(InstanceId=instance, Name=name)["ImageId"])


class Reader:
    """Stands in for DescribeImageAttribute: says which AMIs were asked for."""

    def __init__(self, region: str, asked: dict[str, list[str]]) -> None:
        self.region, self.asked = region, asked

    def read(self, image_ids: Sequence[str]) -> dict[str, LaunchPermissions]:
        self.asked.setdefault(self.region, []).extend(image_ids)
        return {image_id: LaunchPermissions(image_id, VerifiedBy.DESCRIBE, recorded_at=NOW) for image_id in image_ids}


class Records:
    def __init__(self, records: dict[str, list[InventoryRecord]] | None = None, error: bool = False) -> None:
        self._records, self.error = records or {}, error
        self.written: list[tuple[str, str]] = []

    def records(self) -> dict[str, list[InventoryRecord]]:
        if self.error:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "Scan")
        return self._records

    def record_launch_permissions(self, image_id: str, region: str, permissions: LaunchPermissions) -> None:
        self.written.append((image_id, region))


class Progress:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.done: dict[str, RegionStatus] = {}

    def region_started(self, region: str) -> None:
        self.events.append((region, "started"))

    def region_step(self, region: str, step: str) -> None:
        self.events.append((region, step))

    def region_done(self, region: str, status: RegionStatus) -> None:
        self.done[region] = status


def service(inventory: Any, asked: dict[str, list[str]], scanner_for: Any = None) -> ReportService:
    return ReportService(
        policy=POLICY,
        account_id=ACCOUNT,
        scanner_for=scanner_for or (lambda region: RegionScanner(ACCOUNT, region, now=lambda: NOW)),
        permissions_for=lambda region: Reader(region, asked),
        inventory=inventory,
        now=lambda: NOW,
    )


def test_every_region_is_scanned_and_reported_in_the_order_asked(aws: None) -> None:
    home_image, other_image = new_image(HOME, "a-al2023-1.0.0"), new_image(OTHER, "b-al2023-1.0.0")
    asked: dict[str, list[str]] = {}
    progress = Progress()

    report = service(Records(), asked).run([OTHER, HOME], progress=progress, run_id="run-1")

    assert [status.region for status in report.regions] == [OTHER, HOME]
    assert all(status.complete for status in report.regions), report.regions
    assert {status.region: status.images for status in report.regions} == {OTHER: 1, HOME: 1}
    assert asked == {HOME: [home_image], OTHER: [other_image]}
    # Each region's status counts the requests its clients sent (12 listings at least: one page each).
    assert all(status.api_calls >= 12 for status in report.regions), report.regions
    assert progress.done == {status.region: status for status in report.regions}
    assert [step for region, step in progress.events if region == HOME] == [
        "started", "listings", "instance images", "references", "launch permissions"
    ]  # fmt: skip
    assert (report.run_id, report.mode, report.sweep, report.generated_at) == ("run-1", "audit", "off", NOW)


def test_a_region_whose_scan_breaks_is_incomplete_and_the_others_still_stand(aws: None) -> None:
    new_image(HOME, "a-al2023-1.0.0")

    def scanner_for(region: str) -> RegionScanner:
        if region == OTHER:
            raise RuntimeError("no route to eu-west-1")
        return RegionScanner(ACCOUNT, region, now=lambda: NOW)

    report = service(Records(), {}, scanner_for).run([HOME, OTHER])

    statuses = {status.region: status for status in report.regions}
    assert statuses[HOME].complete
    assert not statuses[OTHER].complete
    assert statuses[OTHER].errors == {"scan": "RuntimeError: no route to eu-west-1"}
    assert not report.complete


def test_launch_permissions_are_read_from_ec2_only_where_the_inventory_has_no_fresh_record(aws: None) -> None:
    fresh, stale, unrecorded = (new_image(HOME, f"a-al2023-1.0.{n}") for n in range(3))
    recorded = {
        fresh: NOW - timedelta(days=1),
        stale: NOW - timedelta(days=POLICY.report.full_verification_days),
    }
    records = Records(
        {
            HOME: [
                InventoryRecord(image_id, HOME, launch_permissions=LaunchPermissions(
                    image_id, VerifiedBy.INVENTORY, accounts=("111122223333",), recorded_at=at))
                for image_id, at in recorded.items()
            ]
        }
    )  # fmt: skip
    asked: dict[str, list[str]] = {}

    [evidence] = service(records, asked).evidence([HOME])

    assert sorted(asked[HOME]) == sorted([stale, unrecorded])
    assert {p.image_id: p.verified_by for p in evidence.launch_permissions} == {
        fresh: VerifiedBy.INVENTORY, stale: VerifiedBy.DESCRIBE, unrecorded: VerifiedBy.DESCRIBE
    }  # fmt: skip
    assert sorted(records.written) == sorted([(stale, HOME), (unrecorded, HOME)])
    [status] = service(records, {}).run([HOME]).regions
    assert status.verified_by == {"inventory": 1, "describe": 2}


def test_an_unreadable_inventory_makes_every_region_incomplete(aws: None) -> None:
    report = service(Records(error=True), {}).run([HOME, OTHER])

    assert [status.errors.get("inventory", "")[:21] for status in report.regions] == ["AccessDeniedException"] * 2
    assert not any(status.complete for status in report.regions)


def test_an_unknown_region_is_refused_before_anything_is_scanned(aws: None) -> None:
    with pytest.raises(UnknownRegion, match="mars-east-1"):
        service(Records(), {}).run([HOME, "mars-east-1"])
