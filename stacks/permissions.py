"""IAM permissions, declared next to the reason for each wildcard they contain.

Every `*` in an action or a resource must come with `why_wildcard`; `attach_policy` refuses a wildcard without
one and turns each reason into the cdk-nag acknowledgment of exactly that wildcard, so the comment, the
acknowledgment and the statement cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

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


def snapshot_arns(regions: Iterable[str]) -> list[str]:
    # Snapshot ARNs have no account field either (arn:aws:ec2:<region>::snapshot/snap-...): statements on them
    # are limited to this account's with the ec2:Owner condition (see _owned_by).
    return [f"arn:{partition_of(region)}:ec2:{region}::snapshot/*" for region in regions]


def _owned_by(account: str) -> dict[str, dict[str, str]]:
    return {"StringEquals": {"ec2:Owner": account}}


def _iam_string_like_literal(value: str) -> str:
    # In StringLike, '*' and '?' are wildcards; IAM spells the literal characters ${*} and ${?}.
    return value.replace("*", "${*}").replace("?", "${?}")


def _describe_in_governed_regions(sid: str, describe_actions: list[str], regions: list[str]) -> Permission:
    return Permission(
        iam.PolicyStatement(
            sid=sid,
            actions=describe_actions,
            resources=["*"],
            conditions={"StringEquals": {"aws:RequestedRegion": regions}},
        ),
        why_wildcard=(
            f"{' and '.join(describe_actions)} support no resource-level permissions (resource must be '*'); "
            "the statement is limited to the governed regions by aws:RequestedRegion"
        ),
    )


def _own_tag_keys_only(policy: GovernancePolicy) -> dict[str, dict[str, Any]]:
    return {
        "ForAllValues:StringLike": {"aws:TagKeys": [f"{_iam_string_like_literal(policy.tag_prefix)}*"]},
        # ForAllValues is true for an empty set, and DeleteTags without Tags deletes every tag: require the
        # request to name its tag keys.
        "Null": {"aws:TagKeys": "false"},
    }


def _never_the_protection_tag(
    policy: GovernancePolicy, sid: str, tag_actions: list[str], resources: list[str]
) -> Permission:
    # The protection tag always wins: this system may never set (nor, where it may delete tags, remove) it. Nor
    # the approval tag, which people set to release an AMI for replication: the system must not approve itself.
    return Permission(
        iam.PolicyStatement(
            sid=sid,
            effect=iam.Effect.DENY,
            actions=tag_actions,
            resources=resources,
            conditions={
                "ForAnyValue:StringEquals": {"aws:TagKeys": [policy.protection_tag_key, policy.approval_tag_key]}
            },
        )
    )


def _unprotected(policy: GovernancePolicy) -> dict[str, dict[str, str]]:
    # Defence in depth behind the Lambda's own check: a resource carrying the protection tag is out of the
    # statement's reach.
    return {"Null": {f"aws:ResourceTag/{policy.protection_tag_key}": "true"}}


ANY_IMAGE_REASON = (
    "AMI ids are random and created at any time; the statement is limited to image ARNs of the governed regions "
    "(image ARNs carry no account, and only the owner can change an AMI)"
)


def enforce_permissions(policy: GovernancePolicy, account: str) -> list[Permission]:
    """EC2 permissions of the enforce Lambda: read AMIs, write its own tag namespace, and the one remediation
    the policy asks for (enforce mode only)."""
    regions = list(policy.governed_regions)
    images = image_arns(regions)
    tagged = images + snapshot_arns(regions)
    tag_resources_reason = (
        f"new AMIs and their snapshots are tagged, whatever their id; limited to images and this account's "
        f"snapshots in the governed regions, and to tag keys starting with {policy.tag_prefix!r}"
    )
    permissions = [
        _describe_in_governed_regions("DescribeImagesInGovernedRegions", ["ec2:DescribeImages"], regions),
        Permission(
            iam.PolicyStatement(
                sid="WriteOwnTagNamespaceOnly",
                actions=["ec2:CreateTags", "ec2:DeleteTags"],
                resources=tagged,
                conditions={**_own_tag_keys_only(policy), **_owned_by(account)},
            ),
            why_wildcard=tag_resources_reason,
        ),
        _never_the_protection_tag(policy, "NeverTouchProtectionTag", ["ec2:CreateTags", "ec2:DeleteTags"], tagged),
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
                conditions=_unprotected(policy),
            ),
            why_wildcard=ANY_IMAGE_REASON,
        ),
        *permissions,
    ]


def cleanup_permissions(policy: GovernancePolicy, account: str) -> list[Permission]:
    """EC2 permissions of the cleanup Lambda: read images and snapshots; in dry-run nothing else. Otherwise mark
    and delete this account's unprotected snapshots, and deregister unprotected replicas if the policy cascades."""
    regions = list(policy.governed_regions)
    snapshots = snapshot_arns(regions)
    permissions = [
        _describe_in_governed_regions(
            "DescribeImagesAndSnapshotsInGovernedRegions", ["ec2:DescribeImages", "ec2:DescribeSnapshots"], regions
        )
    ]
    if policy.cleanup.dry_run:
        # Dry-run reports what would be deleted: it neither marks nor deletes nor deregisters anything.
        return permissions
    snapshot_reason = (
        "the snapshots a deregistered AMI leaves behind have random ids; limited to this account's snapshots in "
        "the governed regions"
    )
    permissions += [
        Permission(
            iam.PolicyStatement(
                sid="MarkSnapshotsInOwnTagNamespaceOnly",
                # DeleteTags removes the mark again when EC2 refuses the deletion (snapshot in use).
                actions=["ec2:CreateTags", "ec2:DeleteTags"],
                resources=snapshots,
                conditions={**_own_tag_keys_only(policy), **_owned_by(account)},
            ),
            why_wildcard=f"{snapshot_reason}, and to tag keys starting with {policy.tag_prefix!r}",
        ),
        _never_the_protection_tag(policy, "NeverSetProtectionTag", ["ec2:CreateTags", "ec2:DeleteTags"], snapshots),
        Permission(
            iam.PolicyStatement(
                sid="DeleteUnprotectedSnapshots",
                actions=["ec2:DeleteSnapshot"],
                resources=snapshots,
                conditions={**_unprotected(policy), **_owned_by(account)},
            ),
            why_wildcard=f"{snapshot_reason}, and only those without the protection tag",
        ),
    ]
    if policy.cleanup.cascade_to_replicas:
        permissions.append(
            Permission(
                iam.PolicyStatement(
                    sid="DeregisterUnprotectedReplicas",
                    actions=["ec2:DeregisterImage"],
                    resources=image_arns(regions),
                    conditions=_unprotected(policy),
                ),
                why_wildcard=f"{ANY_IMAGE_REASON}, and only those without the protection tag",
            )
        )
    return permissions
