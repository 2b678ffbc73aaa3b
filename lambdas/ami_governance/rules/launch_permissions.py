"""When the report must read an AMI's launch permissions from EC2 rather than trust the inventory's record."""

from __future__ import annotations

from datetime import datetime, timedelta

from ami_governance.models.findings import InventoryRecord


def needs_verification(record: InventoryRecord | None, now: datetime, full_verification_days: int) -> bool:
    """No record, or one older than the full-verification period: each AMI is re-read at most that often."""
    recorded = record.launch_permissions if record else None
    if recorded is None or recorded.recorded_at is None:
        return True
    return now - recorded.recorded_at >= timedelta(days=full_verification_days)
