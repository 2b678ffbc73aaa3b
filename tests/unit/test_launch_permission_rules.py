"""When the report must read an AMI's launch permissions from EC2 rather than trust the inventory's record."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from ami_governance.models.findings import InventoryRecord, LaunchPermissions, VerifiedBy
from ami_governance.rules.launch_permissions import needs_verification, verification_day, verification_slot

AMI = "ami-0aaaaaaaaaaaaaaa1"
DAYS = 7
# A run at 06:00 UTC on the AMI's slot day, and one on the next day (not its slot: the period is 7 days).
ON_ITS_DAY = datetime(2030, 6, 15, 6, 0, tzinfo=UTC)
ON_ITS_DAY += timedelta(days=(verification_slot(AMI, DAYS) - verification_day(ON_ITS_DAY, DAYS)) % DAYS)
OFF_DAY = ON_ITS_DAY + timedelta(days=1)


def record(recorded_at: datetime | None, *, permissions: bool = True, image_id: str = AMI) -> InventoryRecord:
    reading = LaunchPermissions(image_id, VerifiedBy.INVENTORY, public=True, recorded_at=recorded_at)
    return InventoryRecord(image_id, "us-east-1", name="app-1", launch_permissions=reading if permissions else None)


def read(now: datetime, **before: float) -> InventoryRecord:
    """A record whose reading was made this long before `now`."""
    return record(now - timedelta(**before))


def test_the_slot_is_stable_and_the_day_follows_the_calendar() -> None:
    # (zlib.crc32, not hash(): the slot must not change from one Lambda container to the next)
    assert verification_slot(AMI, DAYS) == 5
    assert verification_day(datetime(1970, 1, 8, 23, 59, tzinfo=UTC), DAYS) == 0
    assert verification_day(datetime(1970, 1, 9, 0, 0, tzinfo=UTC), DAYS) == 1
    assert verification_day(ON_ITS_DAY, DAYS) == verification_slot(AMI, DAYS)


@pytest.mark.parametrize(
    ("case", "now", "inventory_record", "expected"),
    [
        ("no item: an AMI the inventory never saw", OFF_DAY, None, True),
        ("an item without a reading", OFF_DAY, record(None, permissions=False), True),
        ("a reading without its time", OFF_DAY, record(None), True),
        ("off its day, read yesterday", OFF_DAY, read(OFF_DAY, days=1), False),
        ("off its day, read six days ago", OFF_DAY, read(OFF_DAY, days=6), False),
        ("off its day, read a period ago (its slot run was missed)", OFF_DAY, read(OFF_DAY, days=7), True),
        ("off its day, read a period ago less a few minutes", OFF_DAY, read(OFF_DAY, days=7, minutes=-5), True),
        ("off its day, read long ago", OFF_DAY, read(OFF_DAY, days=400), True),
        ("its day, read by the run a period ago", ON_ITS_DAY, read(ON_ITS_DAY, days=7), True),
        ("its day, read yesterday", ON_ITS_DAY, read(ON_ITS_DAY, days=1), True),
        ("its day, read by yesterday's later run", ON_ITS_DAY, read(ON_ITS_DAY, hours=23, minutes=55), True),
        ("its day, read by an earlier run today", ON_ITS_DAY, read(ON_ITS_DAY, hours=5), False),
        ("its day, recorded just now by the event path", ON_ITS_DAY, read(ON_ITS_DAY, seconds=30), False),
        # a clock ahead of the reader's must not make a reading overdue
        ("a reading 'in the future'", OFF_DAY, record(OFF_DAY + timedelta(minutes=5)), False),
    ],
)  # fmt: skip
def test_needs_verification(case: str, now: datetime, inventory_record: InventoryRecord | None, expected: bool) -> None:
    assert needs_verification(inventory_record, now, DAYS) is expected, case


@pytest.mark.parametrize(("days", "expected"), [(1, True), (30, False)])
def test_the_period_is_the_policys(days: int, expected: bool) -> None:
    # Given a reading 23 hours 30 minutes old (yesterday's run), then only a one-day period makes it due
    now = ON_ITS_DAY + timedelta(days=1 + (verification_slot(AMI, 30) - verification_day(ON_ITS_DAY, 30)) % 30)
    assert needs_verification(record(now - timedelta(hours=23, minutes=30)), now, days) is expected


def test_a_rolling_verification_spreads_the_reads_over_the_period() -> None:
    # Given 700 AMIs first read together (a new deployment's first run), then one run a day at 06:00
    estate = [f"ami-{n:017x}" for n in range(700)]
    first = ON_ITS_DAY
    readings = dict.fromkeys(estate, first)
    reads: list[Counter[str]] = []
    for day in range(1, 3 * DAYS + 1):
        now = first + timedelta(days=day, seconds=(-1) ** day * 90)  # runs start a little early or late
        due = [i for i in estate if needs_verification(record(readings[i], image_id=i), now, DAYS)]
        readings.update(dict.fromkeys(due, now))
        reads.append(Counter(due))

    # Then each run reads the AMIs whose slot it is (about 1/7 of the estate, never all of them at once), and
    # every AMI is read exactly once in each period
    slots = Counter(verification_slot(i, DAYS) for i in estate)
    per_run = [sum(counter.values()) for counter in reads]
    expected = [slots[verification_day(first + timedelta(days=day), DAYS)] for day in range(1, 3 * DAYS + 1)]
    assert per_run == expected
    assert max(per_run) < 2 * len(estate) / DAYS
    for period in range(3):
        window = sum(reads[period * DAYS : (period + 1) * DAYS], Counter())
        assert window == Counter(estate), period
