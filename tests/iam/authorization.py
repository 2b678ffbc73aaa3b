"""The offline authorization check: every IAM statement against AWS's service authorization reference.

For each statement (identity or resource policy, see `statements.py`):

- every action exists (a wildcard is expanded; one that matches nothing is a finding);
- every resource matches a resource type the action accepts. `*` is accepted only for an action that accepts no
  resource type at all (then `*` is all IAM takes); an action that has resource types must name them. A wildcard
  action needs one of its actions to accept the resource: the others grant nothing there;
- every action the reference lists as a dependency of an allowed, named action (`ec2:CopyImage` on an image
  needs `ec2:CreateTags`) is allowed to the same role;
- every condition key is one the action supports with the resource types the resource matches, or with any
  resource (the reference's "" row), or a global key. The tag keys `aws:RequestTag/…`, `aws:ResourceTag/…` and
  `aws:TagKeys` are global in name only (a request carries them only where the service supports them), so they are
  checked like service keys. A key the reference does not list is a finding unless it is in SUPPORTED_ELSEWHERE,
  with the AWS documentation that shows it works;
- the EXTRA_CHECKS: service-specific rules the reference does not encode, each with its source.

A condition on a key that is absent from the request never matches: an Allow under it allows nothing, a Deny
under it denies nothing. That is what the condition-key check finds before AWS does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import product
from typing import Any

from tests.iam.patterns import (
    condition_key_matches,
    granted_action_matches,
    resource_matches_arn_format,
)
from tests.iam.reference import Action, AuthorizationReference
from tests.iam.statements import PolicyKind, Statement, template_statements

# Tag condition keys: named like global keys, present only where the action supports them.
_TAG_KEYS = ("aws:requesttag/", "aws:resourcetag/", "aws:tagkeys")


@dataclass(frozen=True)
class Finding:
    where: str
    sid: str | None
    action: str
    problem: str
    resource: str | None = None
    condition_key: str | None = None

    def __str__(self) -> str:
        parts = [f"{self.where} [Sid {self.sid or '-'}] {self.action}: {self.problem}"]
        if self.condition_key is not None:
            parts.append(f"key {self.condition_key}")
        if self.resource is not None:
            parts.append(f"resource {self.resource}")
        return "; ".join(parts)


@dataclass(frozen=True)
class SupportedElsewhere:
    """A condition key the reference does not list for an action's row, documented by AWS to work with that
    service's actions on `resource_type`."""

    condition_key: str
    service: str
    resource_type: str
    reason: str
    source: str


# The one allowlist. Keep it small: each entry needs AWS documentation that the key works, and a reason.
SUPPORTED_ELSEWHERE: tuple[SupportedElsewhere, ...] = (
    SupportedElsewhere(
        condition_key="kms:ResourceAliases",
        service="kms",
        resource_type="key",
        reason=(
            "the copy role names a policy key by its alias: the resource is any key of the account, narrowed to the "
            "key that alias names. The reference lists kms:ResourceAliases for the key resource type only, while "
            "KMS documents it for every operation authorized on a KMS key (cryptographic operations, DescribeKey, "
            "CreateGrant) in IAM policies"
        ),
        source=(
            "AWS KMS Developer Guide, 'AWS KMS condition keys' (kms:ResourceAliases), "
            "https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-resource-aliases"
            "; and 'Use aliases to control access to KMS keys', "
            "https://docs.aws.amazon.com/kms/latest/developerguide/alias-authorization.html"
        ),
    ),
)


@dataclass(frozen=True)
class ExtraCheck:
    """A rule the reference does not encode: `problems` returns what is wrong with a statement (nothing if
    the rule does not apply)."""

    name: str
    rule: str
    source: str
    problems: Callable[[Statement, AuthorizationReference], list[tuple[str, str]]]  # (problem, condition key)


def _condition_keys(statement: Statement) -> list[tuple[str, str]]:
    """(operator, key) for every condition of the statement."""
    return [(operator, key) for operator, keys in statement.conditions.items() for key in keys]


_SOURCE_KEYS = {"aws:sourceaccount", "aws:sourcearn", "aws:sourceorgid"}


def _eventbridge_to_encrypted_topic(statement: Statement, _: AuthorizationReference) -> list[tuple[str, str]]:
    if not (statement.kind is PolicyKind.KEY and statement.key_encrypts_topic):
        return []
    if "events.amazonaws.com" not in statement.service_principals:
        return []
    return [
        ("EventBridge cannot publish to an SNS topic encrypted with this key under this condition", key)
        for _, key in _condition_keys(statement)
        if key.lower() in _SOURCE_KEYS
    ]


