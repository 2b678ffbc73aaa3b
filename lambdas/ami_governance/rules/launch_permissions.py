"""When the report may trust the inventory's record of an AMI's launch permissions, and when it must read them.

The event path records every ModifyImageAttribute(launchPermission) in the inventory, read back from EC2. The
record can still be missing (an AMI older than the deployment, an event lost where no trail records management
events) or wrong (a change made while the pipeline was down), so every AMI is also re-read on a rolling full
verification, once per `full_verification_days`.

Rolling: each AMI has a day of the period (its slot, from its id) on which it is re-read, so a run reads the AMIs
never seen plus about 1/N of the others. A rule on the reading's age alone would not spread the cost: an estate
first read in one run would come due again in one run, every period, forever. An AMI whose slot was missed (no
run that day) is read by the next run once its reading is a period old.
"""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta

from ami_governance.models.findings import InventoryRecord

# A scheduled run starts a little later or earlier from one day to the next: a reading made by the previous
# run of the same schedule counts as a day (or a period) old even when it is a few minutes younger.
SCHEDULE_SLACK = timedelta(hours=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def verification_slot(image_id: str, full_verification_days: int) -> int:
    """The day of the period (0 .. N-1) on which this AMI is re-read; stable across runs and processes."""
    return zlib.crc32(image_id.encode()) % full_verification_days


def verification_day(now: datetime, full_verification_days: int) -> int:
    """Which day of the period `now` is (UTC days since the epoch, modulo the period)."""
    return (now - _EPOCH).days % full_verification_days


def needs_verification(record: InventoryRecord | None, now: datetime, full_verification_days: int) -> bool:
    """True when the AMI's launch permissions must be read with DescribeImageAttribute this run: the inventory
    has no item or no reading for it (or a reading without its time); the reading is a full period old; or today
    is the AMI's slot and the reading is at least a day old (not made by an earlier run today, or just now by the
    event path)."""
    permissions = record.launch_permissions if record is not None else None
    if record is None or permissions is None or permissions.recorded_at is None:
        return True
    age = now - permissions.recorded_at
    if age >= timedelta(days=full_verification_days) - SCHEDULE_SLACK:
        return True
    on_its_day = verification_slot(record.image_id, full_verification_days) == verification_day(
        now, full_verification_days
    )
    return on_its_day and age >= timedelta(days=1) - SCHEDULE_SLACK
