"""IAM permissions, declared next to the reason for each wildcard they contain.

Every `*` in an action or a resource must come with `why_wildcard`; `attach_policy` refuses a wildcard without
one and turns each reason into the cdk-nag acknowledgment of exactly that wildcard, so the comment, the
acknowledgment and the statement cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from aws_cdk import aws_iam as iam
from constructs import Construct

from ami_governance.models.policy import GovernancePolicy, Mode, RemediationAction
from stacks.nag import acknowledge, wildcard_action_finding, wildcard_resource_finding
from stacks.resource_names import partition_of


@dataclass(frozen=True)
class Permission:
    statement: iam.PolicyStatement
    why_wildcard: str | None = None


def attach_policy(
    scope: Construct, construct_id: str, role: iam.IRole, permissions: Sequence[Permission]
) -> iam.Policy:
    """One inline policy on `role` holding `permissions`, with each wildcard acknowledged for cdk-nag."""
    policy = iam.Policy(scope, construct_id, statements=[p.statement for p in permissions], roles=[role])
    for permission in permissions:
        statement = permission.statement
        if statement.effect != iam.Effect.ALLOW:
            continue  # cdk-nag does not report wildcards in Deny statements, and they only ever narrow access
        findings = [wildcard_action_finding(a) for a in statement.actions if "*" in a]
        findings += [wildcard_resource_finding(scope, r) for r in statement.resources if "*" in r]
        if findings and not permission.why_wildcard:
            raise ValueError(f"statement {statement.sid} has a wildcard but no reason: {findings}")
        for finding in findings:
            acknowledge(policy, finding, str(permission.why_wildcard))
    return policy


def image_arns(regions: Iterable[str]) -> list[str]:
    # AMI ARNs have no account field (arn:aws:ec2:<region>::image/ami-...).
    return [f"arn:{partition_of(region)}:ec2:{region}::image/*" for region in regions]


def snapshot_arns(regions: Iterable[str], account: str) -> list[str]:
    return [f"arn:{partition_of(region)}:ec2:{region}:{account}:snapshot/*" for region in regions]


def _iam_string_like_literal(value: str) -> str:
    # In StringLike, '*' and '?' are wildcards; IAM spells the literal characters ${*} and ${?}.
    return value.replace("*", "${*}").replace("?", "${?}")


ANY_IMAGE_REASON = (
    "AMI ids are random and created at any time; the statement is limited to image ARNs of the governed regions "
    "(image ARNs carry no account, and only the owner can change an AMI)"
)


def enforce_permissions(policy: GovernancePolicy, account: str) -> list[Permission]:
    """EC2 permissions of the enforce Lambda: read AMIs, write its own tag namespace, and the one remediation
    the policy asks for (enforce mode only)."""
    regions = list(policy.governed_regions)
    images = image_arns(regions)
    tagged = images + snapshot_arns(regions, account)
    own_tag_keys = f"{_iam_string_like_literal(policy.tag_prefix)}*"
    tag_resources_reason = (
        f"new AMIs and their snapshots are tagged, whatever their id; limited to images and this account's "
        f"snapshots in the governed regions, and to tag keys starting with {policy.tag_prefix!r}"
    )
    permissions = [
        Permission(
            iam.PolicyStatement(
                sid="DescribeImagesInGovernedRegions",
                actions=["ec2:DescribeImages"],
                resources=["*"],
                conditions={"StringEquals": {"aws:RequestedRegion": regions}},
            ),
            why_wildcard=(
                "ec2:DescribeImages supports no resource-level permissions (resource must be '*'); "
                "the statement is limited to the governed regions by aws:RequestedRegion"
            ),
        ),
        Permission(
            iam.PolicyStatement(
                sid="WriteOwnTagNamespaceOnly",
                actions=["ec2:CreateTags", "ec2:DeleteTags"],
                resources=tagged,
                conditions={
                    "ForAllValues:StringLike": {"aws:TagKeys": [own_tag_keys]},
                    # ForAllValues is true for an empty set, and DeleteTags without Tags deletes every tag:
                    # require the request to name its tag keys.
                    "Null": {"aws:TagKeys": "false"},
                },
            ),
            why_wildcard=tag_resources_reason,
        ),
        Permission(
            # The protection tag always wins: this system may neither set nor remove it.
            iam.PolicyStatement(
                sid="NeverTouchProtectionTag",
                effect=iam.Effect.DENY,
                actions=["ec2:CreateTags", "ec2:DeleteTags"],
                resources=tagged,
                conditions={"ForAnyValue:StringEquals": {"aws:TagKeys": [policy.protection_tag_key]}},
            )
        ),
    ]
    return permissions + remediation_permissions(policy)


# The action that remediates, and the one that undoes it when the AMI becomes compliant again.
_REMEDIATION_ACTIONS: dict[RemediationAction, tuple[str, str]] = {
    RemediationAction.DISABLE: ("ec2:DisableImage", "ec2:EnableImage"),
    RemediationAction.DEPRECATE: ("ec2:EnableImageDeprecation", "ec2:DisableImageDeprecation"),
}


def remediation_permissions(policy: GovernancePolicy) -> list[Permission]:
    """Nothing in audit mode; in enforce mode the policy's remediation action, and the undo actions.

    `deregister` needs nothing yet: enforce only tags a deadline, a later scheduled sweep deregisters. Both undo
    actions are granted whatever the action: an AMI remediated under an earlier policy (disabled, then the action
    became `deprecate` or `none`) must still be restored when it becomes compliant. Both only give access back.
    """
    if policy.mode is not Mode.ENFORCE:
        return []
    images = image_arns(policy.governed_regions)
    undo = sorted(undo_action for _, undo_action in _REMEDIATION_ACTIONS.values())
    permissions = [
        Permission(
            iam.PolicyStatement(sid="UndoRemediation", actions=undo, resources=images),
            why_wildcard=ANY_IMAGE_REASON,
        )
    ]
    if policy.remediation.action not in _REMEDIATION_ACTIONS:
        return permissions
    remediate, _ = _REMEDIATION_ACTIONS[policy.remediation.action]
    return [
        Permission(
            iam.PolicyStatement(
                sid="RemediateUnprotectedImages",
                actions=[remediate],
                resources=images,
                # Defence in depth behind the Lambda's own check: an AMI carrying the protection tag cannot be
                # remediated by this role.
                conditions={"Null": {f"aws:ResourceTag/{policy.protection_tag_key}": "true"}},
            ),
            why_wildcard=ANY_IMAGE_REASON,
        ),
        *permissions,
    ]