def _for_all_values_without_null_guard(statement: Statement, _: AuthorizationReference) -> list[tuple[str, str]]:
    if statement.effect != "Allow":
        return []
    null_false = {
        key.lower()
        for key, value in statement.conditions.get("Null", {}).items()
        if str(value).lower() == "false" or value is False
    }
    return [
        ("ForAllValues is true when the request has no such key: add Null <key> false", key)
        for operator, key in _condition_keys(statement)
        if operator.startswith("ForAllValues:") and key.lower() not in null_false
    ]


# Global multivalued keys (IAM User Guide, 'AWS global condition context keys'); service keys have their type in
# the reference.
_GLOBAL_MULTIVALUED = {
    "aws:tagkeys",
    "aws:calledvia",
    "aws:principalorgpaths",
    "aws:principalservicenameslist",
    "aws:resourceorgpaths",
    "aws:sourceorgpaths",
}


def _is_multivalued(key: str, reference: AuthorizationReference) -> bool:
    key_type = reference.condition_key_type(key)
    return key.lower() in _GLOBAL_MULTIVALUED or (key_type is not None and key_type.startswith("ArrayOf"))


def _set_operator_matches_key(statement: Statement, reference: AuthorizationReference) -> list[tuple[str, str]]:
    problems = []
    for operator, key in _condition_keys(statement):
        if operator.startswith("Null"):
            continue
        set_operator = operator.startswith(("ForAllValues:", "ForAnyValue:"))
        multivalued = _is_multivalued(key, reference)
        if set_operator and not multivalued:
            problems.append((f"{operator} on a single-valued key", key))
        elif multivalued and not set_operator:
            problems.append((f"{operator} on a multivalued key needs ForAllValues or ForAnyValue", key))
    return problems


EXTRA_CHECKS: tuple[ExtraCheck, ...] = (
    ExtraCheck(
        name="EventBridge to a KMS-encrypted SNS topic",
        rule=(
            "the key policy statement that lets events.amazonaws.com use the key of an SNS topic carries no "
            "aws:SourceAccount, aws:SourceArn or aws:SourceOrgID condition (scope the topic policy instead, or the "
            "key by kms:EncryptionContext:aws:sns:topicArn)"
        ),
        source=(
            "Amazon SNS Developer Guide, 'Managing Amazon SNS encryption keys and costs', section 'Enable "
            "compatibility between event sources from AWS services and encrypted topics': adding aws:SourceAccount, "
            "aws:SourceArn and aws:SourceOrgID to a KMS key policy is not supported for EventBridge-to-encrypted "
            "topics. https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html"
        ),
        problems=_eventbridge_to_encrypted_topic,
    ),
    ExtraCheck(
        name="ForAllValues needs the key to be present",
        rule="an Allow statement with ForAllValues:<op> on a key also requires Null <key> false",
        source=(
            "IAM User Guide, 'Single-valued vs. multivalued context keys': ForAllValues returns true when the "
            "request has no value for the key (an empty set). "
            "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-"
            "context-keys.html"
        ),
        problems=_for_all_values_without_null_guard,
    ),
    ExtraCheck(
        name="Set operators only on multivalued keys",
        rule=(
            "ForAllValues/ForAnyValue only on multivalued keys (type ArrayOf… in the reference, or a global "
            "multivalued key), and a multivalued key only with one of them"
        ),
        source=(
            "IAM User Guide, 'Single-valued vs. multivalued context keys' (use set operators only with multivalued "
            "keys); IAM Access Analyzer policy checks on set operators. "
            "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-"
            "context-keys.html"
        ),
        problems=_set_operator_matches_key,
    ),
)


def _is_global(key: str) -> bool:
    lowered = key.lower()
    return lowered.startswith("aws:") and not lowered.startswith(_TAG_KEYS)


def _accepts(action: Action, resource: str, reference: AuthorizationReference) -> list[str]:
    """The resource types of `action` that `resource` matches; [""] for `*` on an action without any."""
    if resource == "*":
        return [""] if not action.resource_types else []
    return [
        resource_type
        for resource_type in action.resource_types
        if resource_matches_arn_format(resource, reference.arn_format(action.service, resource_type))
    ]


def _allowlisted(key: str, action: Action, resource_types: Iterable[str]) -> bool:
    return any(
        entry.service == action.service
        and entry.resource_type in resource_types
        and condition_key_matches(entry.condition_key, key)
        for entry in SUPPORTED_ELSEWHERE
    )


def _supported(key: str, action: Action, resource_types: list[str]) -> bool:
    if _is_global(key):
        return True
    templates = set(action.any_resource_keys)
    for resource_type in resource_types:
        templates |= action.resource_types.get(resource_type, frozenset())
    return any(condition_key_matches(template, key) for template in templates) or _allowlisted(
        key, action, resource_types
    )


