"""Replication: an authorised approval of a compliant, available AMI queues one copy job per target region
(the copy worker, services/copy.py, makes each copy exactly once); replica state events settle the lineage, share
the replica and, when every region is done, announce the round.

The entry point is `ReplicationService` (EventBridge: the approval's CreateTags, AMI state changes). Copies never
happen inside the event handler, so EC2's concurrent-copy cap and CopyImage's 1-per-second refill are met with the
copy queue's delayed redelivery, not with sleeping.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, NoReturn, Protocol

from aws_lambda_powertools import Logger

from ami_governance.adapters.ec2 import TagLimitExceeded
from ami_governance.models.events import CREATE_TAGS, AmiStateChangeEvent, CloudTrailImageEvent
from ami_governance.models.image import ComplianceStatus, ImageFacts
from ami_governance.models.jobs import CopyJob
from ami_governance.models.lineage import ApprovalRecord, ApprovalStatus, ReplicaState, RoundPlan
from ami_governance.rules.approval import (
    ApprovalDecision,
    approval_answer,
    carries_approval,
    generation_of,
    judge_approval,
    judge_readiness,
    regions_to_queue,
    replica_source,
    target_regions,
    withdrawn_reason,
)
from ami_governance.rules.compliance import evaluate
from ami_governance.rules.notices import approval_rejected_notice
from ami_governance.rules.tags import SystemTag, fit_tag_value, iso_timestamp, subject_from
from ami_governance.services.common import EventOutcome, EventService, NoticeSink
from ami_governance.services.lineage import (
    Lineage,
    LineageStore,
    ReplicaImages,
    ReplicaNotRecordedYet,
    SourceRef,
    replicas_of,
)

logger = Logger(child=True)

APPROVAL_CALL = CREATE_TAGS
# States of the AMI State Change event that replication acts on.
SETTLING_STATES = {"available": ReplicaState.AVAILABLE, "failed": ReplicaState.FAILED}


class VerdictNotRecordedYet(RuntimeError):
    """An approved AMI that enforcement has not judged yet (its events are late, retried or dead-lettered): the
    approval is retried, so that it is decided on the verdict, not rejected for the system's own lag."""


class JobQueue(Protocol):
    def send(self, jobs: Sequence[Mapping[str, Any]]) -> None: ...


class ReplicationInventory(LineageStore, Protocol):
    """The inventory as the replicate Lambda uses it: lineage, plus the approval and its round."""

    def record_approval(self, image_id: str, region: str, approval: ApprovalRecord) -> None: ...
    def prepare_round(self, image_id: str, region: str) -> None: ...
    def queue_round(self, image_id: str, region: str, plan: RoundPlan) -> bool: ...


class ConcurrentApproval(RuntimeError):
    """Another delivery changed the replication entries twice while this one planned: retried by Lambda."""


@dataclass
class ApprovalOutcome:
    image_id: str
    region: str
    result: str
    reason: str = ""
    approver: str | None = None
    queued: list[str] = field(default_factory=list)
    already_replicated: list[str] = field(default_factory=list)


