"""Exposure: public AMIs and snapshots, AMIs shared outside the policy's accounts, organizations and OUs
(`replication.share_with`; the scanned account itself always counts), and regions where image or snapshot block
public access is off. An OU of an allowed organization is allowed. An AMI whose launch permissions could not be read
(VerifiedBy.UNKNOWN) is reported as `sharing-unknown`, not actionable: its sharing is unknown, not "not shared".
"""

from __future__ import annotations

from datetime import datetime

from ami_governance.models.findings import (
    Finding,
    FindingKind,
    LaunchPermissions,
    RegionEvidence,
    ResourceType,
    VerifiedBy,
)
from ami_governance.models.policy import GovernancePolicy
from ami_governance.models.scan import ImageRecord, SnapshotRecord
from ami_governance.rules.findings.index import RegionIndex, age_days, image_finding, owner_tags, snapshot_cost

PUBLIC_IMAGE, SHARED_OUTSIDE, SHARING_UNKNOWN = "public-image", "shared-outside", "sharing-unknown"
PUBLIC_SNAPSHOT = "public-snapshot"
IMAGE_BPA_OFF, SNAPSHOT_BPA_OFF = "image-block-public-access-off", "snapshot-block-public-access-off"
UNBLOCKED = "unblocked"
VERIFIED_BY_WORDS = {
    VerifiedBy.INVENTORY: "as the inventory recorded them from its events",
    VerifiedBy.DESCRIBE: "as DescribeImageAttribute read them",
    VerifiedBy.UNKNOWN: "unknown",
}


def outside_sharing(policy: GovernancePolicy, account_id: str, permissions: LaunchPermissions) -> list[str]:
    """The accounts, organizations and OUs the AMI is shared with that the policy does not name."""
    allowed = policy.replication.share_with
    organizations = set(allowed.organization_arns)
    organization_ids = {arn.rsplit("/", 1)[-1] for arn in organizations}
    outside = [a for a in permissions.accounts if a != account_id and a not in allowed.accounts]
    outside += [o for o in permissions.organization_arns if o not in organizations]
    outside += [
        ou for ou in permissions.ou_arns if ou not in allowed.ou_arns and _ou_organization(ou) not in organization_ids
    ]
    return outside


def _ou_organization(ou_arn: str) -> str:
    # arn:aws:organizations::<management account>:ou/o-<org>/ou-<ou>
    parts = ou_arn.rsplit(":", 1)[-1].split("/")
    return parts[1] if len(parts) > 2 else ""


def find_exposure(
    policy: GovernancePolicy, evidence: RegionEvidence, now: datetime, index: RegionIndex | None = None
) -> list[Finding]:
    index = index or RegionIndex.of(evidence)
    findings: list[Finding] = []
    for image in index.images.values():
        findings.extend(_image_exposure(policy, index, image, now))
    findings.extend(
        _public_snapshot(policy, index, snapshot, now) for snapshot in evidence.scan.snapshots if snapshot.public
    )
    findings.extend(_block_public_access(index))
    return findings


def _image_exposure(policy: GovernancePolicy, index: RegionIndex, image: ImageRecord, now: datetime) -> list[Finding]:
    region, image_id = index.region, image.image_id
    permissions = index.permissions.get(image_id)
    findings = []
    if image.public or (permissions is not None and permissions.public):
        reason = "the AMI is public: any AWS account can launch it"
        fix = (
            f"aws ec2 modify-image-attribute --region {region} --image-id {image_id} "
            '--launch-permission "Remove=[{Group=all}]"'
        )
        findings.append(image_finding(policy, index, image, now, FindingKind.EXPOSURE, PUBLIC_IMAGE, reason, fix))
    if permissions is None:
        return findings
    if permissions.verified_by is VerifiedBy.UNKNOWN:
        reason = "its launch permissions could not be read: whether it is shared is unknown"
        fix = f"aws ec2 describe-image-attribute --region {region} --image-id {image_id} --attribute launchPermission"
        findings.append(
            image_finding(policy, index, image, now, FindingKind.EXPOSURE, SHARING_UNKNOWN, reason, fix, False)
        )
        return findings
    outside = outside_sharing(policy, index.account_id, permissions)
    if outside:
        reason = f"shared outside replication.share_with with {', '.join(outside)}"
        reason += f" (launch permissions {VERIFIED_BY_WORDS[permissions.verified_by]})"
        fix = _unshare(region, image_id, outside)
        findings.append(image_finding(policy, index, image, now, FindingKind.EXPOSURE, SHARED_OUTSIDE, reason, fix))
    return findings


def _unshare(region: str, image_id: str, outside: list[str]) -> str:
    def entry(grantee: str) -> str:
        if ":ou/" in grantee:
            return f"{{OrganizationalUnitArn={grantee}}}"
        if ":organization/" in grantee:
            return f"{{OrganizationArn={grantee}}}"
        return f"{{UserId={grantee}}}"

    removals = ",".join(entry(grantee) for grantee in outside)
    return (
        f"aws ec2 modify-image-attribute --region {region} --image-id {image_id} "
        f'--launch-permission "Remove=[{removals}]"'
        " (or add them to replication.share_with if they are meant to have it)"
    )


def _public_snapshot(policy: GovernancePolicy, index: RegionIndex, snapshot: SnapshotRecord, now: datetime) -> Finding:
    region, snapshot_id = index.region, snapshot.snapshot_id
    return Finding(
        kind=FindingKind.EXPOSURE,
        account_id=index.account_id,
        region=region,
        resource_type=ResourceType.SNAPSHOT,
        resource_id=snapshot_id,
        reason="the snapshot is public: any AWS account can create a volume from it",
        fix=(
            f"aws ec2 modify-snapshot-attribute --region {region} --snapshot-id {snapshot_id} "
            "--attribute createVolumePermission --operation-type remove --group-names all"
        ),
        name=snapshot.tags.get("Name", ""),
        detail=PUBLIC_SNAPSHOT,
        owner_tags=owner_tags(policy, snapshot.tags),
        age_days=age_days(snapshot.start_time, now),
        size_gib=snapshot.volume_size_gib,
        monthly_cost=snapshot_cost(policy, region, snapshot),
    )


def _block_public_access(index: RegionIndex) -> list[Finding]:
    scan, region = index.evidence.scan, index.region
    off = []
    if scan.image_block_public_access == UNBLOCKED:
        fix = f"aws ec2 enable-image-block-public-access --region {region} "
        fix += "--image-block-public-access-state block-new-sharing"
        off.append((IMAGE_BPA_OFF, "AMI", fix))
    if scan.snapshot_block_public_access == UNBLOCKED:
        fix = f"aws ec2 enable-snapshot-block-public-access --region {region} --state block-all-sharing"
        off.append((SNAPSHOT_BPA_OFF, "snapshot", fix))
    return [
        Finding(
            kind=FindingKind.EXPOSURE,
            account_id=index.account_id,
            region=region,
            resource_type=ResourceType.REGION,
            resource_id=region,
            reason=f"{what} block public access is off in {region}: {what}s can be made public",
            fix=fix,
            detail=detail,
        )
        for detail, what, fix in off
    ]
