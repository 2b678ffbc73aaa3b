"""Least privilege of the enforce Lambda: in the synthesized templates, and per remediation action."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Template

from ami_governance.models.policy import GovernancePolicy
from stacks.permissions import Permission, attach_policy, enforce_permissions
from tests.infra.support import (
    IMAGE_REFERENCES_ONLY_READS,
    REPORT_LISTINGS,
    allowed_actions,
    as_list,
    resolved_statements,
    role_statements,
)

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

REMEDIATION_ACTIONS = {
    "ec2:DisableImage",
    "ec2:EnableImage",
    "ec2:EnableImageDeprecation",
    "ec2:DisableImageDeprecation",
    "ec2:DeregisterImage",
}


ENFORCE_HANDLER = "handlers.enforce.handler"


def _enforce_statements(template: Template) -> list[dict[str, Any]]:
    return role_statements(template, ENFORCE_HANDLER)


def _resolved_statements(policy: GovernancePolicy) -> list[dict[str, Any]]:
    return resolved_statements(enforce_permissions, policy)


def test_create_tags_is_scoped_to_images_and_snapshots_of_governed_regions(audit_app: Any) -> None:
    # Given the enforce role's statements
    statements = _enforce_statements(audit_app.template(audit_app.home))
    [tagging] = [s for s in statements if s.get("Sid") == "WriteOwnTagNamespaceOnly"]

    # Then tagging covers this account's images and snapshots in each governed region (their ARNs carry no
    # account: ec2:Owner limits them), own prefix only
    regions = audit_app.policy.governed_regions
    assert tagging["Action"] == "ec2:CreateTags"
    expected = [f"arn:aws:ec2:{r}::image/*" for r in regions] + [f"arn:aws:ec2:{r}::snapshot/*" for r in regions]
    assert tagging["Resource"] == expected
    assert tagging["Condition"] == {
        "ForAllValues:StringLike": {"aws:TagKeys": [f"{audit_app.policy.tag_prefix}*"]},
        "Null": {"aws:TagKeys": "false"},
        "StringEquals": {"ec2:Owner": {"Ref": "AWS::AccountId"}},
    }


def test_delete_tags_is_scoped_by_tag_keys_without_ec2_owner(audit_app: Any) -> None:
    # Given the enforce role's statements
    statements = _enforce_statements(audit_app.template(audit_app.home))
    [removing] = [s for s in statements if "ec2:DeleteTags" in as_list(s["Action"]) and s["Effect"] == "Allow"]

    # Then DeleteTags has a statement of its own on the same images and snapshots, own prefix only, and no
    # ec2:Owner condition: DeleteTags requests carry no ec2:Owner key, so StringEquals on it denied every call
    regions = audit_app.policy.governed_regions
    assert removing["Sid"] == "RemoveOwnTagNamespaceOnly"
    assert removing["Action"] == "ec2:DeleteTags"
    expected = [f"arn:aws:ec2:{r}::image/*" for r in regions] + [f"arn:aws:ec2:{r}::snapshot/*" for r in regions]
    assert removing["Resource"] == expected
    assert removing["Condition"] == {
        "ForAllValues:StringLike": {"aws:TagKeys": [f"{audit_app.policy.tag_prefix}*"]},
        "Null": {"aws:TagKeys": "false"},
    }


def test_the_protection_tag_is_out_of_reach(audit_app: Any) -> None:
    # Given the enforce role's statements, then it may neither set nor remove the protection tag
    statements = _enforce_statements(audit_app.template(audit_app.home))
    [deny] = [s for s in statements if s["Effect"] == "Deny"]
    assert sorted(as_list(deny["Action"])) == ["ec2:CreateTags", "ec2:DeleteTags"]
    # (nor the approval tag: the system must never approve an AMI for replication itself)
    policy = audit_app.policy
    assert deny["Condition"] == {
        "ForAnyValue:StringEquals": {"aws:TagKeys": [policy.protection_tag_key, policy.approval_tag_key]}
    }


def test_describe_images_is_limited_to_governed_regions(audit_app: Any) -> None:
    statements = _enforce_statements(audit_app.template(audit_app.home))
    [describe] = [s for s in statements if s.get("Sid") == "DescribeImagesInGovernedRegions"]
    assert describe["Action"] == "ec2:DescribeImages"
    assert describe["Resource"] == "*"
    assert describe["Condition"] == {"StringEquals": {"aws:RequestedRegion": list(audit_app.policy.governed_regions)}}


def test_launch_permissions_are_read_only_for_this_accounts_images_in_governed_regions(audit_app: Any) -> None:
    # Given the enforce role's statements
    statements = _enforce_statements(audit_app.template(audit_app.home))
    [reading] = [s for s in statements if "ec2:DescribeImageAttribute" in as_list(s["Action"])]

    # Then DescribeImageAttribute (authorized on the image, which supports ec2:Owner) is granted on the governed
    # regions' image ARNs and this account's images only, in a statement of its own
    assert reading["Sid"] == "ReadOwnImagesLaunchPermissions"
    assert reading["Effect"] == "Allow"
    assert reading["Action"] == "ec2:DescribeImageAttribute"
    assert reading["Resource"] == [f"arn:aws:ec2:{r}::image/*" for r in audit_app.policy.governed_regions]
    assert reading["Condition"] == {"StringEquals": {"ec2:Owner": {"Ref": "AWS::AccountId"}}}


@pytest.mark.parametrize("app_fixture", ["audit_app", "cleanup_enabled_app"])
def test_only_unavoidable_actions_run_on_every_resource(app_fixture: str, request: pytest.FixtureRequest) -> None:
    # Given every Allow statement on '*' in the home stack's policies (enforce's and cleanup's roles)
    built: Any = request.getfixturevalue(app_fixture)
    statements = [
        s
        for p in built.template(built.home).find_resources("AWS::IAM::Policy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    on_everything = {
        a for s in statements if s["Effect"] == "Allow" and s["Resource"] == "*" for a in as_list(s["Action"])
    }

    # Then they are the actions that support no resource-level permissions (the cdk-nag acknowledgments say so):
    # the report's listings among them
    assert on_everything == {
        "ec2:DescribeImages",
        "ec2:DescribeSnapshots",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        *REPORT_LISTINGS,
        *IMAGE_REFERENCES_ONLY_READS,
    }


def test_audit_mode_grants_no_remediation(audit_app: Any) -> None:
    # Given the audit-mode app, then no remediation action is allowed, whatever the configured action
    assert audit_app.policy.remediation.action.value == "disable"
    assert allowed_actions(_enforce_statements(audit_app.template(audit_app.home))) & REMEDIATION_ACTIONS == set()


def test_enforce_disable_grants_disable_and_enable_on_unprotected_images(enforce_disable_app: Any) -> None:
    # Given an app built from an enforce-mode policy whose remediation is 'disable'
    policy = enforce_disable_app.policy
    statements = _enforce_statements(enforce_disable_app.template(enforce_disable_app.home))

    # Then DisableImage (never on a protected image) and the two undo actions are granted on governed image
    # ARNs, only
    assert allowed_actions(statements) & REMEDIATION_ACTIONS == {
        "ec2:DisableImage",
        "ec2:EnableImage",
        "ec2:DisableImageDeprecation",
    }
    images = [f"arn:aws:ec2:{r}::image/*" for r in policy.governed_regions]
    [remediate] = [s for s in statements if s.get("Sid") == "RemediateUnprotectedImages"]
    assert remediate["Action"] == "ec2:DisableImage"
    assert remediate["Resource"] == images
    assert remediate["Condition"] == {"Null": {f"aws:ResourceTag/{policy.protection_tag_key}": "true"}}
    [undo] = [s for s in statements if s.get("Sid") == "UndoRemediation"]
    assert undo["Action"] == ["ec2:DisableImageDeprecation", "ec2:EnableImage"]
    assert undo["Resource"] == images


@pytest.mark.parametrize(
    ("mode", "action", "expected"),
    [
        ("enforce", "deprecate", {"ec2:EnableImageDeprecation", "ec2:DisableImageDeprecation", "ec2:EnableImage"}),
        ("enforce", "disable", {"ec2:DisableImage", "ec2:EnableImage", "ec2:DisableImageDeprecation"}),
        # deregister only tags a deadline for now; a later scheduled sweep deregisters. The undo actions stay, for
        # AMIs remediated under an earlier policy.
        ("enforce", "deregister", {"ec2:EnableImage", "ec2:DisableImageDeprecation"}),
        ("enforce", "none", {"ec2:EnableImage", "ec2:DisableImageDeprecation"}),
        ("audit", "deprecate", set()),
    ],
)
def test_remediation_permissions_follow_the_policy(
    mode: str, action: str, expected: set[str], make_policy: Callable[..., GovernancePolicy]
) -> None:
    # Given a policy with this mode and remediation action
    policy = make_policy(mode=mode, remediation={"action": action})

    # When the enforce permissions are derived from it
    statements = _resolved_statements(policy)

    # Then exactly the matching remediation actions are allowed
    assert allowed_actions(statements) & REMEDIATION_ACTIONS == expected


def test_wildcard_without_a_reason_is_refused() -> None:
    # Given a statement with a wildcard resource and no reason
    stack = Stack(App(), "Probe")
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    statement = iam.PolicyStatement(sid="Careless", actions=["ec2:DescribeSnapshots"], resources=["*"])

    # When attaching it, then it is refused
    with pytest.raises(ValueError, match="wildcard but no reason"):
        attach_policy(stack, "Policy", role, [Permission(statement)])
