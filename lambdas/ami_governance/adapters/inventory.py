"""The inventory (lineage) table: one item per AMI per region, upserted so capabilities add fields.

Every DynamoDB expression of the product is here. The services call named operations with plain values (ids,
states, ISO times, Python dicts and lists) and read items back as plain values; each conditional write below says
what it guards against, and answers False (or None) when its condition failed.

Only AMIs that exist (or existed: a deregistered AMI whose snapshots name it) get an item: writes about an AMI
that cannot be described go through `record_existing`, and the lineage updates carry conditions on paths that
exist only in items written before.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from ami_governance.adapters.clients import client
from ami_governance.adapters.errors import error_code
from ami_governance.models.findings import InventoryRecord, LaunchPermissions
from ami_governance.models.lineage import ApprovalRecord, ReplicaSettlement, ReplicaState, RoundPlan
from ami_governance.rules.tags import iso_timestamp

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# A source's replication entries: {target region: entry}, see rules/approval.py.
REPLICAS = "replicas"
# The fields of a replication entry that say where it stands: `queue_round` plans on them as read.
LOCKED = ("state", "generation", "approval_event_id", "lease_until")
CLEANUP = "cleanup"
# An AMI's launch permissions as last read from EC2 (see `launch_permissions_item`).
LAUNCH_PERMISSIONS = "launch_permissions"
# What the report reads of each item: exactly InventoryRecord's fields, which are named after the item's.
RECORD_FIELDS = tuple(field.name for field in dataclasses.fields(InventoryRecord))

# One field path inside an item: ("replicas", "eu-west-1", "state") is replicas.<region>.state.
_Path = tuple[str, ...]


def launch_permissions_item(permissions: LaunchPermissions) -> dict[str, Any]:
    """The item's `launch_permissions` map (read back by models/findings.py's `recorded_launch_permissions`)."""
    if permissions.recorded_at is None:
        raise ValueError(f"a reading of {permissions.image_id}'s launch permissions needs the time it was made")
    return {
        "public": permissions.public,
        "accounts": list(permissions.accounts),
        "organization_arns": list(permissions.organization_arns),
        "ou_arns": list(permissions.ou_arns),
        "recorded_at": iso_timestamp(permissions.recorded_at),
    }


class Inventory:
    def __init__(
        self,
        table_name: str,
        region: str,
        *,
        scan_page_size: int | None = None,
        dynamodb: DynamoDBClient | None = None,
    ) -> None:
        """`dynamodb`: another session's client (the operator CLI's); by default the Lambda's cached client."""
        self.table_name = table_name
        self._dynamodb = dynamodb or client("dynamodb", region)
        # None: DynamoDB's own pages (up to 1 MB each), the fewest calls.
        self._scan_page_size = scan_page_size
        self.scan_calls = 0

    def get(self, image_id: str, region: str, consistent: bool = True) -> dict[str, Any] | None:
        response = self._dynamodb.get_item(
            TableName=self.table_name, Key=_key(image_id, region), ConsistentRead=consistent
        )
        item = response.get("Item")
        return plain_item(item) if item else None

    def record(self, image_id: str, region: str, fields: Mapping[str, Any]) -> None:
        """Set `fields` on the item (creating it); attributes written by other capabilities survive."""
        # Empty lists are written (a compliant AMI has no violations); None and "" mean "unknown, leave as is".
        values = {k: v for k, v in fields.items() if v is not None and v != ""}
        if not values:
            return
        self._update(image_id, region, {(key,): value for key, value in values.items()})

    def record_existing(self, image_id: str, region: str, fields: Mapping[str, Any]) -> bool:
        """Set `fields` on the item only if it exists (False when there is none): for what an event says about an
        AMI that cannot be described, which must not create an item for an AMI that may never have existed."""
        values = {k: v for k, v in fields.items() if v is not None and v != ""}
        if not values:
            return False
        updated = self._update(
            image_id,
            region,
            {(key,): value for key, value in values.items()},
            lambda e: f"attribute_exists({e.path('image_id')})",
        )
        return updated is not None

    # ---- the report ---------------------------------------------------------------------------------

    def records(self) -> dict[str, list[InventoryRecord]]:
        """Every item of the table, by region: a paged Scan of only the fields InventoryRecord reads.

        Eventually consistent: the report is a picture of one moment, and a write that lands within the read's
        lag (about a second) is in the next run's; a strongly consistent Scan costs twice the read capacity.
        The fields are named through placeholders, since several (name, region, state) are reserved words.
        """
        names = {f"#f{i}": field for i, field in enumerate(RECORD_FIELDS)}
        arguments: dict[str, Any] = {
            "TableName": self.table_name,
            "ProjectionExpression": ", ".join(names),
            "ExpressionAttributeNames": names,
        }
        if self._scan_page_size is not None:
            arguments["Limit"] = self._scan_page_size
        by_region: dict[str, list[InventoryRecord]] = {}
        while True:
            response = self._dynamodb.scan(**arguments)
            self.scan_calls += 1
            for item in response.get("Items", []):
                record = InventoryRecord.from_item(plain_item(item))
                by_region.setdefault(record.region, []).append(record)
            last_key = response.get("LastEvaluatedKey")
            if not last_key:
                return by_region
            arguments["ExclusiveStartKey"] = last_key

    def record_launch_permissions(self, image_id: str, region: str, permissions: LaunchPermissions) -> None:
        """Record a reading of the AMI's launch permissions unless a later one is recorded (the report's
        write-back: see `record_newer_launch_permissions`)."""
        self.record_newer_launch_permissions(image_id, region, permissions)

    def record_newer_launch_permissions(self, image_id: str, region: str, permissions: LaunchPermissions) -> bool:
        """Record a reading of the AMI's launch permissions (creating the item: the caller read them from EC2,
        so the AMI exists), unless the item holds a later reading: the event path and the report both write
        here, and a slow writer must not put back what a later reading replaced. False when it did not write."""
        recorded = launch_permissions_item(permissions)
        at: _Path = (LAUNCH_PERMISSIONS, "recorded_at")

        def not_newer(e: _Expression) -> str:
            # `<=`: the same reading written twice (a retry) is not refused.
            return f"attribute_not_exists({e.path(*at)}) OR {e.path(*at)} <= {e.value(recorded['recorded_at'])}"

        return self._update(image_id, region, {(LAUNCH_PERMISSIONS,): recorded}, not_newer) is not None

    # ---- cleanup ----------------------------------------------------------------------------------

    def claim_cleanup(
        self, image_id: str, region: str, owner: str, now: str, lease_until: str, reclaimable: Sequence[str] = ()
    ) -> bool:
        """Mark the clean-up of this AMI as in progress unless it is done or someone else holds it.

        Two deliveries of the same deregistration (CloudTrail and the state change, or a duplicate) may run at
        once: only the one that wins this conditional write does the work. A claim whose status is one of
        `reclaimable` (failed, say) or whose lease expired can be taken again, so a retry after a crash proceeds.
        The write creates the item if there is none: the caller decides that the AMI is real.
        """
        status: _Path = (f"{CLEANUP}_status",)
        lease: _Path = (f"{CLEANUP}_lease_until",)
        fields = {status: "in-progress", (f"{CLEANUP}_owner",): owner, lease: lease_until}

        def free(e: _Expression) -> str:
            reclaim = f" OR {e.path(*status)} IN ({', '.join(e.value(s) for s in reclaimable)})" if reclaimable else ""
            in_progress = f"{e.path(*status)} = {e.value('in-progress')}"
            return (
                f"attribute_not_exists({e.path(*status)}){reclaim} OR "
                f"({in_progress} AND {e.path(*lease)} < {e.value(now)})"
            )

        return self._update(image_id, region, fields, free) is not None

    # ---- replication: the approval and its round, on the source's item ------------------------------

    def record_approval(self, image_id: str, region: str, approval: ApprovalRecord) -> None:
        """Record an approval that starts no round yet (the AMI is pending)."""
        self._update(image_id, region, _approval_fields(approval))

    def prepare_round(self, image_id: str, region: str) -> None:
        """Create the source's empty replicas map unless it exists: DynamoDB can only SET inside a map that exists."""
        self._dynamodb.update_item(
            TableName=self.table_name,
            Key=_key(image_id, region),
            UpdateExpression="SET #m = if_not_exists(#m, :empty)",
            ExpressionAttributeNames={"#m": REPLICAS},
            ExpressionAttributeValues={":empty": _attribute({})},
        )

    def queue_round(self, image_id: str, region: str, plan: RoundPlan) -> bool:
        """Record an approved round: the approval, its target regions and a queued entry for each region it queues.

        An optimistic lock: the queued regions' entries must still be as `plan.read` (the replicas map read before
        planning), so that a concurrent delivery or copy worker that changed one first makes this write fail
        (False): no region is queued twice and no dead replica's ClientToken is reused.
        """
        approval, generations, read = plan.approval, plan.generations, plan.read
        fields = _approval_fields(approval)
        fields[("replication_targets",)] = list(plan.targets)
        if generations:
            fields[("replication_round",)] = approval.event_id
        for target, entry in plan.queued_entries().items():
            fields[(REPLICAS, target)] = entry

        def as_read(e: _Expression) -> str:
            clauses = []
            for target in generations:
                entry = read.get(target)
                if entry is None:
                    clauses.append(f"attribute_not_exists({e.path(REPLICAS, target)})")
                    continue
                clauses += [f"{e.path(REPLICAS, target, k)} = {e.value(entry[k])}" for k in LOCKED if k in entry]
                if "image_id" not in entry:
                    clauses.append(f"attribute_not_exists({e.path(REPLICAS, target, 'image_id')})")
            return " AND ".join(clauses)

        return self._update(image_id, region, fields, as_read if generations else None) is not None

    # ---- replication: one target region's copy (the copy worker) --------------------------------------

    def claim_copy(
        self, image_id: str, region: str, target: str, generation: int, owner: str, now: str, lease_until: str
    ) -> bool:
        """Claim the copy into `target` for `owner` (the job's delivery) until `lease_until`: only for the entry's
        own generation, and only when it is queued, or copying without a replica (its worker died before CopyImage
        answered) and its lease has run out. False when another worker holds it or the entry moved on."""
        entry: _Path = (REPLICAS, target)
        fields = {
            (*entry, "state"): ReplicaState.COPYING.value,
            (*entry, "owner"): owner,
            (*entry, "lease_until"): lease_until,
        }

        def free(e: _Expression) -> str:
            state = e.path(*entry, "state")
            return (
                f"{e.path(*entry, 'generation')} = {e.value(generation)} AND ({state} = "
                f"{e.value(ReplicaState.QUEUED.value)} OR ({state} = {e.value(ReplicaState.COPYING.value)} AND "
                f"attribute_not_exists({e.path(*entry, 'image_id')}) AND "
                f"{e.path(*entry, 'lease_until')} < {e.value(now)}))"
            )

        return self._update(image_id, region, fields, free) is not None

    def release_copy(self, image_id: str, region: str, target: str, owner: str) -> bool:
        """Give the claimed copy back (queued again) so that the job's retry can claim it: only while `owner`
        holds it and no replica is recorded."""
        entry: _Path = (REPLICAS, target)
        return (
            self._update(image_id, region, {(*entry, "state"): ReplicaState.QUEUED.value}, _still_claimed(entry, owner))
            is not None
        )

    def record_copy(
        self, image_id: str, region: str, target: str, owner: str, replica_id: str, requested_at: str, adopted: bool
    ) -> bool:
        """Record the replica CopyImage made for `owner`'s claim (or one adopted instead of copying): only while
        `owner` holds the claim and the entry names no other replica. The state stays `copying`: the replica's own
        state change settles it, once this record names it."""
        entry: _Path = (REPLICAS, target)
        fields: dict[_Path, Any] = {(*entry, "image_id"): replica_id, (*entry, "requested_at"): requested_at}
        if adopted:
            fields[(*entry, "adopted")] = True

        def still_ours(e: _Expression) -> str:
            recorded = e.path(*entry, "image_id")
            return (
                f"{e.path(*entry, 'owner')} = {e.value(owner)} AND "
                f"(attribute_not_exists({recorded}) OR {recorded} = {e.value(replica_id)})"
            )

        return self._update(image_id, region, fields, still_ours) is not None

    # ---- replication: a replica reached an end, and the round's one announcement ----------------------

    def settle_replica(self, image_id: str, region: str, settlement: ReplicaSettlement) -> dict[str, Any] | None:
        """Set the target's entry to the settled state (with its time, and the error if any) while it still names
        the settled replica (None: an entry with no replica, whose CopyImage failed): a newer round may have
        replaced the entry since it was read. Returns the source's item after the write, or None when it changed."""
        replica_id, state = settlement.replica_id, settlement.state
        entry: _Path = (REPLICAS, settlement.target)
        fields: dict[_Path, Any] = {(*entry, "state"): state.value, (*entry, f"{state.value}_at"): settlement.at}
        if settlement.error:
            fields[(*entry, "error")] = settlement.error

        def unchanged(e: _Expression) -> str:
            if replica_id is None:
                return f"attribute_exists({e.path(*entry)}) AND attribute_not_exists({e.path(*entry, 'image_id')})"
            return f"{e.path(*entry, 'image_id')} = {e.value(replica_id)}"

        return self._update(image_id, region, fields, unchanged, returns=True)

    def withdraw_replica(self, image_id: str, region: str, target: str, owner: str, at: str) -> dict[str, Any] | None:
        """End the target's entry `withdrawn` (no copy made) while `owner` still holds its claim and no replica is
        recorded. Returns the source's item after the write, or None when the entry is no longer that claim."""
        entry: _Path = (REPLICAS, target)
        withdrawn = ReplicaState.WITHDRAWN.value
        fields = {(*entry, "state"): withdrawn, (*entry, f"{withdrawn}_at"): at}
        return self._update(image_id, region, fields, _still_claimed(entry, owner), returns=True)

    def claim_announcement(self, image_id: str, region: str, round_id: str) -> bool:
        """Mark the round `round_id` as announced unless it already is: one 'replicated' notice per round."""

        def not_yet(e: _Expression) -> str:
            announced = e.path("replication_announced")
            return f"attribute_not_exists({announced}) OR {announced} <> {e.value(round_id)}"

        return self._update(image_id, region, {("replication_announced",): round_id}, not_yet) is not None

    def release_announcement(self, image_id: str, region: str) -> None:
        """Forget the announcement claim (its publish failed), so that the retry announces the round."""
        self._update(image_id, region, {("replication_announced",): ""})

    # ---- the one UpdateItem ------------------------------------------------------------------------

    def _update(
        self,
        image_id: str,
        region: str,
        fields: Mapping[_Path, Any],
        condition: Callable[[_Expression], str] | None = None,
        *,
        returns: bool = False,
    ) -> dict[str, Any] | None:
        """SET each path to its value, if `condition` (built on the same placeholders) holds. Returns None when the
        condition failed, else the item as it is after the update (`returns`) or an empty dict."""
        expression = _Expression()
        clauses = [f"{expression.path(*path)} = {expression.value(value)}" for path, value in fields.items()]
        arguments: dict[str, Any] = {"UpdateExpression": "SET " + ", ".join(clauses)}
        if condition is not None:
            arguments["ConditionExpression"] = condition(expression)
        if returns:
            arguments["ReturnValues"] = "ALL_NEW"
        try:
            response = self._dynamodb.update_item(
                TableName=self.table_name,
                Key=_key(image_id, region),
                ExpressionAttributeNames=expression.names,
                ExpressionAttributeValues=expression.values,
                **arguments,
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return None
            raise
        return plain_item(response.get("Attributes", {}))


def _approval_fields(approval: ApprovalRecord) -> dict[_Path, Any]:
    return {(name,): value for name, value in approval.recorded_fields().items()}


def _still_claimed(entry: _Path, owner: str) -> Callable[[_Expression], str]:
    def condition(e: _Expression) -> str:
        return f"{e.path(*entry, 'owner')} = {e.value(owner)} AND attribute_not_exists({e.path(*entry, 'image_id')})"

    return condition


class _Expression:
    """Placeholders for an update or condition expression: every name and value goes through here."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}
        self._name_keys: dict[str, str] = {}

    def path(self, *parts: str) -> str:
        return ".".join(self._name(part) for part in parts)

    def _name(self, part: str) -> str:
        if part not in self._name_keys:
            key = f"#n{len(self._name_keys)}"
            self._name_keys[part] = key
            self.names[key] = part
        return self._name_keys[part]

    def value(self, value: Any) -> str:
        key = f":v{len(self.values)}"
        self.values[key] = _attribute(value)
        return key


# ---- DynamoDB's wire format: only these two functions (and the keys) know it -------------------------


def _key(image_id: str, region: str) -> dict[str, Any]:
    return {"image_id": _attribute(image_id), "region": _attribute(region)}


def _attribute(value: Any) -> dict[str, Any]:
    if value is None:
        # A None inside a map or list is stored as DynamoDB's NULL and read back as None (as boto3's
        # TypeSerializer does), not as the string "None".
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float):
        return {"N": str(value)}
    if isinstance(value, list | tuple):
        return {"L": [_attribute(item) for item in value]}
    if isinstance(value, dict):
        return {"M": {key: _attribute(item) for key, item in value.items()}}
    return {"S": str(value)}


def plain_item(item: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """An item as DynamoDB returns it, as plain Python values."""
    return {key: _plain(value) for key, value in item.items()}


def _plain(attribute: Mapping[str, Any]) -> Any:
    kind, value = next(iter(attribute.items()))
    if kind == "NULL":
        return None
    if kind == "L":
        return [_plain(item) for item in value]
    if kind == "M":
        return {key: _plain(item) for key, item in value.items()}
    if kind == "N":
        return float(value) if "." in value else int(value)
    return value
