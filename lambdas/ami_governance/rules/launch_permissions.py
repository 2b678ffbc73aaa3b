"""When the report may trust the inventory's record of an AMI's launch permissions, and when it must read them.

The event path records every ModifyImageAttribute(launchPermission) in the inventory, read back from EC2. The
record can still be missing (an AMI older than the deployment, an event lost where no trail records management
events) or wrong (a change made while the pipeline was down), so every reading also expires after
`full_verification_days`: each AMI is re-read at most that often, and a run reads the AMIs never seen plus those
whose reading expired. Readings made at different times (the event path's, new AMIs') expire on different runs;
an estate first read in one run comes due again in one run.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ami_governance.models.findings import InventoryRecord

# A scheduled run starts a little earlier or later from one day to the next: a reading made by the run one period
# ago counts as a period old even when it is a few minutes younger.
SCHEDULE_SLACK = timedelta(hours=1)


def needs_verification(record: InventoryRecord | None, now: datetime, full_verification_days: int) -> bool:
    """True when the AMI's launch permissions must be read with DescribeImageAttribute this run: the inventory
    has no item or no reading for it (or a reading without its time), or the reading is a full period old."""
    permissions = record.launch_permissions if record is not None else None
    if permissions is None or permissions.recorded_at is None:
        return True
    return now - permissions.recorded_at >= timedelta(days=full_verification_days) - SCHEDULE_SLACK
