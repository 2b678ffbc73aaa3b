"""The inventory (lineage) table: one item per AMI per region, upserted so capabilities add fields.

Only AMIs that exist (or existed: a deregistered AMI whose snapshots name it) get an item: writes about an AMI
that cannot be described go through `record_existing`, and the lineage updates carry conditions on paths that
exist only in items written before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ami_governance.adapters.clients import client

# One field path inside an item: ("replicas", "eu-west-1", "state") is replicas.<region>.state.
Path = tuple[str, ...]


class Inventory:
    def __init__(self, table_name: str, region: str) -> None:
        self.table_name = table_name
        self._dynamodb = client("dynamodb", region)

    def record(self, image_id: str, region: str, fields: Mapping[str, Any]) -> None:
        """Set `fields` on the item (creating it); attributes written by other capabilities survive."""
        # Empty lists are written (a compliant AMI has no violations); None and "" mean "unknown, leave as is".
        values = {k: v for k, v in fields.items() if v is not None and v != ""}
        if not values:
            return
        names = {f"#f{i}": key for i, key in enumerate(values)}
        expression = "SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(values)))
        self._dynamodb.update_item(
            TableName=self.table_name,
            Key={"image_id": {"S": image_id}, "region": {"S": region}},
            UpdateExpression=expression,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={f":v{i}": _attribute(v) for i, v in enumerate(values.values())},
        )

    def claim(
        self,
        image_id: str,
        region: str,
        claim: str,
        owner: str,
        now: str,
        lease_until: str,
        reclaimable: Sequence[str] = (),
    ) -> bool:
        """Mark `claim` ("cleanup") as in progress for this AMI unless it is done or someone else holds it.

        Two deliveries of the same deregistration (CloudTrail and the state change, or a duplicate) may run at
        once: only the one that wins this conditional write does the work. A claim whose status is one of
        `reclaimable` (failed, say) or whose lease expired can be taken again, so a retry after a crash proceeds.
        The write creates the item if there is none: the caller decides that the AMI is real.
        """
        from botocore.exceptions import ClientError

        statuses = {f":s{i}": {"S": status} for i, status in enumerate(reclaimable)}
        reclaim = f" OR #status IN ({', '.join(statuses)})" if statuses else ""
        try:
            self._dynamodb.update_item(
                TableName=self.table_name,
                Key={"image_id": {"S": image_id}, "region": {"S": region}},
                UpdateExpression="SET #status = :in_progress, #owner = :owner, #lease = :lease",
                ConditionExpression=(
                    f"attribute_not_exists(#status){reclaim} OR (#status = :in_progress AND #lease < :now)"
                ),
                ExpressionAttributeNames={
                    "#status": f"{claim}_status",
                    "#owner": f"{claim}_owner",
                    "#lease": f"{claim}_lease_until",
                },
                ExpressionAttributeValues={
                    ":in_progress": {"S": "in-progress"},
                    ":owner": {"S": owner},
                    ":lease": {"S": lease_until},
                    ":now": {"S": now},
                    **statuses,
                },
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def record_existing(self, image_id: str, region: str, fields: Mapping[str, Any]) -> bool:
        """Set `fields` on the item only if it exists (False when there is none): for what an event says about an
        AMI that cannot be described, which must not create an item for an AMI that may never have existed."""
        from botocore.exceptions import ClientError

        values = {k: v for k, v in fields.items() if v is not None and v != ""}
        if not values:
            return False
        names = {f"#f{i}": key for i, key in enumerate(values)}
        try:
            self._dynamodb.update_item(
                TableName=self.table_name,
                Key={"image_id": {"S": image_id}, "region": {"S": region}},
                UpdateExpression="SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(values))),
                ConditionExpression="attribute_exists(image_id)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={f":v{i}": _attribute(v) for i, v in enumerate(values.values())},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def get(self, image_id: str, region: str, consistent: bool = True) -> dict[str, Any] | None:
        response = self._dynamodb.get_item(
            TableName=self.table_name,
            Key={"image_id": {"S": image_id}, "region": {"S": region}},
            ConsistentRead=consistent,
        )
        item = response.get("Item")
        return {key: _plain(value) for key, value in item.items()} if item else None

    # ---- lineage: nested updates of a source's `replicas` map --------------------------------------

    def update(
        self,
        image_id: str,
        region: str,
        fields: Mapping[Path, Any],
        condition: Callable[[Expression], str] | None = None,
    ) -> dict[str, Any] | None:
        """SET each path to its value, if `condition` (built on the same placeholders) holds. Returns the item as
        it is after the update, or None when the condition failed."""
        from botocore.exceptions import ClientError

        expression = Expression()
        arguments: dict[str, Any] = {"UpdateExpression": expression.set_clause(fields)}
        if condition is not None:
            arguments["ConditionExpression"] = condition(expression)
        try:
            response = self._dynamodb.update_item(
                TableName=self.table_name,
                Key={"image_id": {"S": image_id}, "region": {"S": region}},
                ExpressionAttributeNames=expression.names,
                ExpressionAttributeValues=expression.values,
                ReturnValues="ALL_NEW",
                **arguments,
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return None
            raise
        return {key: _plain(value) for key, value in response.get("Attributes", {}).items()}

    def ensure_map(self, image_id: str, region: str, attribute: str) -> None:
        """Create an empty map attribute unless it exists: DynamoDB can only SET inside a map that exists."""
        self._dynamodb.update_item(
            TableName=self.table_name,
            Key={"image_id": {"S": image_id}, "region": {"S": region}},
            UpdateExpression="SET #m = if_not_exists(#m, :empty)",
            ExpressionAttributeNames={"#m": attribute},
            ExpressionAttributeValues={":empty": {"M": {}}},
        )


class Expression:
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

    def set_clause(self, fields: Mapping[Path, Any]) -> str:
        return "SET " + ", ".join(f"{self.path(*path)} = {self.value(value)}" for path, value in fields.items())


def _attribute(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float):
        return {"N": str(value)}
    if isinstance(value, list | tuple):
        return {"L": [_attribute(item) for item in value]}
    if isinstance(value, dict):
        return {"M": {key: _attribute(item) for key, item in value.items()}}
    return {"S": str(value)}


def _plain(attribute: Mapping[str, Any]) -> Any:
    kind, value = next(iter(attribute.items()))
    if kind == "L":
        return [_plain(item) for item in value]
    if kind == "M":
        return {key: _plain(item) for key, item in value.items()}
    if kind == "N":
        return float(value) if "." in value else int(value)
    return value
