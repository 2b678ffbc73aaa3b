"""The inventory (lineage) table: one item per AMI per region, upserted so capabilities add fields."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ami_governance.adapters.clients import client


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

    def get(self, image_id: str, region: str) -> dict[str, Any] | None:
        response = self._dynamodb.get_item(
            TableName=self.table_name,
            Key={"image_id": {"S": image_id}, "region": {"S": region}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return {key: _plain(value) for key, value in item.items()} if item else None


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
