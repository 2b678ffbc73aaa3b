"""Least privilege of the report Lambda: read-only unless the sweep acts, then exactly the sweep's actions, never on
a protected resource; in the synthesized templates and per sweep setting."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import pytest

from ami_governance.models.policy import GovernancePolicy
from stacks.permissions import report_permissions
from tests.infra.support import (
    IMAGE_REFERENCES_ONLY_READS,
    REPORT_LISTINGS,
    allowed_actions,
    as_list,
    resolved_statements,
    role_statements,
    statement_by_sid,
)

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

REPORT_HANDLER = "handlers.report.handler"
OBJECTS = ["arn:aws:s3:::reports-bucket/reports/*", "arn:aws:s3:::reports-bucket/latest/*"]
OWNED_BY_THIS_ACCOUNT = {"StringEquals": {"ec2:Owner": {"Ref": "AWS::AccountId"}}}
# EC2 User Guide, "Identify your resources referencing specified AMIs": what DescribeImageReferences reads with the
# caller's permissions is granted under this condition (AmazonEC2ImageReferencesAccessPolicy).
CALLED_VIA_EC2_IMAGES = {"ForAnyValue:StringEquals": {"aws:CalledVia": ["ec2-images.amazonaws.com"]}}

READ_ONLY = {
    *REPORT_LISTINGS, *IMAGE_REFERENCES_ONLY_READS,
    "ec2:DescribeImageAttribute", "ssm:GetParameters", "imagebuilder:GetContainerRecipe",
    "s3:PutObject",
    # the common grants of every governed function (home_stack._grant_common, GovernedFunction)
    "ssm:GetParameter", "sns:Publish", "kms:Decrypt", "kms:GenerateDataKey*", "logs:CreateLogStream",
    "logs:PutLogEvents", "xray:PutTraceSegments", "xray:PutTelemetryRecords", "sqs:SendMessage",
    "dynamodb:Scan", "dynamodb:UpdateItem",
}  # fmt: skip
SWEEP_WRITES = {"ec2:CreateTags", "ec2:DeleteTags", "ec2:DeregisterImage", "ec2:DeleteSnapshot"}


def _statements(built: Any) -> list[dict[str, Any]]:
    return role_statements(built.template(built.home), REPORT_HANDLER)


def _unprotected(policy: GovernancePolicy) -> dict[str, Any]:
    return {"Null": {f"aws:ResourceTag/{policy.protection_tag_key}": "true"}}


def _arns(regions: list[str], resource: str) -> list[str]:
    # Image and snapshot ARNs carry no account.
    return [f"arn:aws:ec2:{r}::{resource}" for r in regions]


def test_without_the_sweep_the_report_reads_and_publishes_and_changes_nothing(audit_app: Any) -> None:
    # Given the repository policy, whose sweep is off
    policy = audit_app.policy
    assert not policy.report.sweep.enabled
    statements = _statements(audit_app)
    regions = list(policy.governed_regions)

    # Then the role grants exactly the listings, the per-image and parameter reads, its reports and the common grants
    assert allowed_actions(statements) == READ_ONLY
    assert not allowed_actions(statements) & SWEEP_WRITES
    assert not [s for s in statements if s["Effect"] == "Deny"]
    # the listings (no resource-level permissions) only in the governed regions
    listings = statement_by_sid(statements, "ListEstateInGovernedRegions")
    assert (listings["Action"], listings["Resource"]) == (REPORT_LISTINGS, "*")
    assert listings["Condition"] == {"StringEquals": {"aws:RequestedRegion": regions}}
    # launch permissions of this account's AMIs only
    attributes = statement_by_sid(statements, "ReadOwnImagesLaunchPermissions")
    assert attributes["Action"] == "ec2:DescribeImageAttribute"
    assert attributes["Resource"] == _arns(regions, "image/*")
    assert attributes["Condition"] == OWNED_BY_THIS_ACCOUNT
    # parameter values: this account's in the governed regions, and AWS's public ones
    parameters = statement_by_sid(statements, "ReadImageParameters")
    assert parameters["Action"] == "ssm:GetParameters"
    assert parameters["Resource"] == [
        *[{"Fn::Join": ["", [f"arn:aws:ssm:{r}:", {"Ref": "AWS::AccountId"}, ":parameter/*"]]} for r in regions],
        *[f"arn:aws:ssm:{r}:*:parameter/aws/service/*" for r in regions],
    ]
    # what the code never calls, and EC2 reads for DescribeImageReferences: only when EC2 calls it for that
    image_references = statement_by_sid(statements, "ReadForImageReferencesOnly")
    assert (image_references["Action"], image_references["Resource"]) == (IMAGE_REFERENCES_ONLY_READS, "*")
    assert image_references["Condition"] == CALLED_VIA_EC2_IMAGES
    recipes = statement_by_sid(statements, "ReadContainerRecipesForImageReferencesOnly")
    assert recipes["Action"] == "imagebuilder:GetContainerRecipe"
    assert recipes["Resource"] == [
        {"Fn::Join": ["", [f"arn:aws:imagebuilder:{r}:", {"Ref": "AWS::AccountId"}, ":container-recipe/*"]]}
        for r in regions
    ]
    assert recipes["Condition"] == CALLED_VIA_EC2_IMAGES
    # and only those: every other Allow of the role is usable by the code itself
    called_via = [s["Sid"] for s in statements if "aws:CalledVia" in str(s.get("Condition"))]
    assert called_via == ["ReadForImageReferencesOnly", "ReadContainerRecipesForImageReferencesOnly"]
    # reports under the two prefixes of the reports bucket, nothing else in S3 (no read, no delete)
    publish = statement_by_sid(statements, "PublishReports")
    assert publish["Action"] == "s3:PutObject"
    assert [r["Fn::Join"][1][1] for r in publish["Resource"]] == ["/reports/*", "/latest/*"]
    # the inventory: read whole (Scan), launch permissions recorded (UpdateItem), on the table only
    inventory = statement_by_sid(statements, "RecordInventory")
    assert inventory["Action"] == ["dynamodb:Scan", "dynamodb:UpdateItem"]


def test_with_the_sweep_acting_the_role_adds_exactly_its_writes_never_on_protected_resources(
    cleanup_enabled_app: Any,
) -> None:
    # Given a policy whose sweep acts (not a dry run), deleting orphaned snapshots and deregistering stale AMIs, and
    # whose clean-ups delete (so the retried ones do too)
    policy = cleanup_enabled_app.policy
    sweep = policy.report.sweep
    assert (sweep.enabled, sweep.dry_run, sweep.deregister_stale_unused, sweep.retry_deferred_cleanups) == (
        True, False, True, True,
    )  # fmt: skip
    statements = _statements(cleanup_enabled_app)
    regions = list(policy.governed_regions)
    images, snapshots = _arns(regions, "image/*"), _arns(regions, "snapshot/*")

    # Then it adds the sweep's writes, and GetItem for the clean-ups it retries through the clean-up service
    assert allowed_actions(statements) == READ_ONLY | SWEEP_WRITES | {"dynamodb:GetItem"}
    deregister = statement_by_sid(statements, "SweepDeregistersUnprotectedImages")
    assert (deregister["Action"], deregister["Resource"]) == ("ec2:DeregisterImage", images)
    assert deregister["Condition"] == {**_unprotected(policy), **OWNED_BY_THIS_ACCOUNT}
    delete = statement_by_sid(statements, "SweepDeletesUnprotectedSnapshots")
    assert (delete["Action"], delete["Resource"]) == ("ec2:DeleteSnapshot", snapshots)
    assert delete["Condition"] == {**_unprotected(policy), **OWNED_BY_THIS_ACCOUNT}
    # tags only in its own namespace, and never the protection or approval tag (the Deny the other roles have)
    tags = statement_by_sid(statements, "SweepTagsInOwnTagNamespaceOnly")
    assert tags["Condition"]["ForAllValues:StringLike"] == {"aws:TagKeys": [f"{policy.tag_prefix}*"]}
    assert tags["Condition"]["StringEquals"] == {"ec2:Owner": {"Ref": "AWS::AccountId"}}
    untag = statement_by_sid(statements, "SweepRemovesOwnTagNamespaceOnly")
    assert untag["Condition"] == {
        "ForAllValues:StringLike": {"aws:TagKeys": [f"{policy.tag_prefix}*"]}, "Null": {"aws:TagKeys": "false"}
    }  # fmt: skip
    [deny] = [s for s in statements if s["Effect"] == "Deny"]
    assert sorted(as_list(deny["Action"])) == ["ec2:CreateTags", "ec2:DeleteTags"]
    assert deny["Resource"] == images + snapshots
    assert deny["Condition"] == {
        "ForAnyValue:StringEquals": {"aws:TagKeys": [policy.protection_tag_key, policy.approval_tag_key]}
    }


def _actions(policy: GovernancePolicy) -> set[str]:
    return allowed_actions(resolved_statements(partial(report_permissions, report_objects=OBJECTS), policy))


@pytest.mark.parametrize(
    ("changes", "writes"),
    [
        # off, or on in dry-run: read-only
        ({"report": {"sweep": {"enabled": False, "dry_run": False}}}, set()),
        ({"report": {"sweep": {"enabled": True, "dry_run": True, "deregister_stale_unused": True}}}, set()),
        # on, with only the default actions: overdue AMIs are only deregistered in enforce mode, and deferred
        # clean-ups only delete in clean-up delete mode; verdict tags always
        ({"report": {"sweep": {"enabled": True, "dry_run": False}}}, {"ec2:CreateTags", "ec2:DeleteTags"}),
        (
            {"mode": "enforce", "report": {"sweep": {"enabled": True, "dry_run": False}}},
            {"ec2:CreateTags", "ec2:DeleteTags", "ec2:DeregisterImage"},
        ),
        (
            {"cleanup": {"dry_run": False}, "report": {"sweep": {"enabled": True, "dry_run": False}}},
            {"ec2:CreateTags", "ec2:DeleteTags", "ec2:DeleteSnapshot"},
        ),
        # a retried clean-up that deletes cascades to the replicas when the policy cascades
        (
            {
                "cleanup": {"dry_run": False, "cascade_to_replicas": True},
                "report": {"sweep": {"enabled": True, "dry_run": False}},
            },
            {"ec2:CreateTags", "ec2:DeleteTags", "ec2:DeleteSnapshot", "ec2:DeregisterImage"},
        ),
        (
            {"report": {"sweep": {"enabled": True, "dry_run": False, "delete_orphaned_snapshots_after_days": 0}}},
            {"ec2:CreateTags", "ec2:DeleteTags", "ec2:DeleteSnapshot"},
        ),
        (
            {
                "report": {
                    "sweep": {
                        "enabled": True,
                        "dry_run": False,
                        "deregister_overdue": False,
                        "retry_deferred_cleanups": False,
                        "deregister_stale_unused": True,
                    }
                }
            },
            {"ec2:CreateTags", "ec2:DeleteTags", "ec2:DeregisterImage"},
        ),
    ],
)
def test_the_sweep_gets_exactly_the_writes_its_settings_need(
    make_policy: Callable[..., GovernancePolicy], changes: dict[str, Any], writes: set[str]
) -> None:
    # Given a policy's sweep settings, then the report's EC2 writes are exactly what they can lead to
    assert _actions(make_policy(**changes)) & SWEEP_WRITES == writes


REMEDIATION = {"ec2:DisableImage", "ec2:EnableImage", "ec2:EnableImageDeprecation", "ec2:DisableImageDeprecation"}


@pytest.mark.parametrize(
    ("mode", "dry_run", "remediation"),
    [
        ("enforce", False, {"ec2:DisableImage", "ec2:EnableImage", "ec2:DisableImageDeprecation"}),
        ("enforce", True, set()),
        ("audit", False, set()),
    ],
)
def test_in_enforce_mode_the_sweep_remediates_the_amis_it_judges_as_enforce_does(
    make_policy: Callable[..., GovernancePolicy], mode: str, dry_run: bool, remediation: set[str]
) -> None:
    # Given the repository's remediation (disable), and a sweep that acts or is a dry run
    policy = make_policy(mode=mode, report={"sweep": {"enabled": True, "dry_run": dry_run}})
    assert policy.remediation.action.value == "disable"

    # Then AMIs no event judged are remediated by the sweep's judging only where enforce would remediate them: the
    # policy's action and the undo actions, as the enforce role has them
    assert _actions(policy) & REMEDIATION == remediation
