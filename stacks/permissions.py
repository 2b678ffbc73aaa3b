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
from ami_governance.rules.tags import SystemTag
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


def _delete_own_tags_only(policy: GovernancePolicy, sid: str, resources: list[str], reason: str) -> Permission:
    # DeleteTags gets a statement of its own: the service authorization reference lists no ec2:Owner key for
    # DeleteTags on images or snapshots (CreateTags has it), and a StringEquals on a key absent from the request
    # never matches, so under _owned_by every DeleteTags would be denied. The tag-key conditions stay, and the
    # Deny statements keep the protection and approval tags out of reach.
    return Permission(
        iam.PolicyStatement(
            sid=sid, actions=["ec2:DeleteTags"], resources=resources, conditions=_own_tag_keys_only(policy)
        ),
        why_wildcard=reason,
    )


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
    """EC2 permissions of the enforce Lambda: read AMIs and this account's AMIs' launch permissions, write its own
    tag namespace, and the one remediation the policy asks for (enforce mode only)."""
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
                actions=["ec2:CreateTags"],
                resources=tagged,
                conditions={**_own_tag_keys_only(policy), **_owned_by(account)},
            ),
            why_wildcard=tag_resources_reason,
        ),
        _delete_own_tags_only(
            policy,
            "RemoveOwnTagNamespaceOnly",
            tagged,
            f"inherited or stale verdict tags are removed from AMIs and their snapshots, whatever their id; limited "
            f"to images and snapshots in the governed regions, and to tag keys starting with {policy.tag_prefix!r}",
        ),
        _never_the_protection_tag(policy, "NeverTouchProtectionTag", ["ec2:CreateTags", "ec2:DeleteTags"], tagged),
        # After a ModifyImageAttribute, the AMI's launch permissions are read back (and recorded for the report).
        # Unlike the Describe* listings, DescribeImageAttribute authorizes the image itself, which supports ec2:Owner.
        Permission(
            iam.PolicyStatement(
                sid="ReadOwnImagesLaunchPermissions",
                actions=["ec2:DescribeImageAttribute"],
                resources=images,
                conditions=_owned_by(account),
            ),
            why_wildcard=(
                "AMI ids are random and created at any time; limited to this account's images in the governed regions"
            ),
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
                actions=["ec2:CreateTags"],
                resources=snapshots,
                conditions={**_own_tag_keys_only(policy), **_owned_by(account)},
            ),
            why_wildcard=f"{snapshot_reason}, and to tag keys starting with {policy.tag_prefix!r}",
        ),
        # DeleteTags removes the mark again when EC2 refuses the deletion (snapshot in use).
        _delete_own_tags_only(
            policy,
            "UnmarkSnapshotsInOwnTagNamespaceOnly",
            snapshots,
            f"the snapshots a deregistered AMI leaves behind have random ids; limited to snapshots in the governed "
            f"regions, and to tag keys starting with {policy.tag_prefix!r}",
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


def _shares_replicas(policy: GovernancePolicy) -> bool:
    sharing = policy.replication.share_with
    return bool(sharing.accounts or sharing.organization_arns or sharing.ou_arns)


def replicate_permissions(policy: GovernancePolicy, account: str, *, copy_queue_arn: str) -> list[Permission]:
    """Permissions of the replicate Lambda: read AMIs, answer an approval in its own tag namespace, queue one copy
    job per target region, and share the replicas (only if the policy shares them)."""
    regions = list(policy.governed_regions)
    images = image_arns(regions)
    permissions = [
        _describe_in_governed_regions("DescribeImagesInGovernedRegions", ["ec2:DescribeImages"], regions),
        Permission(
            iam.PolicyStatement(
                # The answer to an approval (`<prefix>approval`: accepted, refused and why, and `approved-by`) goes
                # on the approved AMI, which may be in any governed region.
                sid="AnswerApprovalsInOwnTagNamespaceOnly",
                actions=["ec2:CreateTags"],
                resources=images,
                conditions={**_own_tag_keys_only(policy), **_owned_by(account)},
            ),
            why_wildcard=(
                f"{ANY_IMAGE_REASON}; limited to this account's images (ec2:Owner), and to tag keys starting with "
                f"{policy.tag_prefix!r}"
            ),
        ),
        # The approval tag is under the prefix by default: the system answers an approval, it never gives one.
        _never_the_protection_tag(policy, "NeverSetProtectionOrApprovalTag", ["ec2:CreateTags"], images),
    ]
    if _shares_replicas(policy):
        permissions.append(_share_replicas(policy))
    permissions.append(
        Permission(iam.PolicyStatement(sid="SendCopyJobs", actions=["sqs:SendMessage"], resources=[copy_queue_arn]))
    )
    return permissions


# Everything EC2 does with a customer managed key while it copies snapshots into it: it checks the key
# (DescribeKey), takes a grant to use it from the volume service (CreateGrant), creates the data keys of the new
# snapshots (GenerateDataKeyWithoutPlaintext) and re-encrypts them (ReEncryptFrom/ReEncryptTo, Decrypt).
_REPLICA_KEY_ACTIONS = ["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncrypt*"]
_REENCRYPT_REASON = (
    "kms:ReEncrypt* stands for kms:ReEncryptFrom and kms:ReEncryptTo, which EC2 needs to re-encrypt the copied "
    "snapshots under the target key"
)


@dataclass(frozen=True)
class ReplicaKey:
    """The IAM resource of a key the policy names (`replication.kms_keys`), and the alias that narrows it when the
    policy names the key by its alias (whose key id is not known at synth)."""

    region: str
    resource: str
    alias: str | None = None


def replica_key(region: str, reference: str, account: str) -> ReplicaKey:
    """A key ARN is its own resource; a key id (or multi-Region key id) is a key of this account in `region`; an
    alias (name, or alias ARN with its own account) is any key of that account in the region, narrowed by the
    kms:ResourceAliases condition to the key the alias names."""
    if reference.startswith("arn:"):
        _, partition, _, key_region, key_account, resource = reference.split(":", 5)
        if resource.startswith("alias/"):
            return ReplicaKey(region, f"arn:{partition}:kms:{key_region}:{key_account}:key/*", resource)
        return ReplicaKey(region, reference)
    keys = f"arn:{partition_of(region)}:kms:{region}:{account}:key"
    if reference.startswith("alias/"):
        return ReplicaKey(region, f"{keys}/*", reference)
    return ReplicaKey(region, f"{keys}/{reference}")


def _sid_suffix(region: str) -> str:
    # Sids are alphanumeric: eu-west-1 -> EuWest1.
    return "".join(part.capitalize() for part in region.split("-"))


def _replica_key_permissions(key: ReplicaKey) -> list[Permission]:
    # Only EC2 in the key's region may use the key on the role's behalf (kms:ViaService): the Lambda itself can
    # neither decrypt nor create data keys with it. CreateGrant (the grant the EBS volumes of the copy use) only
    # for AWS resources. kms:GrantIsForAWSResource exists on CreateGrant alone, hence two statements.
    via_ec2: dict[str, dict[str, Any]] = {"StringEquals": {"kms:ViaService": f"ec2.{key.region}.amazonaws.com"}}
    if key.alias is not None:
        via_ec2["ForAnyValue:StringEquals"] = {"kms:ResourceAliases": [key.alias]}
    if key.alias is None:
        where = f"limited to the policy's key in {key.region}, used through EC2 in that region (kms:ViaService)"
    else:
        where = (
            f"the policy names the key in {key.region} by its alias {key.alias}, whose key id is unknown at synth: "
            "the resource is any key of that account in the region, narrowed by kms:ResourceAliases to the key the "
            "alias names, used through EC2 in that region (kms:ViaService)"
        )
    suffix = _sid_suffix(key.region)
    return [
        Permission(
            iam.PolicyStatement(
                sid=f"EncryptReplicasWithPolicyKey{suffix}",
                actions=_REPLICA_KEY_ACTIONS,
                resources=[key.resource],
                conditions=via_ec2,
            ),
            why_wildcard=f"{_REENCRYPT_REASON}; {where}",
        ),
        Permission(
            iam.PolicyStatement(
                sid=f"LetEc2UsePolicyKey{suffix}",
                actions=["kms:CreateGrant"],
                resources=[key.resource],
                conditions={**via_ec2, "Bool": {"kms:GrantIsForAWSResource": "true"}},
            ),
            why_wildcard=None if key.alias is None else where,
        ),
    ]


def _share_replicas(policy: GovernancePolicy) -> Permission:
    return Permission(
        iam.PolicyStatement(
            # Adds the launch permissions of share_with to each replica once it is available.
            sid="ShareReplicas",
            actions=["ec2:ModifyImageAttribute"],
            resources=image_arns(policy.replication.regions),
        ),
        why_wildcard=(
            "replicas are new AMIs with random ids; the statement is limited to image ARNs of the "
            "replication regions (image ARNs carry no account, and only the owner can change an AMI)"
        ),
    )


def copy_permissions(policy: GovernancePolicy, account: str) -> list[Permission]:
    """Permissions of the copy Lambda: copy approved AMIs into the replication regions (only there), tag the copies
    at creation in its own tag namespace, answer a withdrawn approval on its source, and encrypt the copies with
    the keys the policy names (only those).

    What the key owners must do (IAM alone is not enough for KMS: the key policy must allow it too):

    - The key policy of each key in `replication.kms_keys` must allow the Copy role (its ARN is the home stack's
      output `CopyRoleArn`) kms:DescribeKey, kms:CreateGrant, kms:GenerateDataKeyWithoutPlaintext,
      kms:ReEncrypt* and kms:Decrypt, or delegate to IAM (the default key policy's "Enable IAM User Permissions"
      statement does, for a key in this account).
    - A source AMI encrypted with a customer managed key needs the same on that key, in the source region; this
      stack cannot grant it, the key is not in the policy.
    - Replicas shared with other accounts, organizations or OUs (`replication.share_with`) can only be launched
      there if the key policy also allows those accounts (for an organization or OU: the aws:PrincipalOrgID or
      aws:PrincipalOrgPaths condition) kms:Decrypt, kms:DescribeKey, kms:CreateGrant and kms:ReEncrypt* on the
      key. A replica encrypted with the AWS managed key aws/ebs cannot be launched by another account at all.
    """
    governed = list(policy.governed_regions)
    targets = list(policy.replication.regions)  # governed too: the policy model requires it
    new_resources = image_arns(targets) + snapshot_arns(targets)
    permissions = [
        _describe_in_governed_regions("DescribeImagesInGovernedRegions", ["ec2:DescribeImages"], governed),
        Permission(
            iam.PolicyStatement(
                # CopyImage is called in the target region: aws:RequestedRegion keeps the copies there, while the
                # source image and its snapshots may be in any governed region (since October 2024 CopyImage is
                # authorised on the source too; a target is also governed, so its images and snapshots in the
                # list cover the new AMI and its snapshots).
                sid="CopyImagesIntoReplicationRegionsOnly",
                actions=["ec2:CopyImage"],
                resources=image_arns(governed) + snapshot_arns(governed),
                conditions={"StringEquals": {"aws:RequestedRegion": targets}},
            ),
            why_wildcard=(
                "source AMIs and the new AMI and snapshots have ids unknown beforehand; limited to images and "
                "snapshots of the governed regions, and to calls made in the replication regions "
                "(aws:RequestedRegion)"
            ),
        ),
        Permission(
            iam.PolicyStatement(
                # Tags at creation only: ec2:CreateAction=CopyImage can only tag the AMI and snapshots the call
                # creates. No tag-key condition: CopyImageTags copies every user tag of the source, the approval
                # tag (an approved source always has it) and the protection tag (which should follow the source
                # onto its replicas) included. AWS does not document whether those copied keys count in
                # aws:TagKeys; if they did, a key condition would refuse every copy.
                sid="TagReplicasAtCreation",
                actions=["ec2:CreateTags"],
                resources=new_resources,
                conditions={"StringEquals": {"ec2:CreateAction": "CopyImage"}},
            ),
            why_wildcard=(
                "the new AMI and snapshots of a copy have random ids; limited to the replication regions and to "
                "tags given at creation by CopyImage (ec2:CreateAction)"
            ),
        ),
    ]
    permissions.append(
        Permission(
            iam.PolicyStatement(
                # A job whose approval tag was removed before its copy started is dropped, and the worker says so
                # in the answer tag on the source, which may be in any governed region: that one key only.
                sid="AnswerWithdrawnApprovalsOnSources",
                actions=["ec2:CreateTags"],
                resources=image_arns(governed),
                conditions={
                    "ForAllValues:StringEquals": {"aws:TagKeys": [policy.tag_key(SystemTag.APPROVAL)]},
                    "Null": {"aws:TagKeys": "false"},
                    **_owned_by(account),
                },
            ),
            why_wildcard=(
                f"{ANY_IMAGE_REASON}; limited to this account's images (ec2:Owner) and to the one tag key "
                f"{policy.tag_key(SystemTag.APPROVAL)!r}"
            ),
        )
    )
    if _shares_replicas(policy):
        # A copy found already made and available (adopted, not copied) is shared by the copy worker itself.
        permissions.append(_share_replicas(policy))
    for region in targets:
        reference = policy.replication.kms_keys.get(region)
        if reference is not None:
            permissions += _replica_key_permissions(replica_key(region, reference, account))
    return permissions


# What the report reads in each governed region (adapters/scan.py, adapters/launch_permissions.py). Every one of
# these EC2 actions accepts only '*' as its resource (the service authorization reference lists no resource type
# for them, and only the ec2:Region key).
REPORT_EC2_LISTINGS = (
    "ec2:DescribeFleets",
    "ec2:DescribeImageReferences",
    "ec2:DescribeImages",
    "ec2:DescribeInstanceImageMetadata",
    "ec2:DescribeInstances",
    "ec2:DescribeLaunchTemplateVersions",
    "ec2:DescribeSnapshots",
    "ec2:GetImageBlockPublicAccessState",
    "ec2:GetSnapshotBlockPublicAccessState",
    "ec2:ListImagesInRecycleBin",
    "ec2:ListSnapshotsInRecycleBin",
)
REPORT_OTHER_LISTINGS = (
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:DescribeLaunchConfigurations",
    "ssm:DescribeParameters",
)
# DescribeImageReferences finds only the references the caller may read: EC2 (ec2-images.amazonaws.com) reads each
# resource type it searches with the caller's permissions. EC2 User Guide, "Identify your resources referencing
# specified AMIs", required permissions (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ec2-ami-references.html;
# the managed policy AmazonEC2ImageReferencesAccessPolicy): Allow
# ec2:DescribeImageReferences on '*', and ec2:DescribeInstances, ec2:DescribeLaunchTemplates,
# ec2:DescribeLaunchTemplateVersions, ssm:DescribeParameters, ssm:GetParameters, imagebuilder:ListImageRecipes,
# imagebuilder:ListContainerRecipes and imagebuilder:GetContainerRecipe on '*' under
# {"ForAnyValue:StringEquals": {"aws:CalledVia": ["ec2-images.amazonaws.com"]}}. The scan calls DescribeInstances,
# DescribeLaunchTemplateVersions, DescribeParameters and GetParameters itself, and its own statements cover EC2's
# calls too (same regions; the parameters EC2 reads are this account's, in the region of the call). The others
# only EC2 calls, so they are granted only through it. A reference the role cannot read would be missing, and its
# AMI wrongly reported unused.
IMAGE_REFERENCES_ONLY_READS = (
    "ec2:DescribeLaunchTemplates",
    "imagebuilder:ListContainerRecipes",
    "imagebuilder:ListImageRecipes",
)
CALLED_VIA_EC2_IMAGES = {"ForAnyValue:StringEquals": {"aws:CalledVia": ["ec2-images.amazonaws.com"]}}


def _governed_arns(policy: GovernancePolicy, account: str, service: str, resource: str) -> list[str]:
    return [f"arn:{partition_of(region)}:{service}:{region}:{account}:{resource}" for region in policy.governed_regions]


def report_permissions(policy: GovernancePolicy, account: str, *, report_objects: Sequence[str]) -> list[Permission]:
    """Permissions of the report Lambda: read-only listings in the governed regions, the launch permissions of this
    account's AMIs, the parameters AMIs are published in, and writing its reports. With the sweep on (and not a
    dry run), exactly what the sweep does, never on a protected resource."""
    regions = list(policy.governed_regions)
    permissions = [
        Permission(
            iam.PolicyStatement(
                sid="ListEstateInGovernedRegions",
                actions=[*REPORT_EC2_LISTINGS, *REPORT_OTHER_LISTINGS],
                resources=["*"],
                conditions={"StringEquals": {"aws:RequestedRegion": regions}},
            ),
            why_wildcard=(
                "the report's listings (EC2 describes, Recycle Bin and block public access reads, Auto Scaling "
                "and SSM DescribeParameters) support no resource-level permissions; the statement is limited to "
                "the governed regions by aws:RequestedRegion"
            ),
        ),
        Permission(
            iam.PolicyStatement(
                sid="ReadForImageReferencesOnly",
                actions=list(IMAGE_REFERENCES_ONLY_READS),
                resources=["*"],
                conditions=CALLED_VIA_EC2_IMAGES,
            ),
            why_wildcard=(
                "what DescribeImageReferences reads with the caller's permissions to find references (EC2 User "
                "Guide, 'Identify your resources referencing specified AMIs'); these listings support no "
                "resource-level permissions; allowed only when EC2 calls them for DescribeImageReferences "
                "(aws:CalledVia ec2-images.amazonaws.com)"
            ),
        ),
        Permission(
            iam.PolicyStatement(
                # Only for AMIs whose launch permissions the inventory has not recorded, or on the full
                # verification schedule: the one per-image call of the report.
                sid="ReadOwnImagesLaunchPermissions",
                actions=["ec2:DescribeImageAttribute"],
                resources=image_arns(regions),
                conditions=_owned_by(account),
            ),
            why_wildcard=f"{ANY_IMAGE_REASON}; limited to this account's images (ec2:Owner)",
        ),
        Permission(
            iam.PolicyStatement(
                # The values of the AMI parameters DescribeParameters lists (aws:ec2:image), and what
                # DescribeLaunchTemplateVersions resolves a `resolve:ssm:` image id from (its dependent action):
                # this account's parameters, or AWS's public ones.
                sid="ReadImageParameters",
                actions=["ssm:GetParameters"],
                resources=[
                    *_governed_arns(policy, account, "ssm", "parameter/*"),
                    # AWS's public parameters have ARNs with an empty account field, which '*' matches.
                    *_governed_arns(policy, "*", "ssm", "parameter/aws/service/*"),
                ],
            ),
            why_wildcard=(
                "AMI parameters have any name; limited to this account's parameters and AWS's public ones under "
                "/aws/service/ in the governed regions"
            ),
        ),
        Permission(
            iam.PolicyStatement(
                # Container recipes name the AMI of their build instance, which ListContainerRecipes does not show:
                # EC2 reads each for DescribeImageReferences (see IMAGE_REFERENCES_ONLY_READS), never the code.
                sid="ReadContainerRecipesForImageReferencesOnly",
                actions=["imagebuilder:GetContainerRecipe"],
                resources=_governed_arns(policy, account, "imagebuilder", "container-recipe/*"),
                conditions=CALLED_VIA_EC2_IMAGES,
            ),
            why_wildcard=(
                "recipes have any name; limited to this account's container recipes in the governed regions, and "
                "to EC2 reading them for DescribeImageReferences (aws:CalledVia ec2-images.amazonaws.com)"
            ),
        ),
        Permission(
            iam.PolicyStatement(sid="PublishReports", actions=["s3:PutObject"], resources=list(report_objects)),
            why_wildcard="every run writes new keys under reports/<date>/<run-id>/ and overwrites latest/; "
            "limited to those two prefixes of the reports bucket",
        ),
    ]
    return permissions + sweep_permissions(policy, account)


def sweep_retries_cleanups(policy: GovernancePolicy) -> bool:
    # Through the clean-up service (services/sweep.py): it reads the AMI's item and acts as the clean-up does.
    return sweep_acts(policy) and policy.report.sweep.retry_deferred_cleanups


def sweep_deregisters(policy: GovernancePolicy) -> bool:
    sweep = policy.report.sweep
    cleanup = policy.cleanup
    # Overdue AMIs are those enforce gave a deregistration deadline: enforce mode only. A retried clean-up that
    # deletes also cascades to the replicas, if the policy cascades.
    return (
        (sweep.deregister_overdue and policy.mode is Mode.ENFORCE)
        or sweep.deregister_stale_unused
        or (sweep.retry_deferred_cleanups and not cleanup.dry_run and cleanup.cascade_to_replicas)
    )


def sweep_deletes_snapshots(policy: GovernancePolicy) -> bool:
    sweep = policy.report.sweep
    # A deferred clean-up is retried through the clean-up service, which deletes only in clean-up delete mode.
    return sweep.delete_orphaned_snapshots_after_days is not None or (
        sweep.retry_deferred_cleanups and not policy.cleanup.dry_run
    )


def sweep_acts(policy: GovernancePolicy) -> bool:
    return policy.report.sweep.enabled and not policy.report.sweep.dry_run


def sweep_permissions(policy: GovernancePolicy, account: str) -> list[Permission]:
    """Nothing unless the sweep is on and not a dry run. Then: its verdict and clean-up tags (as enforce and
    cleanup write them), deregistering unprotected AMIs if it may deregister, deleting unprotected snapshots if it
    may delete, and in enforce mode the policy's remediation (the AMIs it judges are judged by the enforcement
    service, which remediates there); the protection and approval tags out of reach, as for every role."""
    if not sweep_acts(policy):
        return []
    regions = list(policy.governed_regions)
    images, snapshots = image_arns(regions), snapshot_arns(regions)
    permissions = [
        Permission(
            iam.PolicyStatement(
                sid="SweepTagsInOwnTagNamespaceOnly",
                actions=["ec2:CreateTags"],
                resources=images + snapshots,
                conditions={**_own_tag_keys_only(policy), **_owned_by(account)},
            ),
            why_wildcard=(
                f"the sweep judges AMIs never judged and marks the snapshots it deletes, whatever their id; limited "
                f"to this account's images and snapshots in the governed regions, and to tag keys starting with "
                f"{policy.tag_prefix!r}"
            ),
        ),
        _delete_own_tags_only(
            policy,
            "SweepRemovesOwnTagNamespaceOnly",
            images + snapshots,
            f"stale verdict tags and the deletion mark of a snapshot EC2 keeps are removed, whatever their id; "
            f"limited to images and snapshots in the governed regions, and to tag keys starting with "
            f"{policy.tag_prefix!r}",
        ),
        _never_the_protection_tag(
            policy, "SweepNeverTouchesProtectionTag", ["ec2:CreateTags", "ec2:DeleteTags"], images + snapshots
        ),
    ]
    if sweep_deregisters(policy):
        permissions.append(
            Permission(
                iam.PolicyStatement(
                    sid="SweepDeregistersUnprotectedImages",
                    actions=["ec2:DeregisterImage"],
                    resources=images,
                    conditions={**_unprotected(policy), **_owned_by(account)},
                ),
                why_wildcard=f"{ANY_IMAGE_REASON}; only this account's images without the protection tag",
            )
        )
    if sweep_deletes_snapshots(policy):
        permissions.append(
            Permission(
                iam.PolicyStatement(
                    sid="SweepDeletesUnprotectedSnapshots",
                    actions=["ec2:DeleteSnapshot"],
                    resources=snapshots,
                    conditions={**_unprotected(policy), **_owned_by(account)},
                ),
                why_wildcard=(
                    "orphaned snapshots have random ids; limited to this account's snapshots in the governed regions "
                    "without the protection tag"
                ),
            )
        )
    return permissions + remediation_permissions(policy)
