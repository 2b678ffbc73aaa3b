"""EventBridge pattern matching: moto's matcher, completed where moto 5.2 falls short."""

from __future__ import annotations

import json
from typing import Any

from moto.events.models import EventPattern


class EventBridgePattern(EventPattern):
    """moto's EventBridge pattern matcher that also descends into arrays of objects.

    EventBridge matches a pattern field inside an array of objects (CreateTags'
    `requestParameters.resourcesSet.items[].resourceId`) if any element matches; moto does not descend into
    arrays of objects. Flattening such arrays into lists of leaf values gives moto's matcher the same view.
    """

    @staticmethod
    def _flatten_dict(node: Any, prefix: str = "", result: dict[str, Any] | None = None) -> dict[str, Any]:
        result = {} if result is None else result
        if not isinstance(node, dict):
            return result
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else key
            if isinstance(value, dict) and value:
                EventBridgePattern._flatten_dict(value, path, result)
            elif isinstance(value, list) and any(isinstance(item, dict) for item in value):
                for item in value:
                    for leaf_path, leaf in EventBridgePattern._flatten_dict(item, path).items():
                        result.setdefault(leaf_path, []).extend(leaf if isinstance(leaf, list) else [leaf])
            else:
                result[path] = value
        return result


def pattern_matches(pattern: dict[str, Any] | str, event: dict[str, Any]) -> bool:
    """True when `event` matches the EventBridge `pattern` (a dict or its JSON text)."""
    parsed = json.loads(pattern) if isinstance(pattern, str) else pattern
    # moto types events as its own TypedDict; any real-shaped event dict is fine at run time.
    return EventBridgePattern(json.dumps(parsed), parsed).matches_event(event)  # type: ignore[arg-type]
