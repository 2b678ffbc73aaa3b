"""The inventory's operations for the report: reading every record, and recording launch-permission readings.

Every case runs twice, against DynamoDB on moto (adapters/inventory.py) and against the in-memory FakeInventory,
so that the fake the report's unit tests use cannot drift from the real conditions.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ami_governance.adapters.inventory import Inventory
from ami_governance.models.findings import InventoryRecord, LaunchPermissions, VerifiedBy
from tests.fakes import FakeInventory
from tests.integration.conftest import HOME, TABLE

pytestmark = pytest.mark.integration

AMI, OTHER = "ami-0aaaaaaaaaaaaaaa1", "ami-0aaaaaaaaaaaaaaa2"
EU = "eu-west-1"
ORG = "arn:aws:organizations::123456789012:organization/o-abcdefghij"
OU = "arn:aws:organizations::123456789012:ou/o-abcdefghij/ou-ab12-cdefgh34"
EARLY = datetime(2030, 1, 1, 0, 0, tzinfo=UTC)
LATER = datetime(2030, 1, 1, 0, 10, tzinfo=UTC)


@pytest.fixture(params=["dynamodb", "fake"])
def inventory(request: pytest.FixtureRequest) -> Any:
    if request.param == "fake":
        return FakeInventory()
    request.getfixturevalue("estate")  # moto, with the inventory table
    return Inventory(TABLE, HOME)


def reading(at: datetime, *, public: bool = False, accounts: tuple[str, ...] = ()) -> LaunchPermissions:
    return LaunchPermissions(
        AMI, VerifiedBy.DESCRIBE, public=public, accounts=accounts, organization_arns=(ORG,), ou_arns=(OU,),
        recorded_at=at,
    )  # fmt: skip


def test_a_reading_is_recorded_as_the_items_launch_permissions_map(inventory: Any) -> None:
    # Given an AMI the inventory knows
    inventory.record(AMI, HOME, {"name": "app-1", "state": "available"})

    # When a reading of its launch permissions is recorded
    written = inventory.record_newer_launch_permissions(
        AMI, HOME, reading(EARLY, public=True, accounts=("111122223333",))
    )

    # Then the item holds it as the event path and the report agreed, next to the fields already there
    assert written is True
    item = inventory.get(AMI, HOME)
    assert item["launch_permissions"] == {
        "public": True, "accounts": ["111122223333"], "organization_arns": [ORG], "ou_arns": [OU],
        "recorded_at": "2030-01-01T00:00:00Z",
    }  # fmt: skip
    assert (item["name"], item["state"]) == ("app-1", "available")


def test_an_older_reading_never_replaces_a_newer_one(inventory: Any) -> None:
    # Given a reading made at LATER (the AMI made private)
    assert inventory.record_newer_launch_permissions(AMI, HOME, reading(LATER, public=False))

    # When a slower writer records its earlier reading (the AMI still public then)
    written = inventory.record_newer_launch_permissions(AMI, HOME, reading(EARLY, public=True))

    # Then the write is refused and the later reading stands
    assert written is False
    assert inventory.get(AMI, HOME)["launch_permissions"]["public"] is False
    assert inventory.get(AMI, HOME)["launch_permissions"]["recorded_at"] == "2030-01-01T00:10:00Z"


def test_a_newer_reading_replaces_an_older_one_and_the_same_reading_can_be_written_again(inventory: Any) -> None:
    assert inventory.record_newer_launch_permissions(AMI, HOME, reading(EARLY, public=True))

    assert inventory.record_newer_launch_permissions(AMI, HOME, reading(LATER, accounts=("111122223333",))) is True
    # (a retry of the same write)
    assert inventory.record_newer_launch_permissions(AMI, HOME, reading(LATER, accounts=("111122223333",))) is True

    recorded = inventory.get(AMI, HOME)["launch_permissions"]
    assert (recorded["public"], recorded["accounts"], recorded["recorded_at"]) == (
        False, ["111122223333"], "2030-01-01T00:10:00Z"
    )  # fmt: skip


def test_the_reports_write_back_keeps_the_same_guard(inventory: Any) -> None:
    # (record_launch_permissions: the report's write-back, which needs no answer)
    assert inventory.record_launch_permissions(AMI, HOME, reading(LATER, public=False)) is None
    inventory.record_launch_permissions(AMI, HOME, reading(EARLY, public=True))

    assert inventory.get(AMI, HOME)["launch_permissions"]["public"] is False


def test_a_reading_without_its_time_is_refused(inventory: Any) -> None:
    with pytest.raises(ValueError, match="needs the time"):
        inventory.record_newer_launch_permissions(AMI, HOME, LaunchPermissions(AMI, VerifiedBy.DESCRIBE))


def test_records_are_every_item_by_region_with_the_recorded_launch_permissions(inventory: Any) -> None:
    # Given two AMIs in the home region (one with a reading) and one in another region
    inventory.record(AMI, HOME, {"name": "app-1", "state": "available", "snapshot_ids": ["snap-1"], "protected": True})
    inventory.record_newer_launch_permissions(AMI, HOME, reading(EARLY, public=True))
    inventory.record(OTHER, HOME, {"compliance": "non-compliant", "cleanup_status": "deferred"})
    inventory.record(AMI, EU, {"replica_of": f"{HOME}/{AMI}", "state": "available"})

    # When the report reads the inventory
    records = inventory.records()

    # Then each region's records are there, as InventoryRecord reads them
    assert sorted(records) == [EU, HOME]
    home = {record.image_id: record for record in records[HOME]}
    assert home[AMI] == InventoryRecord(
        AMI, HOME, name="app-1", state="available", snapshot_ids=("snap-1",), protected=True,
        launch_permissions=LaunchPermissions(
            AMI, VerifiedBy.INVENTORY, public=True, organization_arns=(ORG,), ou_arns=(OU,), recorded_at=EARLY
        ),
    )  # fmt: skip
    assert home[OTHER] == InventoryRecord(OTHER, HOME, compliance="non-compliant", cleanup_status="deferred")
    assert records[EU] == [InventoryRecord(AMI, EU, state="available", replica_of=f"{HOME}/{AMI}")]
    assert inventory.scan_calls == 1


def test_an_empty_inventory_has_no_records(inventory: Any) -> None:
    assert inventory.records() == {}
    assert inventory.scan_calls == 1


@pytest.mark.usefixtures("estate")
def test_records_page_through_the_whole_table_and_count_each_call() -> None:
    # Given five items, and Scan pages of two items
    writer = Inventory(TABLE, HOME)
    for n in range(5):
        writer.record(f"ami-0aaaaaaaaaaaaaa{n:02d}", HOME, {"state": "available"})
    reader = Inventory(TABLE, HOME, scan_page_size=2)

    # When the report reads the inventory
    records = reader.records()

    # Then every item is read, in three pages (2 + 2 + 1, the last without a LastEvaluatedKey)
    assert sorted(record.image_id for record in records[HOME]) == [f"ami-0aaaaaaaaaaaaaa{n:02d}" for n in range(5)]
    assert reader.scan_calls == 3
