"""Pure rules for approval-gated replication: is a tag change an approval that counts, which regions need a
copy job, what one copy request looks like, when a replication round is over, and how long a deferred copy
waits.

The lineage of a source AMI lives in its inventory item as `replicas`: {target region: entry}, where an entry
moves queued -> copying -> available | failed, and to deregistered when the replica goes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from ami_governance.models.image import ComplianceStatus, ImageFacts
from ami_governance.models.jobs import CopyRequest
from ami_governance.models.lineage import ApprovalStatus, ReplicaState
from ami_governance.models.policy import GovernancePolicy
from ami_governance.rules.tags import SystemTag, fit_tag_value, lineage_value

# CopyImage's ClientToken: up to 64 ASCII characters.
CLIENT_TOKEN_MAX = 64


# A region whose replica ended in one of these gets a new copy (and a new ClientToken) when the AMI is approved
# again.
RECOPY_STATES = frozenset({ReplicaState.FAILED, ReplicaState.DEREGISTERED})
# A region whose approval was withdrawn before its copy started is queued again by the next approval; no copy was
# made, so its ClientToken stays (a copy a dead worker did start is then returned by EC2, not made twice).
REQUEUE_STATES = RECOPY_STATES | {ReplicaState.WITHDRAWN}
# A replication round is over when every target region is in one of these.
FINAL_STATES = frozenset({ReplicaState.AVAILABLE, ReplicaState.FAILED, ReplicaState.WITHDRAWN})
# An approved, available AMI without enforcement's verdict: its creation event is late, retried or dead-lettered, or
# it was never judged (older than the deployment, imported). Enforcement gets the approval's own CreateTags event
# too and judges it then, so a verdict is always coming: the approval waits for it (services/replicate.py).
UNJUDGED_REASON = "the AMI is not yet judged"


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

    `caller_arns` are the caller's principal ARN (the role behind an assumed-role session) and then its session
    ARN (CloudTrail's userIdentity). The AMI's own compliance tag decides compliance: enforcement judged it
    before anyone could approve it.
    """
    key = policy.approval_tag_key
    if tags_set.get(key) != policy.approval.value:
        return ApprovalDecision(ApprovalStatus.NOT_AN_APPROVAL)
    if not carries_approval(policy, image):
        # The event says what was set, the AMI what holds now: an approver who set the tag and removed it (or set
        # it to another value) before this event was handled has withdrawn the approval.
        return ApprovalDecision(ApprovalStatus.WITHDRAWN, withdrawn_reason(policy))
    approver = next((arn for arn in caller_arns if _approves(arn, policy.approval.approvers)), None)
    if approver is None:
        who = caller_arns[0] if caller_arns else "an unknown caller"
        return ApprovalDecision(ApprovalStatus.REJECTED, f"{who} is not allowed to approve AMIs")
    source = replica_source(policy, image)
    if source is not None:
        return ApprovalDecision(ApprovalStatus.REJECTED, f"the AMI is a replica of {source}: approve that", approver)
    return judge_readiness(policy, image, approver)


def carries_approval(policy: GovernancePolicy, image: ImageFacts) -> bool:
    """Whether the AMI, as described now, carries the approval tag with the approval value. An approval counts only
    while it does: every step that would start a copy asks again."""
    return image.tags.get(policy.approval_tag_key) == policy.approval.value


def withdrawn_reason(policy: GovernancePolicy) -> str:
    return f"the AMI no longer carries {policy.approval_tag_key}={policy.approval.value}"


def withdrawn_answer(policy: GovernancePolicy, replicas: Mapping[str, Mapping[str, Any]]) -> str:
    """The answer once a copy worker found the approval tag gone before a region's copy started: the regions not
    copied (copies already made stay, and keep their own entries)."""
    regions = sorted(region for region, entry in replicas.items() if entry.get("state") == ReplicaState.WITHDRAWN)
    return fit_tag_value(f"withdrawn: {withdrawn_reason(policy)}; not copied to {', '.join(regions)}")


def _approves(arn: str, patterns: Sequence[str]) -> bool:
    """A session ARN ends in a name the caller chose: it counts only for patterns written for sessions (STS
    ARNs), so that `*Approver*` cannot be met by a session merely named so."""
    is_session = ":sts::" in arn
    return any(fnmatchcase(arn, p) for p in patterns if not is_session or (p.startswith("arn:aws") and ":sts:" in p))


def judge_readiness(policy: GovernancePolicy, image: ImageFacts, approver: str) -> ApprovalDecision:
    """An approved AMI may be copied once it is compliant and available. A pending AMI's approval waits for its
    `available` event and is judged again then (its verdict may not exist yet, or may change meanwhile)."""
    if image.state == "pending":
        return ApprovalDecision(ApprovalStatus.PENDING, "copies start when the AMI is available", approver)
    compliance = image.tags.get(policy.tag_key(SystemTag.COMPLIANCE))
    approvable = {ComplianceStatus.COMPLIANT.value}
    if policy.approval.allow_exempt:
        approvable.add(ComplianceStatus.EXEMPT.value)
    if compliance is None and image.state == "available":
        return ApprovalDecision(ApprovalStatus.UNJUDGED, UNJUDGED_REASON, approver)
    if compliance not in approvable:
        reason = UNJUDGED_REASON if compliance is None else f"the AMI is {compliance}"
        return ApprovalDecision(ApprovalStatus.REJECTED, reason, approver)
    if image.state != "available":
        return ApprovalDecision(ApprovalStatus.REJECTED, f"the AMI is {image.state}", approver)
    return ApprovalDecision(ApprovalStatus.APPROVED, "", approver)


