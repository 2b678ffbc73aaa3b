"""cdk-nag (v3) wiring: the AwsSolutions pack as a CDK validation plugin, and acknowledgments with reasons.

cdk-nag v3 dropped `NagSuppressions`; findings are acknowledged with CDK's own `Validations.of(c).acknowledge()`.
An acknowledgment applies to the construct it is made on and everything below it, and names one finding
exactly: IAM wildcard findings carry the wildcard, e.g. `AwsSolutions-IAM5[Resource::*]`.
"""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import Acknowledgment, App, Stack, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

WILDCARD_RULE = "AwsSolutions-IAM5"


def add_nag_checks(app: App) -> AwsSolutionsChecks:
    """Run the AwsSolutions pack at synth; any unacknowledged finding (error or warning) fails the synth."""
    checks = AwsSolutionsChecks(app)
    Validations.of(app).add_plugins(checks)
    return checks


def acknowledge(construct: IConstruct, rule_id: str, reason: str) -> None:
    if len(reason) < 20:
        raise ValueError(f"acknowledging {rule_id} needs a real reason, got {reason!r}")
    Validations.of(construct).acknowledge(Acknowledgment(id=rule_id, reason=reason))


def wildcard_resource_finding(scope: IConstruct, resource: str) -> str:
    """The finding id cdk-nag reports for a wildcard resource, with tokens rendered the way cdk-nag renders them."""
    return f"{WILDCARD_RULE}[Resource::{_flatten(Stack.of(scope).resolve(resource))}]"


def wildcard_action_finding(action: str) -> str:
    return f"{WILDCARD_RULE}[Action::{action}]"


def _flatten(node: Any) -> str:  # noqa: PLR0911 - one return per CloudFormation intrinsic, as cdk-nag has
    # Mirrors cdk-nag's flattenCfnReference, so acknowledgments name exactly what cdk-nag reports.
    if node is None:
        return ""
    if isinstance(node, str):
        return node.replace("${", "<").replace("}", ">")
    if isinstance(node, dict):
        if "Fn::Join" in node:
            delimiter, items = node["Fn::Join"]
            return str(delimiter).join(_flatten(item) for item in items)
        if "Fn::Sub" in node:
            return _flatten(node["Fn::Sub"])
        if "Fn::GetAtt" in node:
            resource, attribute = node["Fn::GetAtt"]
            return f"<{_flatten(resource)}.{_flatten(attribute)}>"
        if "Fn::ImportValue" in node:
            return _flatten(node["Fn::ImportValue"])
        if "Ref" in node:
            return f"<{_flatten(node['Ref'])}>"
    return json.dumps(node, separators=(",", ":"))