@dataclass
class ReplicationService(EventService):
    images_in: Callable[[str], ReplicaImages]
    inventory: ReplicationInventory
    notifier: NoticeSink
    copy_queue: JobQueue
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    lineage: Lineage = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.lineage = Lineage(self.policy, self.images_in, self.inventory, self.notifier, self.count, self.now)

    # ---- approvals ------------------------------------------------------------------------------

    def on_cloudtrail(self, event: CloudTrailImageEvent) -> EventOutcome:
        dropped = self.screen_call(event, {APPROVAL_CALL})
        if dropped:
            return dropped
        detail = event.detail
        tags_set = detail.tags_set()
        if tags_set.get(self.policy.approval_tag_key) != self.policy.approval.value:
            # The rule matches the approval tag's key; another value (approved=false) is not an approval.
            self.count("NotApprovals")
            return EventOutcome("ignored", detail.event_id, "the tag change does not approve")
        image_ids = detail.image_ids_in_resources()
        if not image_ids:
            return EventOutcome("ignored", detail.event_id, "no AMI among the tagged resources")
        identity = detail.user_identity
        callers = [arn for arn in dict.fromkeys((identity.principal_arn, identity.arn)) if arn]
        images = self.images_in(detail.aws_region)
        described = images.describe_images(image_ids)
        outcomes = []
        awaiting: list[str] = []
        for image_id in image_ids:
            try:
                outcomes.append(
                    self._on_approval(images, image_id, described.get(image_id), tags_set, callers, detail.event_id)
                )
            except VerdictNotRecordedYet:
                awaiting.append(image_id)
        if awaiting:
            # Raised once the other AMIs are handled: their retry finds their approvals done.
            raise VerdictNotRecordedYet(f"not judged by enforcement yet: {', '.join(awaiting)}; retry later")
        return EventOutcome("handled", detail.event_id, images=[asdict(o) for o in outcomes])

    def _on_approval(  # noqa: PLR0911 - one outcome per approval status, after the two refusals
        self,
        images: ReplicaImages,
        image_id: str,
        image: ImageFacts | None,
        tags_set: Mapping[str, str],
        callers: list[str],
        event_id: str,
    ) -> ApprovalOutcome:
        if image is None:
            self.count("ImagesGone")
            return ApprovalOutcome(image_id, "", "gone", "the AMI no longer exists")
        if image.owner_id != self.account_id:
            self.count("ForeignImages")
            return ApprovalOutcome(image_id, image.region, "foreign-image", f"owned by {image.owner_id}")
        decision = judge_approval(self.policy, tags_set, callers, image)
        if decision.status is ApprovalStatus.UNJUDGED:
            self._unjudged(image, event_id)
        if decision.status is ApprovalStatus.APPROVED:
            decision = self._still_compliant(image, decision)
        self.count("Approvals", status=decision.status.value)
        if decision.status is ApprovalStatus.APPROVED:
            return self._start_round(images, image, str(decision.approver), event_id)
        if decision.status is ApprovalStatus.PENDING:
            return self._pending(images, image, decision, event_id)
        if decision.status is ApprovalStatus.WITHDRAWN:
            return self._withdrawn(images, image, None)
        if decision.status is ApprovalStatus.REJECTED:
            return self._reject(images, image, decision, callers[0] if callers else None, event_id)
        # Only an approval starts copies: a status added to the rules later must be handled here first.
        logger.error(
            "Approval decision not handled: nothing copied",
            extra={"image_id": image.image_id, "status": decision.status.value, "event_id": event_id},
        )
        self.count("ApprovalsUnhandled", status=decision.status.value)
        reason = f"approval status {decision.status.value} is not handled by replication"
        return ApprovalOutcome(image.image_id, image.region, "refused", reason, decision.approver)

    def _still_compliant(self, image: ImageFacts, decision: ApprovalDecision) -> ApprovalDecision:
        """The verdict tag is enforcement's as of the last tag change it handled: a change whose event it has not
        handled yet (a required tag removed just before the approval) must not let a non-compliant AMI be copied.
        The AMI's current tags are judged as enforcement will judge them."""
        approvable = {
            ComplianceStatus.COMPLIANT,
            *([ComplianceStatus.EXEMPT] if self.policy.approval.allow_exempt else []),
        }
        current = evaluate(self.policy, subject_from(self.policy, image.name, image.tags)).status
        if current in approvable:
            return decision
        reason = f"the AMI is {current.value} by its current tags (its verdict tag is not current yet)"
        return ApprovalDecision(ApprovalStatus.REJECTED, reason, decision.approver)

    def _unjudged(self, image: ImageFacts, event_id: str) -> NoReturn:
        """An approval of an available AMI that carries no verdict yet is decided once it does: enforcement judges
        the AMI on its creation events, and on this approval's own CreateTags event if it never was. Raised, so that
        Lambda retries the approval (then dead-letters it beside enforcement's events); never rejected for a lag of
        the system's own."""
        logger.warning(
            "Approval of an AMI enforcement has not judged yet: retried",
            extra={"image_id": image.image_id, "event_id": event_id, "creation_date": image.creation_date},
        )
        self.count("ApprovalsAwaitingVerdict")
        raise VerdictNotRecordedYet(f"{image.image_id}: not judged by enforcement yet; retry later")

    def _pending(
        self, images: ReplicaImages, image: ImageFacts, decision: ApprovalDecision, event_id: str
    ) -> ApprovalOutcome:
        """An approval of an AMI that is still pending: recorded, and honoured when the AMI becomes available."""
        approver = str(decision.approver)
        self.inventory.record_approval(
            image.image_id, image.region, self._approval(image, approver, event_id, ApprovalStatus.PENDING)
        )
        # The `available` event may have been handled between the read above and that write, finding no
        # pending approval: look again now that the approval is on record.
        now = images.describe_image(image.image_id)
        if now is not None and now.state != "pending":
            decided = self._on_pending_source_image(images, now, approver, event_id)
            if decided is not None:
                return decided
        self._answer(images, image, approval_answer(decision), approver)
        return ApprovalOutcome(image.image_id, image.region, "pending", decision.reason, approver)

    def _reject(
        self, images: ReplicaImages, image: ImageFacts, decision: ApprovalDecision, caller: str | None, event_id: str
    ) -> ApprovalOutcome:
        logger.warning(
            "Approval rejected", extra={"image_id": image.image_id, "reason": decision.reason, "caller": caller}
        )
        item = self.inventory.get(image.image_id, image.region) or {}
        if (item.get("approval_rejection") or {}).get("event_id") != event_id:  # not a repeated delivery
            self.notifier.publish(approval_rejected_notice(image, decision.reason, caller, event_id))
            self.count("Notifications")
            rejection = {"by": caller, "reason": decision.reason, "at": iso_timestamp(self.now()), "event_id": event_id}
            self.inventory.record(image.image_id, image.region, {"approval_rejection": rejection})
        if decision.approver is None and self.policy.tag_key(SystemTag.APPROVED_BY) in image.tags:
            # Someone the policy does not allow set the tag again (or an event says so): the approval an approver
            # gave stands, and so does its answer; the attempt is in the notice and the inventory.
            return ApprovalOutcome(image.image_id, image.region, "rejected", decision.reason)
        self._answer(images, image, approval_answer(decision))
        return ApprovalOutcome(image.image_id, image.region, "rejected", decision.reason, decision.approver)

    def _withdrawn(self, images: ReplicaImages, image: ImageFacts, approver: str | None) -> ApprovalOutcome:
        """The approval tag was set and is gone (or changed) by the time the approval is handled: no copy, and the
        answer says why. Nobody is notified: withdrawing is the approver's own doing."""
        decision = ApprovalDecision(ApprovalStatus.WITHDRAWN, withdrawn_reason(self.policy), approver)
        logger.info("Approval withdrawn before copies started", extra={"image_id": image.image_id})
        self.count("ApprovalsWithdrawn")
        self._answer(images, image, approval_answer(decision))
        return ApprovalOutcome(image.image_id, image.region, "withdrawn", decision.reason, approver)

    def _start_round(self, images: ReplicaImages, image: ImageFacts, approver: str, event_id: str) -> ApprovalOutcome:
        targets = target_regions(self.policy, image)
        if targets.ignored:
            logger.warning(
                "Regions named on the AMI are not replication regions of the policy",
                extra={"image_id": image.image_id, "ignored": list(targets.ignored)},
            )
            self.count("UnknownTargetRegions", value=len(targets.ignored))
        if not targets.regions:
            answer = "approved: no target region (see the policy's replication regions and the AMI's tag)"
            self._answer(images, image, answer, approver)
            return ApprovalOutcome(image.image_id, image.region, "approved", "no target region", approver)

        self.inventory.prepare_round(image.image_id, image.region)
        queued: list[str] = []
        present: list[str] = []
        generations: dict[str, int] = {}
        for _attempt in range(2):
            item = self.inventory.get(image.image_id, image.region) or {}
            replicas = replicas_of(item)
            queued, present = regions_to_queue(targets.regions, replicas, event_id, iso_timestamp(self.now()))
            if not queued and item.get("replication_round") == event_id:
                # A repeated delivery of the approval that started this round (CloudTrail's duplicate, or one whose
                # idempotency record expired), every region claimed already: the round's answer stays on the AMI.
                self.count("ApprovalsRepeated")
                reason = "repeated delivery of this round's approval"
                return ApprovalOutcome(image.image_id, image.region, "approved", reason, approver, [], present)
            generations = {region: generation_of(replicas.get(region)) for region in queued}
            approval = self._approval(image, approver, event_id, ApprovalStatus.APPROVED)
            # Planned on the entries as read: a delivery or copy worker that changed one meanwhile fails the write.
            if self.inventory.queue_round(
                image.image_id, image.region, RoundPlan(approval, targets.regions, generations, replicas)
            ):
                break
        else:
            raise ConcurrentApproval(f"replication entries of {image.image_id} changed while planning; retrying")

        jobs = [asdict_job(image, region, approver, event_id, generations[region]) for region in queued]
        self.copy_queue.send(jobs)
        self.count("CopiesQueued", value=len(jobs))
        decision = ApprovalDecision(ApprovalStatus.APPROVED, approver=approver)
        answer = approval_answer(decision, queued, {r: replicas[r] for r in present if r in replicas})
        self._answer(images, image, answer, approver)
        logger.info("Approval accepted", extra={"image_id": image.image_id, "queued": queued, "already": present})
        return ApprovalOutcome(image.image_id, image.region, "approved", "", approver, queued, present)

    def _approval(self, image: ImageFacts, approver: str, event_id: str, status: ApprovalStatus) -> ApprovalRecord:
        return ApprovalRecord(status.value, approver, iso_timestamp(self.now()), event_id, image.owner_id, image.name)

    def _answer(self, images: ReplicaImages, image: ImageFacts, answer: str, approver: str | None = None) -> None:
        """Answer on the AMI itself, so whoever set the approval tag sees the outcome where they set it."""
        desired = {self.policy.tag_key(SystemTag.APPROVAL): answer}
        if approver:
            desired[self.policy.tag_key(SystemTag.APPROVED_BY)] = fit_tag_value(approver)
        changed = {key: value for key, value in desired.items() if image.tags.get(key) != value}
        if not changed:
            return
        try:
            images.create_tags([image.image_id], changed)
        except TagLimitExceeded:
            logger.warning("AMI is at the tag limit: approval answer not tagged", extra={"image_id": image.image_id})
            self.count("TagsDroppedAtLimit", value=len(changed))

    # ---- state changes --------------------------------------------------------------------------

    def on_state_change(self, event: AmiStateChangeEvent) -> EventOutcome:  # noqa: PLR0911 - one per refusal
        detail = event.detail
        refused = self.refused(event.account, event.region, event.id)
        if refused:
            return refused
        item = self.inventory.get(detail.image_id, event.region) or {}
        source = SourceRef.parse(str(item.get("replica_of", "")))
        if source is None and item.get("approval_status") == "pending":
            return self._on_pending_source(detail.image_id, event.region, item, detail.state, event.id)
        if detail.state == ReplicaState.DEREGISTERED:
            return self._on_deregistered(source, event.region, detail.image_id, event.id)
        state = SETTLING_STATES.get(detail.state)
        if state is None:
            self.count("UnsupportedEvents")
            return EventOutcome("ignored", event.id, f"AMI state {detail.state} is not handled by replication")
        image: ImageFacts | None = None
        described = False
        if source is None:
            # The state change can outrun the copy worker's record of the replica: the lineage tags, written as
            # the copy was created, name the source whose entry decides whether this AMI is one of ours.
            image, described = self.images_in(event.region).describe_image(detail.image_id), True
            found = replica_source(self.policy, image) if image is not None else None
            source = SourceRef.parse(found) if found else None
        if source is None:
            return EventOutcome("ignored", event.id, "neither a replica nor an AMI awaiting replication")
        if state is ReplicaState.AVAILABLE:
            refuted = self._availability_refuted(event, image if described else None, described)
            if refuted is not None:
                return refuted
        result = self._settle(source, event.region, detail.image_id, state, event.id, detail.error_message)
        return EventOutcome("handled", event.id, f"replica of {source} {result}")

    def _availability_refuted(
        self, event: AmiStateChangeEvent, image: ImageFacts | None, described: bool
    ) -> EventOutcome | None:
        """Sharing a replica and closing its region are done only for a replica EC2 shows available: an event that
        says so of a pending, failed or missing AMI (forged, or misrouted) changes nothing (logged, counted)."""
        detail = event.detail
        if not described:
            image = self.images_in(event.region).describe_image(detail.image_id)
        if image is not None and image.state == "available":
            return None
        shown = image.state if image is not None else "missing"
        logger.warning(
            "AMI state in the event is not the replica's state in EC2: nothing done",
            extra={"image_id": detail.image_id, "event_id": event.id, "claimed": detail.state, "state": shown},
        )
        self.count("ClaimsRefuted", claim="state")
        return EventOutcome("ignored", event.id, f"claims-refuted: EC2 shows the AMI {shown}")

    def _on_deregistered(self, source: SourceRef | None, region: str, image_id: str, event_id: str) -> EventOutcome:
        if source is None:
            return EventOutcome("ignored", event_id, "not a replica")
        self.count("ReplicasDeregistered")
        result = self._settle(source, region, image_id, ReplicaState.DEREGISTERED, event_id)
        return EventOutcome("handled", event_id, f"replica of {source} deregistered: {result}")

    def _settle(
        self,
        source: SourceRef,
        region: str,
        replica_id: str,
        state: ReplicaState,
        event_id: str,
        error: str | None = None,
    ) -> str:
        try:
            return self.lineage.settle(source, region, replica_id, state, event_id, error)
        except ReplicaNotRecordedYet:
            logger.warning("Replica state change before its copy is recorded; retried", extra={"replica": replica_id})
            self.count("ReplicaEventsEarly")
            raise

    def _on_pending_source(
        self, image_id: str, region: str, item: Mapping[str, Any], state: str, event_id: str
    ) -> EventOutcome:
        """An approval given while the AMI was pending is honoured when it becomes available and is still
        compliant; it is rejected (answered, notified) when the AMI fails or goes instead."""
        images = self.images_in(region)
        approver = str(item.get("approved_by", ""))
        image = images.describe_image(image_id) if state != ReplicaState.DEREGISTERED else None
        if image is None:
            self.inventory.record(image_id, region, {"approval_status": "rejected"})
            self.count("Approvals", status="rejected")
            return EventOutcome("handled", event_id, "the approved AMI is gone: approval dropped")
        outcome = self._on_pending_source_image(images, image, approver, event_id)
        if outcome is None:
            return EventOutcome("ignored", event_id, "the approved AMI is still pending")
        return EventOutcome("handled", event_id, images=[asdict(outcome)])

    def _on_pending_source_image(
        self, images: ReplicaImages, image: ImageFacts, approver: str, event_id: str
    ) -> ApprovalOutcome | None:
        if not carries_approval(self.policy, image):
            # Honoured later, so asked again: the approver may have removed the tag while the AMI was pending.
            self.inventory.record(image.image_id, image.region, {"approval_status": ApprovalStatus.WITHDRAWN.value})
            self.count("Approvals", status=ApprovalStatus.WITHDRAWN.value)
            return self._withdrawn(images, image, approver)
        decision = judge_readiness(self.policy, image, approver)
        if decision.status is ApprovalStatus.UNJUDGED:
            self._unjudged(image, event_id)
        if decision.status is ApprovalStatus.REJECTED:
            self.inventory.record(image.image_id, image.region, {"approval_status": "rejected"})
            return self._reject(images, image, decision, approver, event_id)
        if decision.status is ApprovalStatus.APPROVED:
            return self._start_round(images, image, approver, event_id)
        return None


def asdict_job(image: ImageFacts, region: str, approver: str, event_id: str, generation: int) -> dict[str, Any]:
    return CopyJob(
        source_image_id=image.image_id,
        source_region=image.region,
        target_region=region,
        name=image.name,
        description=image.description,
        approved_by=approver,
        approval_event_id=event_id,
        generation=generation,
    ).model_dump()
