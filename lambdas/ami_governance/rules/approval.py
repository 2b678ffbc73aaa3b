"""Pure rules for approval-gated replication: is a tag change an approval that counts, and what to copy where.

Groundwork for the replication capability: the rules are complete and tested; the Lambda that acts on them
(CopyImage with retries, lineage, sharing) is the next step.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from fnmatch import fnmatchcase

from ami_governance.models.image import ComplianceStatus, ImageFacts
from ami_governance.models.policy import GovernancePolicy
from ami_governance.rules.tags import SystemTag, fit_tag_value

# CopyImage's ClientToken: up to 64 ASCII characters.
CLIENT_TOKEN_MAX = 64


class ApprovalStatus(StrEnum):
    NOT_AN_APPROVAL = "not-an-approval"  # the tag change does not set the approval tag to its value
    APPROVED = "approved"
    PENDING = "pending"  # approved, but the AMI is not available yet: copies start on its `available` event
    REJECTED = "rejected"


@dataclass(frozen=True)
class ApprovalDecision:
    status: ApprovalStatus
    reason: str = ""
    approver: str | None = None


def judge_approval(
    policy: GovernancePolicy,
    tags_set: Mapping[str, str],
    caller_arns: Sequence[str],
    image: ImageFacts,
) -> ApprovalDecision:
    """Whether a CreateTags call that set `tags_set` on `image` approves it for replication.

    `caller_arns` are the caller's principal ARN and session ARN (CloudTrail's userIdentity). The AMI's own
    compliance tag decides compliance: enforcement judged it before anyone could approve it.
    """
    key = policy.approval_tag_key
    if tags_set.get(key) != policy.approval.value:
        return ApprovalDecision(ApprovalStatus.NOT_AN_APPROVAL)
    approver = next(
        (arn for arn in caller_arns if any(fnmatchcase(arn, pattern) for pattern in policy.approval.approvers)),
        None,
    )
    if approver is None:
        who = caller_arns[0] if caller_arns else "an unknown caller"
        return ApprovalDecision(ApprovalStatus.REJECTED, f"{who} is not allowed to approve AMIs")
    compliance = image.tags.get(policy.tag_key(SystemTag.COMPLIANCE))
    if compliance != ComplianceStatus.COMPLIANT.value:
        return ApprovalDecision(ApprovalStatus.REJECTED, f"the AMI is {compliance or 'not yet judged'}", approver)
    if image.state == "pending":
        return ApprovalDecision(ApprovalStatus.PENDING, "copies start when the AMI is available", approver)
    if image.state != "available":
        return ApprovalDecision(ApprovalStatus.REJECTED, f"the AMI is {image.state}", approver)
    return ApprovalDecision(ApprovalStatus.APPROVED, "", approver)


@dataclass(frozen=True)
class TargetRegions:
    regions: tuple[str, ...]
    ignored: tuple[str, ...] = ()  # names in the narrowing tag that are not replication regions


def target_regions(policy: GovernancePolicy, image: ImageFacts) -> TargetRegions:
    """The policy's replication regions except the AMI's own, narrowed by the AMI's regions tag if it has one."""
    regions = [r for r in policy.replication.regions if r != image.region]
    narrowing = image.tags.get(policy.replication_regions_tag_key)
    if narrowing is None:
        return TargetRegions(tuple(regions))
    wanted = [name.strip() for name in narrowing.split(",") if name.strip()]
    return TargetRegions(
        tuple(r for r in regions if r in wanted),
        tuple(name for name in wanted if name not in regions and name != image.region),
    )


def client_token(source_image_id: str, source_region: str, target_region: str) -> str:
    """The same copy request always carries the same token, so EC2 never makes a second copy on a retry."""
    digest = hashlib.sha256(f"{source_region}/{source_image_id}/{target_region}".encode()).hexdigest()
    return f"ami-governance-{digest}"[:CLIENT_TOKEN_MAX]


@dataclass(frozen=True)
class CopyRequest:
    region: str
    client_token: str
    name: str
    description: str
    encrypted: bool
    kms_key_id: str | None
    tags: dict[str, str] = field(default_factory=dict)


def plan_copies(
    policy: GovernancePolicy,
    image: ImageFacts,
    regions: Sequence[str],
    existing_replicas: Mapping[str, str],
    approver: str,
    description: str = "",
) -> list[CopyRequest]:
    """One CopyImage per target region that has no replica yet (the inventory, or `SourceImageId` lookups,
    say which have). Encrypted with the region's key where the policy names one."""
    requests = []
    for region in regions:
        if region in existing_replicas:
            continue
        kms_key = policy.replication.kms_keys.get(region)
        requests.append(
            CopyRequest(
                region=region,
                client_token=client_token(image.image_id, image.region, region),
                name=image.name,
                description=description,
                encrypted=kms_key is not None,
                kms_key_id=kms_key,
                tags={
                    policy.tag_key(SystemTag.SOURCE_IMAGE): f"{image.region}/{image.image_id}",
                    policy.tag_key(SystemTag.APPROVED_BY): fit_tag_value(approver),
                },
            )
        )
    return requests
