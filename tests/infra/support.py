"""What several infra test modules share: the names of the app fixtures (conftest), and queries on synthesized
templates: a function by its handler, the IAM statements of its role (or of a permission set, without a synth)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_cdk import App, Stack
from aws_cdk.assertions import Template

from ami_governance.models.policy import GovernancePolicy
from stacks.permissions import Permission

# Every app variant conftest builds; the whole-app checks (cdk-nag, cfn-lint) run on each.
APP_FIXTURES = ("audit_app", "enforce_disable_app", "cleanup_enabled_app", "replication_app", "no_replication_app")
# The Recycle Bin retention (context option) the cleanup-enabled app is built with.
CLEANUP_ENABLED_RETENTION_DAYS = 14

# Every listing the report makes, in its one statement on '*' (none supports resource-level permissions).
REPORT_LISTINGS = [
    "ec2:DescribeFleets", "ec2:DescribeImageReferences", "ec2:DescribeImages", "ec2:DescribeInstanceImageMetadata",
    "ec2:DescribeInstances", "ec2:DescribeLaunchTemplateVersions",
    "ec2:DescribeSnapshots", "ec2:GetImageBlockPublicAccessState", "ec2:GetSnapshotBlockPublicAccessState",
    "ec2:ListImagesInRecycleBin", "ec2:ListSnapshotsInRecycleBin",
    "autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeLaunchConfigurations", "ssm:DescribeParameters",
]  # fmt: skip
# What only EC2 reads for DescribeImageReferences, with the report's permissions (aws:CalledVia): on every resource.
IMAGE_REFERENCES_ONLY_READS = [
    "ec2:DescribeLaunchTemplates",
    "imagebuilder:ListContainerRecipes",
    "imagebuilder:ListImageRecipes",
]

# The report's sweep in the cleanup-enabled app: on, acting, with every kind of action it can take in audit mode.
SWEEP_ENABLED = {
    "enabled": True,
    "dry_run": False,
    "delete_orphaned_snapshots_after_days": 30,
    "deregister_stale_unused": True,
}

# The replication app: governed regions that are only ever sources (the home region first), the targets, and a key
# per target, named each way the policy allows (alias name, key id, key ARN).
REPLICATION_SOURCE_ONLY_REGIONS = ("us-east-1", "ap-northeast-1")
REPLICATION_TARGETS = ("eu-west-1", "eu-central-1", "ap-southeast-2")
REPLICATION_KMS_KEYS = {
    "eu-west-1": "alias/ami-replicas",
    "eu-central-1": "1234abcd-12ab-34cd-56ef-1234567890ab",
    "ap-southeast-2": "arn:aws:kms:ap-southeast-2:111122223333:key/mrk-0123456789abcdef0123456789abcdef",
}
REPLICATION_SHARE_WITH = {
    "accounts": ["444455556666"],
    "organization_arns": ["arn:aws:organizations::111122223333:organization/o-a1b2c3d4e5"],
    "ou_arns": ["arn:aws:organizations::111122223333:ou/o-a1b2c3d4e5/ou-ab12-cd34ef56"],
}
# An approval tag outside the tag prefix, to show the rule and the Deny statements follow the policy.
REPLICATION_APPROVAL_TAG = "release:approved"


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def function_by_handler(template: Template, handler: str) -> tuple[str, dict[str, Any]]:
    """Logical id and properties of the one function whose handler is `handler`."""
    functions = template.find_resources("AWS::Lambda::Function", {"Properties": {"Handler": handler}})
    assert len(functions) == 1, f"expected one function with handler {handler}, found {list(functions)}"
    [(logical_id, function)] = functions.items()
    return logical_id, function["Properties"]


def role_statements(template: Template, handler: str) -> list[dict[str, Any]]:
    """Every statement of every IAM policy attached to the role of the function with `handler`."""
    _, function = function_by_handler(template, handler)
    role_id = function["Role"]["Fn::GetAtt"][0]
    return [
        statement
        for policy in template.find_resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def allowed_actions(statements: list[dict[str, Any]]) -> set[str]:
    return {a for s in statements if s["Effect"] == "Allow" for a in as_list(s["Action"])}


def statement_by_sid(statements: list[dict[str, Any]], sid: str) -> dict[str, Any]:
    [statement] = [s for s in statements if s.get("Sid") == sid]
    return statement


def resolved_statements(
    permissions: Callable[[GovernancePolicy, str], list[Permission]], policy: GovernancePolicy
) -> list[dict[str, Any]]:
    """The statements `permissions` derives from `policy`, resolved as in a template, without synthesizing an app."""
    stack = Stack(App(), "Probe")
    return [stack.resolve(p.statement.to_statement_json()) for p in permissions(policy, stack.account)]
