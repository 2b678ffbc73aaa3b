"""When the report must read an AMI's launch permissions from EC2 rather than trust the inventory's record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ami_governance.models.findings import InventoryRecord, LaunchPermissions, VerifiedBy
from ami_governance.rules.launch_permissions import needs_verification

AMI = "ami-0aaaaaaaaaaaaaaa1"
NOW = datetime(2030, 6, 15, 6, 0, tzinfo=UTC)
DAYS = 7


def record(recorded_at: datetime | None, *, permissions: bool = True) -> InventoryRecord:
    reading = LaunchPermissions(AMI, VerifiedBy.INVENTORY, public=True, recorded_at=recorded_at)
    return InventoryRecord(AMI, "us-east-1", name="app-1", launch_permissions=reading if permissions else None)


def read(**before: float) -> InventoryRecord:
    """A record whose reading was made this long before NOW."""
    return record(NOW - timedelta(**before))


@pytest.mark.parametrize(
    ("case", "inventory_record", "expected"),
    [
        ("no item: an AMI the inventory never saw", None, True),
        ("an item without a reading", record(None, permissions=False), True),
        ("a reading without its time", record(None), True),
        ("recorded just now by the event path", read(seconds=30), False),
        ("read by yesterday's run", read(days=1), False),
        ("read six days ago", read(days=6), False),
        ("read by the run a period ago", read(days=7), True),
        ("read by the run a period ago, which started a few minutes later", read(days=7, minutes=-5), True),
        ("read a period ago less two hours", read(days=7, hours=-2), False),
        ("read long ago", read(days=400), True),
        # a clock ahead of the reader's must not make a reading overdue
        ("a reading 'in the future'", read(minutes=-5), False),
    ],
)
def test_needs_verification(case: str, inventory_record: InventoryRecord | None, expected: bool) -> None:
    assert needs_verification(inventory_record, NOW, DAYS) is expected, case


@pytest.mark.parametrize(("days", "expected"), [(1, True), (2, False), (30, False)])
def test_the_period_is_the_policys(days: int, expected: bool) -> None:
    # Given a reading made by yesterday's run, then only a one-day period makes it due
    assert needs_verification(read(days=1), NOW, days) is expected


def test_each_ami_is_re_read_once_per_period_on_daily_runs() -> None:
    # Given AMIs first read on different days (new AMIs, event-path readings), then one run a day
    readings = {f"ami-{n:017x}": NOW + timedelta(days=n % DAYS) for n in range(21)}
    reads: dict[str, list[int]] = {image_id: [] for image_id in readings}
    for day in range(DAYS, 4 * DAYS):
        now = NOW + timedelta(days=day, seconds=(-1) ** day * 90)  # runs start a little early or late
        for image_id, at in readings.items():
            if needs_verification(record(at), now, DAYS):
                readings[image_id] = now
                reads[image_id].append(day)

    # Then each is read exactly every seven days, and each run reads a seventh of them
    assert {image_id: days[1] - days[0] for image_id, days in reads.items()} == dict.fromkeys(readings, DAYS)
    per_run = [sum(day in days for days in reads.values()) for day in range(DAYS, 4 * DAYS)]
    assert per_run == [3] * (3 * DAYS)
