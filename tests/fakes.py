"""In-memory stand-ins for the adapters, for unit tests of the services.

`FakeInventory` keeps the inventory's named operations' conditions (adapters/inventory.py): the contract tests in
tests/integration/test_inventory_operations.py run the same cases against it and against DynamoDB on moto.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from ami_governance.adapters.inventory import (
    LAUNCH_PERMISSIONS,
    LOCKED,
    RECORD_FIELDS,
    REPLICAS,
    launch_permissions_item,
)
from ami_governance.models.findings import InventoryRecord, LaunchPermissions
from ami_governance.models.lineage import ApprovalRecord, ReplicaSettlement, ReplicaState, RoundPlan


class FakeInventory:
    """Items by (image id, region), as plain values; `writes` counts the successful writes, `scan_calls` the
    reads of the whole table (one call each: the fake has no pages)."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        self.writes = 0
        self.scan_calls = 0

    # ---- reads and plain records --------------------------------------------------------------------

    def get(self, image_id: str, region: str, consistent: bool = True) -> dict[str, Any] | None:
        item = self.items.get((image_id, region))
        return copy.deepcopy(item) if item is not None else None

    def record(self, image_id: str, region: str, fields: Mapping[str, Any]) -> None:
        values = {k: v for k, v in fields.items() if v is not None and v != ""}
        if values:
            self._set(image_id, region, {(key,): value for key, value in values.items()})

    # ---- the report ----------------------------------------------------------------------------------

    def records(self) -> dict[str, list[InventoryRecord]]:
        self.scan_calls += 1
        by_region: dict[str, list[InventoryRecord]] = {}
        for item in self.items.values():
            projected = {key: copy.deepcopy(value) for key, value in item.items() if key in RECORD_FIELDS}
            by_region.setdefault(item["region"], []).append(InventoryRecord.from_item(projected))
        return by_region

    def record_launch_permissions(self, image_id: str, region: str, permissions: LaunchPermissions) -> None:
        self.record_newer_launch_permissions(image_id, region, permissions)

    def record_newer_launch_permissions(self, image_id: str, region: str, permissions: LaunchPermissions) -> bool:
        recorded = launch_permissions_item(permissions)
        current = (self.items.get((image_id, region)) or {}).get(LAUNCH_PERMISSIONS)
        if isinstance(current, dict) and "recorded_at" in current and current["recorded_at"] > recorded["recorded_at"]:
            return False
        self._set(image_id, region, {(LAUNCH_PERMISSIONS,): recorded})
        return True

    # ---- the source's round --------------------------------------------------------------------------

    def record_approval(self, image_id: str, region: str, approval: ApprovalRecord) -> None:
        self._set(image_id, region, _approval_fields(approval))

    def prepare_round(self, image_id: str, region: str) -> None:
        self._item(image_id, region).setdefault(REPLICAS, {})

    def queue_round(self, image_id: str, region: str, plan: RoundPlan) -> bool:
        for target in plan.generations:
            now, then = self._entry(image_id, region, target), plan.read.get(target)
            if then is None and now is not None:
                return False
            if then is not None and (
                now is None
                or any(now.get(k) != then[k] for k in LOCKED if k in then)
                or ("image_id" not in then and "image_id" in now)
            ):
                return False
        fields = _approval_fields(plan.approval)
        fields[("replication_targets",)] = list(plan.targets)
        if plan.generations:
            fields[("replication_round",)] = plan.approval.event_id
        for target, entry in plan.queued_entries().items():
            fields[(REPLICAS, target)] = entry
        self._set(image_id, region, fields)
        return True

    # ---- one region's copy ---------------------------------------------------------------------------

    def claim_copy(
        self, image_id: str, region: str, target: str, generation: int, owner: str, now: str, lease_until: str
    ) -> bool:
        entry = self._entry(image_id, region, target)
        if entry is None or "generation" not in entry or entry["generation"] != generation:
            return False
        abandoned = (
            entry.get("state") == ReplicaState.COPYING
            and "image_id" not in entry
            and "lease_until" in entry
            and entry["lease_until"] < now
        )
        if entry.get("state") != ReplicaState.QUEUED and not abandoned:
            return False
        entry.update(state=ReplicaState.COPYING.value, owner=owner, lease_until=lease_until)
        self.writes += 1
        return True

    def release_copy(self, image_id: str, region: str, target: str, owner: str) -> bool:
        entry = self._entry(image_id, region, target)
        if entry is None or entry.get("owner") != owner or "image_id" in entry:
            return False
        entry["state"] = ReplicaState.QUEUED.value
        self.writes += 1
        return True

    def record_copy(
        self, image_id: str, region: str, target: str, owner: str, replica_id: str, requested_at: str, adopted: bool
    ) -> bool:
        entry = self._entry(image_id, region, target)
        if entry is None or entry.get("owner") != owner or entry.get("image_id", replica_id) != replica_id:
            return False
        entry.update(image_id=replica_id, requested_at=requested_at)
        if adopted:
            entry["adopted"] = True
        self.writes += 1
        return True

    # ---- lineage -------------------------------------------------------------------------------------

    def settle_replica(self, image_id: str, region: str, settlement: ReplicaSettlement) -> dict[str, Any] | None:
        entry = self._entry(image_id, region, settlement.target)
        replica_id = settlement.replica_id
        if entry is None or (entry.get("image_id") != replica_id if replica_id is not None else "image_id" in entry):
            return None
        entry.update({"state": settlement.state.value, f"{settlement.state.value}_at": settlement.at})
        if settlement.error:
            entry["error"] = settlement.error
        self.writes += 1
        return self.get(image_id, region)

    def withdraw_replica(self, image_id: str, region: str, target: str, owner: str, at: str) -> dict[str, Any] | None:
        entry = self._entry(image_id, region, target)
        if entry is None or entry.get("owner") != owner or "image_id" in entry:
            return None
        entry.update(state=ReplicaState.WITHDRAWN.value, withdrawn_at=at)
        self.writes += 1
        return self.get(image_id, region)

    def claim_announcement(self, image_id: str, region: str, round_id: str) -> bool:
        item = self._item(image_id, region)
        if item.get("replication_announced") == round_id:
            return False
        item["replication_announced"] = round_id
        self.writes += 1
        return True

    def release_announcement(self, image_id: str, region: str) -> None:
        self._set(image_id, region, {("replication_announced",): ""})

    # ---- in memory -----------------------------------------------------------------------------------

    def _item(self, image_id: str, region: str) -> dict[str, Any]:
        return self.items.setdefault((image_id, region), {"image_id": image_id, "region": region})

    def _entry(self, image_id: str, region: str, target: str) -> dict[str, Any] | None:
        entry = (self.items.get((image_id, region)) or {}).get(REPLICAS, {}).get(target)
        return entry if isinstance(entry, dict) else None

    def _set(self, image_id: str, region: str, fields: Mapping[tuple[str, ...], Any]) -> None:
        item = self._item(image_id, region)
        for path, value in fields.items():
            parent = item
            for part in path[:-1]:
                parent = parent[part]  # as in DynamoDB, a nested SET needs its parents to exist
            parent[path[-1]] = copy.deepcopy(value)
        self.writes += 1


def _approval_fields(approval: ApprovalRecord) -> dict[tuple[str, ...], Any]:
    return {(name,): value for name, value in approval.recorded_fields().items()}
