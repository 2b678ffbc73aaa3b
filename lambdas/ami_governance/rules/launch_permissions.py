"""When the report may trust the inventory's record of an AMI's launch permissions, and when it must read them.

The event path records every ModifyImageAttribute(launchPermission) in the inventory, read back from EC2. The
record can still be missing (an AMI older than the deployment, an event lost where no trail records management
events) or wrong (a change made while the pipeline was down), so each AMI is also re-read on a rolling full
verification: at most every `full_verification_days`, which spreads the re-reads of an estate over that many days
instead of reading every AMI on every run.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ami_governance.models.findings import InventoryRecord


def needs_verification(record: InventoryRecord | None, now: datetime, full_verification_days: int) -> bool:
    """True when the AMI's launch permissions must be read with DescribeImageAttribute this run: the inventory
    has no item or no reading for it, the reading has no time, or it was made longer ago than
    `full_verification_days`."""
    permissions = record.launch_permissions if record is not None else None
    if permissions is None or permissions.recorded_at is None:
        return True
    return now - permissions.recorded_at > timedelta(days=full_verification_days)