def replica_source(policy: GovernancePolicy, image: ImageFacts) -> str | None:
    """'<region>/<ami>' of the source when `image` is a replica this system made (its lineage tag names its
    real source, and it records an approver), else None."""
    if not (image.source_image_id and image.source_region):
        return None
    source = lineage_value(image.source_region, image.source_image_id)
    tags = image.tags
    if tags.get(policy.tag_key(SystemTag.SOURCE_IMAGE)) == source and policy.tag_key(SystemTag.APPROVED_BY) in tags:
        return source
    return None


def approval_answer(
    decision: ApprovalDecision, queued: Sequence[str] = (), replicas: Mapping[str, Mapping[str, Any]] | None = None
) -> str:
    """The value of the `<prefix>approval` tag that answers an approval on the AMI itself."""
    if decision.status is not ApprovalStatus.APPROVED:
        return fit_tag_value(f"{decision.status.value}: {decision.reason}")
    if queued:
        return fit_tag_value(f"approved: copying to {', '.join(queued)}")
    states = ", ".join(f"{region} {entry.get('state')}" for region, entry in sorted((replicas or {}).items()))
    return fit_tag_value(f"approved: nothing new to copy ({states})")


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


def needs_copy_job(entry: Mapping[str, Any] | None, event_id: str, now: str) -> bool:
    """Whether a target region needs a copy job for the approval `event_id` (`now`: ISO time).

    Yes when it has no entry; when its replica failed or was deregistered (drift: re-approval copies only what
    is missing), or its copy was withdrawn, by an earlier approval, not by this one (a repeated delivery of the
    event must not copy again);
    when this same event queued it before (its jobs may not have reached the queue: they are sent again, the
    copy worker makes a repeat harmless); and when a copy worker claimed it and died before EC2 answered.
    """
    if entry is None:
        return True
    state, by_this_event = entry.get("state"), entry.get("approval_event_id") == event_id
    if state in REQUEUE_STATES:
        return not by_this_event
    if state == ReplicaState.QUEUED:
        return by_this_event
    abandoned = state == ReplicaState.COPYING and not entry.get("image_id")
    return abandoned and str(entry.get("lease_until", "")) < now


def regions_to_queue(
    targets: Sequence[str], replicas: Mapping[str, Mapping[str, Any]], event_id: str, now: str
) -> tuple[list[str], list[str]]:
    """(regions that need a copy job, regions that have, are getting or already tried a replica)."""
    to_queue = [region for region in targets if needs_copy_job(replicas.get(region), event_id, now)]
    return to_queue, [region for region in targets if region not in to_queue]


def generation_of(entry: Mapping[str, Any] | None) -> int:
    """Copies made so far for one region: a new copy after a failed or deregistered one needs a new ClientToken
    (EC2 would otherwise answer with the old, dead replica)."""
    if not entry:
        return 0
    generation: int = int(entry.get("generation", 0))
    return generation + 1 if entry.get("state") in RECOPY_STATES else generation


def client_token(source_image_id: str, source_region: str, target_region: str, generation: int = 0) -> str:
    """The same copy request always carries the same token, so EC2 never makes a second copy on a retry."""
    digest = hashlib.sha256(f"{source_region}/{source_image_id}/{target_region}/{generation}".encode()).hexdigest()
    return f"ami-governance-{digest}"[:CLIENT_TOKEN_MAX]


def copy_request(
    policy: GovernancePolicy,
    source_image_id: str,
    source_region: str,
    target_region: str,
    *,
    name: str,
    description: str,
    approver: str,
    generation: int,
) -> CopyRequest:
    """One CopyImage into `target_region`: the source's name and description, encrypted with the region's key
    where the policy names one, tagged with its lineage as it is created."""
    kms_key = policy.replication.kms_keys.get(target_region)
    return CopyRequest(
        region=target_region,
        source_image_id=source_image_id,
        source_region=source_region,
        client_token=client_token(source_image_id, source_region, target_region, generation),
        name=name,
        description=description,
        encrypted=kms_key is not None,
        kms_key_id=kms_key,
        tags={
            policy.tag_key(SystemTag.SOURCE_IMAGE): lineage_value(source_region, source_image_id),
            policy.tag_key(SystemTag.SOURCE_REGION): source_region,
            policy.tag_key(SystemTag.APPROVED_BY): fit_tag_value(approver),
        },
    )


def round_is_over(targets: Sequence[str], replicas: Mapping[str, Mapping[str, Any]]) -> bool:
    return bool(targets) and all((replicas.get(r) or {}).get("state") in FINAL_STATES for r in targets)


# A deferred copy (EC2's concurrent-copy cap, throttling) waits on the queue: 1, 2, 4... minutes, at most 15.
RETRY_BASE_SECONDS = 60
RETRY_MAX_SECONDS = 900


def retry_delay_seconds(receive_count: int) -> int:
    """Backoff for the n-th delivery of a copy job (n >= 1), set as the message's visibility timeout."""
    exponent = max(receive_count - 1, 0)
    delay: int = RETRY_BASE_SECONDS * 2 ** min(exponent, 10)
    return min(delay, RETRY_MAX_SECONDS)
