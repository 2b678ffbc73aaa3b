"""A minimal Recycle Bin service (`rbin`), which moto 5.2.5 lacks altogether: its calls answer 404.

rbin is a REST-JSON service at `rbin.<region>.amazonaws.com` (botocore's model: `POST /rules` CreateRule,
`GET /rules/{identifier}` GetRule, `POST /list-rules` ListRules, `DELETE /rules/{identifier}` DeleteRule). moto finds
a service's backend by matching the request URL against `moto.backend_index.backend_url_patterns` and importing
`moto.<service>`; both the in-process mock (botocore_stubber) and moto's server (DomainDispatcherApplication, which
the emulator serves) do that per request. So the service is added by appending its URL pattern to that list and
registering this module as `moto.rbin`; its BackendDict is reset with every other backend.

Rules, as the rbin API reference defines them: per account and region; `ResourceType` EBS_SNAPSHOT, EC2_IMAGE or
EBS_VOLUME; a tag-level rule (`ResourceTags`) retains deleted resources "that have one or more of the specified tag
key and value pairs"; a Region-level rule (no ResourceTags) retains every deleted resource of its type except those
with any of its `ExcludeResourceTags` ("You can't specify exclusion tags for tag-level retention rules"). AWS takes
"up to 30 minutes" to activate an account's first rule (Recycle Bin considerations); here every rule is `available`
at once. UpdateRule, LockRule/UnlockRule and the tagging calls are not emulated.
"""

from __future__ import annotations

import base64
import binascii
import re
import sys
import types
import uuid
from dataclasses import dataclass, field
from typing import Any

import moto.backend_index
from moto.core.base_backend import BackendDict, BaseBackend
from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult, BaseResponse, EmptyResult

SERVICE = "rbin"
RESOURCE_TYPES = ("EBS_SNAPSHOT", "EC2_IMAGE", "EBS_VOLUME")
URL_BASE = r"https?://rbin\.(.+)\.amazonaws\.com"


class ValidationException(ServiceException):
    code = "ValidationException"

    def __init__(self, message: str, reason: str = "INVALID_PARAMETER_VALUE") -> None:
        super().__init__(message)
        self.reason = reason  # serialized as the model's `Reason` member


class ResourceNotFoundException(ServiceException):
    code = "ResourceNotFoundException"

    def __init__(self, identifier: str) -> None:
        super().__init__(f"Rule {identifier} was not found.")
        self.reason = "RULE_NOT_FOUND"


class ConflictException(ServiceException):
    code = "ConflictException"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.reason = "INVALID_RULE_STATE"


@dataclass
class Rule:
    identifier: str
    rule_arn: str
    resource_type: str
    retention_period: dict[str, Any]
    description: str = ""
    resource_tags: list[dict[str, str]] = field(default_factory=list)
    exclude_resource_tags: list[dict[str, str]] = field(default_factory=list)
    tags: list[dict[str, str]] = field(default_factory=list)
    lock_configuration: dict[str, Any] | None = None
    status: str = "available"

    @property
    def lock_state(self) -> str | None:
        # "null - The retention rule has never been locked" (LockState doc); a rule created locked stays locked
        # here, UnlockRule not being emulated.
        return "locked" if self.lock_configuration else None

    @property
    def retention_days(self) -> int:
        return int(self.retention_period["RetentionPeriodValue"])

    def retains(self, resource_type: str, tags: dict[str, str]) -> bool:
        if self.status != "available" or resource_type != self.resource_type:
            return False
        if self.resource_tags:
            return any(_tag_matches(tag, tags) for tag in self.resource_tags)
        return not any(_tag_matches(tag, tags) for tag in self.exclude_resource_tags)

    def summary(self) -> dict[str, Any]:
        return _present(
            Identifier=self.identifier, Description=self.description, RetentionPeriod=self.retention_period,
            LockState=self.lock_state, RuleArn=self.rule_arn,
        )  # fmt: skip

    def describe(self) -> dict[str, Any]:
        return _present(
            **self.summary(), ResourceType=self.resource_type, ResourceTags=self.resource_tags,
            ExcludeResourceTags=self.exclude_resource_tags, Status=self.status,
            LockConfiguration=self.lock_configuration,
        )  # fmt: skip


def _tag_matches(rule_tag: dict[str, str], tags: dict[str, str]) -> bool:
    # A rule tag without a value matches the key with any value (ResourceTagValue is optional in the model).
    key, value = rule_tag.get("ResourceTagKey"), rule_tag.get("ResourceTagValue")
    return key in tags and (value is None or tags[key] == value)


def _present(**members: Any) -> dict[str, Any]:
    return {key: value for key, value in members.items() if value not in (None, "", [])}