def check_statement(statement: Statement, reference: AuthorizationReference) -> list[Finding]:
    findings: list[Finding] = []

    def finding(action: str, problem: str, resource: str | None = None, key: str | None = None) -> None:
        findings.append(Finding(statement.where, statement.sid, action, problem, resource, key))

    for unresolved in statement.unresolved:
        finding("-", unresolved)
    for principal in statement.service_principals:
        if not principal.endswith((".amazonaws.com", ".amazonaws.com.cn")):
            finding("-", f"service principal {principal!r} is not an AWS service")
    keys = [key for _, key in _condition_keys(statement)]
    for pattern in statement.actions:
        actions = reference.actions(pattern)
        if not actions:
            finding(pattern, "no such action in the service authorization reference")
        elif not statement.negated:
            for resource in statement.resources:
                findings += _resource_findings(statement, pattern, actions, resource, keys, reference)
    for check in EXTRA_CHECKS:
        for problem, key in check.problems(statement, reference):
            finding(",".join(statement.actions), f"{check.name}: {problem}", None, key)
    return findings


def _resource_findings(
    statement: Statement,
    pattern: str,
    actions: Sequence[Action],
    resource: str,
    keys: Sequence[str],
    reference: AuthorizationReference,
) -> list[Finding]:
    """What is wrong with granting `pattern` (expanded to `actions`) on `resource` under the condition `keys`."""
    accepting = [(action, _accepts(action, resource, reference)) for action in actions]
    accepting = [(action, types) for action, types in accepting if types]
    if not accepting:
        accepted = sorted({t for action in actions for t in action.resource_types}) or ["*"]
        problem = f"the resource matches none of its resource types {accepted}"
        return [Finding(statement.where, statement.sid, pattern, problem, resource, None)]
    return [
        Finding(
            statement.where,
            statement.sid,
            action.qualified_name,
            f"condition key not supported with resource type(s) {resource_types} "
            "(the request never carries it: the condition never matches)",
            resource,
            key,
        )
        for action, resource_types in accepting
        for key in keys
        if not _supported(key, action, resource_types)
    ]


def _unchecked_managed_policies(template: Mapping[str, Any], stack_name: str) -> list[Finding]:
    # A managed policy outside the template (an AWS managed policy, say) has statements this check cannot see.
    return [
        Finding(f"{stack_name}: AWS::IAM::Role {logical_id}", None, "-", "managed policy not in the template", str(arn))
        for logical_id, resource in template.get("Resources", {}).items()
        if resource["Type"] == "AWS::IAM::Role"
        for arn in resource.get("Properties", {}).get("ManagedPolicyArns", [])
        if not (isinstance(arn, dict) and "Ref" in arn)
    ]


def _grants_to_roles(statement: Statement) -> bool:
    return statement.kind is PolicyKind.IDENTITY and statement.effect == "Allow" and not statement.negated


def _named_grants(statement: Statement, reference: AuthorizationReference) -> Iterator[tuple[Action, str, str]]:
    """(action, resource, resource type) for each named (not wildcard) action of the statement and each resource
    type its resources match."""
    for pattern in statement.actions:
        if "*" in pattern or "?" in pattern:
            continue
        for action in reference.actions(pattern):
            for resource in statement.resources:
                for resource_type in _accepts(action, resource, reference):
                    yield action, resource, resource_type


def _missing_dependent_actions(statements: list[Statement], reference: AuthorizationReference) -> list[Finding]:
    """Per role: each action the reference says an allowed action depends on (with the resource type the
    statement's resource matches) is allowed to that role too. Named actions only: a wildcard such as
    `ec2:Describe*` covers actions whose dependencies are only needed for options this code does not use."""
    allowed: dict[str, list[str]] = {}
    for statement in filter(_grants_to_roles, statements):
        for role in statement.roles:
            allowed.setdefault(role, []).extend(statement.actions)
    findings = []
    for statement in filter(_grants_to_roles, statements):
        for action, resource, resource_type in _named_grants(statement, reference):
            for dependent, role in product(sorted(action.dependent_actions.get(resource_type, ())), statement.roles):
                if not any(granted_action_matches(granted, dependent) for granted in allowed[role]):
                    problem = f"{role} lacks {dependent}, which it depends on ({resource_type or 'any resource'})"
                    findings.append(Finding(statement.where, statement.sid, action.qualified_name, problem, resource))
    return findings


def check_statements(statements: Iterable[Statement], reference: AuthorizationReference) -> list[Finding]:
    statements = list(statements)
    findings = [finding for statement in statements for finding in check_statement(statement, reference)]
    return findings + _missing_dependent_actions(statements, reference)


def check_template(
    template: Mapping[str, Any], *, stack_name: str, region: str, reference: AuthorizationReference
) -> list[Finding]:
    """Every finding of the authorization check on one synthesized template."""
    statements = template_statements(template, stack_name=stack_name, region=region)
    return _unchecked_managed_policies(template, stack_name) + check_statements(statements, reference)
