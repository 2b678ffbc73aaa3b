"""Least privilege of the cleanup Lambda: in the synthesized templates, and per cleanup setting."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aws_cdk.assertions import Template

from ami_governance.models.policy import GovernancePolicy
from stacks.permissions import cleanup_permissions
from tests.infra.support import allowed_actions, as_list, resolved_statements, role_statements, statement_by_sid

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

CLEANUP_HANDLER = "handlers.cleanup.handler"
# Everything cleanup may change in EC2; dry-run must grant none of it.
DESTRUCTIVE_ACTIONS = {"ec2:CreateTags", "ec2:DeleteTags", "ec2:DeleteSnapshot", "ec2:DeregisterImage"}


def _cleanup_statements(built: Any) -> list[dict[str, Any]]:
    return role_statements(built.template(built.home), CLEANUP_HANDLER)


def _snapshot_arns(regions: list[str]) -> list[str]:
    # Snapshot ARNs carry no account: the statements limit them to this account with ec2:Owner.
    return [f"arn:aws:ec2:{r}::snapshot/*" for r in regions]


OWNED_BY_THIS_ACCOUNT = {"StringEquals": {"ec2:Owner": {"Ref": "AWS::AccountId"}}}


def _unprotected(policy: GovernancePolicy) -> dict[str, Any]:
    return {"Null": {f"aws:ResourceTag/{policy.protection_tag_key}": "true"}}


def _logical_id(template: Template, resource_type: str) -> str:
    resources = template.find_resources(resource_type)
    if resource_type == "AWS::DynamoDB::Table":
        # The inventory, not the idempotency table (keyed by `id`).
        resources = {k: r for k, r in resources.items() if r["Properties"]["KeySchema"][0]["AttributeName"] != "id"}
    [logical_id] = resources
    return str(logical_id)


def test_dry_run_reads_images_and_snapshots_and_changes_nothing(audit_app: Any) -> None:
    # Given the repository policy, whose cleanup is a dry-run
    policy = audit_app.policy
    assert policy.cleanup.dry_run
    statements = _cleanup_statements(audit_app)

    # Then the role may describe images and snapshots in the governed regions, and may change no EC2 resource
    describe = statement_by_sid(statements, "DescribeImagesAndSnapshotsInGovernedRegions")
    assert describe["Action"] == ["ec2:DescribeImages", "ec2:DescribeSnapshots"]
    assert describe["Resource"] == "*"
    assert describe["Condition"] == {"StringEquals": {"aws:RequestedRegion": list(policy.governed_regions)}}
    assert {a for a in allowed_actions(statements) if a.startswith("ec2:")} == {
        "ec2:DescribeImages",
        "ec2:DescribeSnapshots",
    }
    assert not [s for s in statements if s["Effect"] == "Deny"]


@pytest.mark.parametrize("app_fixture", ["audit_app", "cleanup_enabled_app"])
def test_inventory_policy_and_topic_access(app_fixture: str, request: pytest.FixtureRequest) -> None:
    # Given the cleanup role's statements
    built: Any = request.getfixturevalue(app_fixture)
    template = built.template(built.home)
    statements = _cleanup_statements(built)

    # Then it reads and updates inventory items (never puts or deletes them), reads the policy, publishes notices
    inventory = statement_by_sid(statements, "RecordInventory")
    assert inventory["Action"] == ["dynamodb:GetItem", "dynamodb:UpdateItem"]
    assert inventory["Resource"] == {"Fn::GetAtt": [_logical_id(template, "AWS::DynamoDB::Table"), "Arn"]}
    read_policy = statement_by_sid(statements, "ReadPolicy")
    assert read_policy["Action"] == "ssm:GetParameter"
    assert {"Ref": _logical_id(template, "AWS::SSM::Parameter")} in read_policy["Resource"]["Fn::Join"][1]
    [publish] = [s for s in statements if s["Action"] == "sns:Publish"]
    assert publish["Resource"] == {"Ref": _logical_id(template, "AWS::SNS::Topic")}
    services = {a.split(":")[0] for a in allowed_actions(statements)}
    assert services == {"ec2", "dynamodb", "ssm", "sns", "kms", "logs", "xray", "sqs"}


def test_deleting_cleanup_deletes_only_unprotected_snapshots_of_this_account(cleanup_enabled_app: Any) -> None:
    # Given a policy that deletes (dry_run false)
    policy = cleanup_enabled_app.policy
    statements = _cleanup_statements(cleanup_enabled_app)
    snapshots = _snapshot_arns(policy.governed_regions)

    # Then DeleteSnapshot is allowed on this account's snapshots in the governed regions, never a protected one
    delete = statement_by_sid(statements, "DeleteUnprotectedSnapshots")
    assert delete["Action"] == "ec2:DeleteSnapshot"
    assert delete["Resource"] == snapshots
    assert delete["Condition"] == {**_unprotected(policy), **OWNED_BY_THIS_ACCOUNT}
    assert [s["Sid"] for s in statements if "ec2:DeleteSnapshot" in as_list(s["Action"])] == [
        "DeleteUnprotectedSnapshots"
    ]


def test_deleting_cleanup_marks_snapshots_in_its_own_tag_namespace_only(cleanup_enabled_app: Any) -> None:
    # Given a policy that deletes
    policy = cleanup_enabled_app.policy
    statements = _cleanup_statements(cleanup_enabled_app)
    snapshots = _snapshot_arns(policy.governed_regions)

    # Then it may set (and take back) tags under its prefix on this account's snapshots, and never the
    # protection tag
    own_tag_keys = {
        "ForAllValues:StringLike": {"aws:TagKeys": [f"{policy.tag_prefix}*"]},
        "Null": {"aws:TagKeys": "false"},
    }
    mark = statement_by_sid(statements, "MarkSnapshotsInOwnTagNamespaceOnly")
    assert mark["Action"] == "ec2:CreateTags"
    assert mark["Resource"] == snapshots
    assert mark["Condition"] == {**own_tag_keys, **OWNED_BY_THIS_ACCOUNT}
    # Taking the mark back has its own statement, without ec2:Owner: DeleteTags requests carry no ec2:Owner key,
    # and a StringEquals on it denied every un-mark after InvalidSnapshot.InUse
    unmark = statement_by_sid(statements, "UnmarkSnapshotsInOwnTagNamespaceOnly")
    assert unmark["Action"] == "ec2:DeleteTags"
    assert unmark["Resource"] == snapshots
    assert unmark["Condition"] == own_tag_keys
    assert [s["Sid"] for s in statements if s["Effect"] == "Allow" and "ec2:DeleteTags" in as_list(s["Action"])] == [
        "UnmarkSnapshotsInOwnTagNamespaceOnly"
    ]
    [deny] = [s for s in statements if s["Effect"] == "Deny"]
    assert deny["Action"] == ["ec2:CreateTags", "ec2:DeleteTags"]
    assert deny["Resource"] == snapshots
    assert deny["Condition"] == {
        "ForAnyValue:StringEquals": {"aws:TagKeys": [policy.protection_tag_key, policy.approval_tag_key]}
    }


def test_cascading_cleanup_deregisters_only_unprotected_images(cleanup_enabled_app: Any) -> None:
    # Given a policy that deletes and cascades to replicas
    policy = cleanup_enabled_app.policy
    assert policy.cleanup.cascade_to_replicas
    statements = _cleanup_statements(cleanup_enabled_app)

    # Then DeregisterImage is allowed on images of the governed regions that carry no protection tag
    deregister = statement_by_sid(statements, "DeregisterUnprotectedReplicas")
    assert deregister["Action"] == "ec2:DeregisterImage"
    assert deregister["Resource"] == [f"arn:aws:ec2:{r}::image/*" for r in policy.governed_regions]
    assert deregister["Condition"] == _unprotected(policy)


@pytest.mark.parametrize(
    ("dry_run", "cascade", "expected"),
    [
        (True, False, set()),
        # Cascading is destructive too: a dry-run deregisters nothing.
        (True, True, set()),
        (False, False, {"ec2:CreateTags", "ec2:DeleteTags", "ec2:DeleteSnapshot"}),
        (False, True, {"ec2:CreateTags", "ec2:DeleteTags", "ec2:DeleteSnapshot", "ec2:DeregisterImage"}),
    ],
)
def test_destructive_permissions_follow_the_cleanup_settings(
    dry_run: bool, cascade: bool, expected: set[str], make_policy: Callable[..., GovernancePolicy]
) -> None:
    # Given a policy with these cleanup settings
    policy = make_policy(cleanup={"dry_run": dry_run, "cascade_to_replicas": cascade})

    # When the cleanup permissions are derived from it
    statements = resolved_statements(cleanup_permissions, policy)

    # Then exactly the matching destructive actions are allowed, each only on resources without the protection tag
    # (tagging cannot touch the protection tag at all)
    assert allowed_actions(statements) & DESTRUCTIVE_ACTIONS == expected
    for statement in statements:
        actions = set(as_list(statement["Action"]))
        if statement["Effect"] == "Allow" and actions & {"ec2:DeleteSnapshot", "ec2:DeregisterImage"}:
            assert statement["Condition"]["Null"] == _unprotected(policy)["Null"]


def test_a_custom_protection_tag_guards_deletion(make_policy: Callable[..., GovernancePolicy]) -> None:
    # Given a deleting policy with its own protection tag key
    policy = make_policy(protection_tag="DoNotDelete", cleanup={"dry_run": False, "cascade_to_replicas": True})

    # When the cleanup permissions are derived from it
    statements = resolved_statements(cleanup_permissions, policy)

    # Then that key guards deletion and deregistration, and is the one tag cleanup may never set
    assert statement_by_sid(statements, "DeleteUnprotectedSnapshots")["Condition"]["Null"] == {
        "aws:ResourceTag/DoNotDelete": "true"
    }
    assert statement_by_sid(statements, "DeregisterUnprotectedReplicas")["Condition"] == {
        "Null": {"aws:ResourceTag/DoNotDelete": "true"}
    }
    assert statement_by_sid(statements, "NeverSetProtectionTag")["Condition"] == {
        "ForAnyValue:StringEquals": {"aws:TagKeys": ["DoNotDelete", policy.approval_tag_key]}
    }