class RecycleBinBackend(BaseBackend):
    def __init__(self, region_name: str, account_id: str) -> None:
        super().__init__(region_name, account_id)
        self.rules: dict[str, Rule] = {}

    @property
    def _url_module(self) -> Any:
        # moto reads a backend's URLs from `<package>.urls`; this service is one module, so it gives them directly.
        return types.SimpleNamespace(
            url_bases=[URL_BASE],
            url_paths={
                "{0}/rules$": RecycleBinResponse.dispatch,
                "{0}/rules/(?P<identifier>[^/]+)$": RecycleBinResponse.dispatch,
                "{0}/list-rules$": RecycleBinResponse.dispatch,
            },
        )

    def create_rule(self, request: dict[str, Any]) -> Rule:
        resource_type = request.get("ResourceType")
        if resource_type not in RESOURCE_TYPES:
            raise ValidationException(f"ResourceType must be one of {', '.join(RESOURCE_TYPES)}.")
        period = request.get("RetentionPeriod") or {}
        value = period.get("RetentionPeriodValue")
        if not isinstance(value, int) or not 1 <= value <= 3650 or period.get("RetentionPeriodUnit") != "DAYS":
            raise ValidationException("RetentionPeriod must be between 1 and 3650 DAYS.")
        resource_tags = request.get("ResourceTags") or []
        exclude_tags = request.get("ExcludeResourceTags") or []
        if resource_tags and exclude_tags:
            raise ValidationException("You can't specify exclusion tags for tag-level retention rules.")
        if resource_tags and request.get("LockConfiguration"):
            raise ValidationException("Only Region-level retention rules can be locked.")
        identifier = uuid.uuid4().hex[:11]
        rule = Rule(
            identifier=identifier,
            rule_arn=f"arn:{self.partition}:rbin:{self.region_name}:{self.account_id}:rule/{identifier}",
            resource_type=str(resource_type),
            retention_period={"RetentionPeriodValue": value, "RetentionPeriodUnit": "DAYS"},
            description=str(request.get("Description") or ""),
            resource_tags=list(resource_tags),
            exclude_resource_tags=list(exclude_tags),
            tags=list(request.get("Tags") or []),
            lock_configuration=request.get("LockConfiguration"),
        )
        self.rules[identifier] = rule
        return rule

    def get_rule(self, identifier: str) -> Rule:
        if identifier not in self.rules:
            raise ResourceNotFoundException(identifier)
        return self.rules[identifier]

    def delete_rule(self, identifier: str) -> None:
        if self.get_rule(identifier).lock_state == "locked":
            raise ConflictException(f"Rule {identifier} is locked and can't be deleted.")
        del self.rules[identifier]

    def list_rules(self, request: dict[str, Any]) -> list[Rule]:
        resource_type = request.get("ResourceType")
        if resource_type not in RESOURCE_TYPES:
            raise ValidationException(f"ResourceType must be one of {', '.join(RESOURCE_TYPES)}.")
        wanted_tags = request.get("ResourceTags") or []
        wanted_excludes = request.get("ExcludeResourceTags") or []
        lock_state = request.get("LockState")
        return [
            rule
            for rule in self.rules.values()
            if rule.resource_type == resource_type
            and all(tag in rule.resource_tags for tag in wanted_tags)
            and all(tag in rule.exclude_resource_tags for tag in wanted_excludes)
            and (lock_state is None or rule.lock_state == lock_state)
        ]


class RecycleBinResponse(BaseResponse):
    def __init__(self) -> None:
        super().__init__(service_name=SERVICE)
        self.automated_parameter_parsing = True

    @property
    def backend(self) -> RecycleBinBackend:
        return rbin_backends[self.current_account][self.region]

    def _identifier(self) -> str:
        return str(self._get_param("Identifier") or self._get_param("identifier"))

    def create_rule(self) -> ActionResult:
        return ActionResult(self.backend.create_rule(dict(self.params)).describe())

    def get_rule(self) -> ActionResult:
        return ActionResult(self.backend.get_rule(self._identifier()).describe())

    def delete_rule(self) -> ActionResult:
        self.backend.delete_rule(self._identifier())
        return EmptyResult()

    def list_rules(self) -> ActionResult:
        rules = self.backend.list_rules(dict(self.params))
        max_results = self._get_param("MaxResults")
        if max_results is not None and not 1 <= int(max_results) <= 1000:
            raise ValidationException("MaxResults must be between 1 and 1000.")
        start = 0
        token = self._get_param("NextToken")
        if token:
            try:
                start = int(base64.urlsafe_b64decode(str(token).encode()).decode())
            except (ValueError, binascii.Error, UnicodeDecodeError):
                raise ValidationException("The NextToken is not valid.", "INVALID_PAGE_TOKEN") from None
        end = len(rules) if max_results is None else start + int(max_results)
        result: dict[str, Any] = {"Rules": [rule.summary() for rule in rules[start:end]]}
        if end < len(rules):
            result["NextToken"] = base64.urlsafe_b64encode(str(end).encode()).decode()
        return ActionResult(result)


rbin_backends = BackendDict(RecycleBinBackend, SERVICE)


def rules_of(account: str, region: str) -> list[Rule]:
    return list(rbin_backends[account][region].rules.values())


def apply() -> None:
    # `moto.backends.get_backend("rbin")` imports `moto.rbin` and reads its `rbin_backends`.
    sys.modules[f"moto.{SERVICE}"] = sys.modules[__name__]
    patterns = moto.backend_index.backend_url_patterns
    if not any(name == SERVICE for name, _ in patterns):
        patterns.append((SERVICE, re.compile(URL_BASE)))
