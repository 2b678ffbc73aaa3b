"""Enforcement: judge every new or re-tagged AMI, stamp provenance and verdict, notify, remediate.

Orchestrates the pure rules and the adapters. Writes are diffed against the image's current tags,
so a duplicate event costs one DescribeImages and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from aws_lambda_powertools import Logger

from ami_governance.adapters.ec2 import MalformedImageId, TagLimitExceeded
from ami_governance.models.events import (
    MODIFY_IMAGE_ATTRIBUTE,
    NEW_IMAGE_CALLS,
    TAG_CALLS,
    AmiStateChangeEvent,
    CloudTrailDetail,
    CloudTrailImageEvent,
)
from ami_governance.models.findings import LaunchPermissions
from ami_governance.models.image import ComplianceStatus, ImageFacts, Verdict
from ami_governance.models.notices import Notice
from ami_governance.rules.compliance import evaluate
from ami_governance.rules.notices import resolved_notice, violation_notice
from ami_governance.rules.remediation import Ec2Action, RemediationPlan, plan_remediation
from ami_governance.rules.tags import (
    SystemTag,
    TagChange,
    creation_claims_refuted,
    creator_conflict,
    inherited_system_tags,
    iso_timestamp,
    only_system_tags_changed,
    provenance_tags,
    recorded_provenance,
    subject_from,
    summarise,
    tags_to_write,
    verdict_tags,
)
from ami_governance.services.common import EventOutcome, EventService, NoticeSink

logger = Logger(child=True)

# The EC2 states that bear out a state-change event's claim: an AMI is disabled only once it was available, so a
# genuine `available` that arrives after enforcement disabled the AMI (its CloudTrail event came first) still holds.
STATES_THAT_BEAR_OUT: dict[str, frozenset[str]] = {"available": frozenset({"available", "disabled"})}


class ImageStore(Protocol):
    def describe_image(self, image_id: str) -> ImageFacts | None: ...
    def describe_images(self, image_ids: list[str]) -> dict[str, ImageFacts | None]: ...
    def create_tags(self, resource_ids: list[str], tags: Mapping[str, str]) -> None: ...
    def delete_tags(self, resource_ids: list[str], keys: list[str]) -> None: ...
    def disable_image(self, image_id: str) -> None: ...
    def enable_image(self, image_id: str) -> None: ...
    def enable_deprecation(self, image_id: str, deprecate_at: datetime) -> None: ...
    def disable_deprecation(self, image_id: str) -> None: ...


class LaunchPermissionSource(Protocol):
    def read_one(self, image_id: str) -> LaunchPermissions | None: ...


class InventoryStore(Protocol):
    def record(self, image_id: str, region: str, fields: Mapping[str, Any]) -> None: ...
    def record_existing(self, image_id: str, region: str, fields: Mapping[str, Any]) -> bool: ...
    def record_newer_launch_permissions(self, image_id: str, region: str, permissions: LaunchPermissions) -> bool: ...


@dataclass
class ImageOutcome:
    image_id: str
    region: str
    result: str
    compliance: str | None = None
    violations: list[str] = field(default_factory=list)
    tags_written: list[str] = field(default_factory=list)
    notified: str | None = None
    remediation: str | None = None


@dataclass
class EnforcementService(EventService):
    images_in: Callable[[str], ImageStore]
    inventory: InventoryStore
    notifier: NoticeSink
    permissions_in: Callable[[str], LaunchPermissionSource]
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    _remediations: int = 0

    def handle(self, raw_event: Any) -> EventOutcome:
        self._remediations = 0
        return super().handle(raw_event)

    # ---- routing -----------------------------------------------------------------------------

    def on_cloudtrail(self, event: CloudTrailImageEvent) -> EventOutcome:
        dropped = self.screen_call(event, (*NEW_IMAGE_CALLS, *TAG_CALLS, MODIFY_IMAGE_ATTRIBUTE))
        if dropped:
            return dropped
        detail = event.detail
        if detail.event_name in TAG_CALLS:
            return self._on_tags_changed(detail)
        if detail.event_name == MODIFY_IMAGE_ATTRIBUTE:
            return self._on_attribute_modified(detail)
        return self._on_new_image(detail)

    def _on_new_image(self, detail: CloudTrailDetail) -> EventOutcome:
        image_id = detail.response_elements.image_id if detail.response_elements else None
        if not image_id:
            # ImportImage and CreateRestoreImageTask may answer before an AMI exists; its
            # State Change event will bring it.
            self.count("EventsWithoutImage")
            return EventOutcome("ignored", detail.event_id, f"{detail.event_name} response names no image yet")
        images = self.images_in(detail.aws_region)
        outcome = self._judge(
            images,
            image_id,
            detail.aws_region,
            detail.event_id,
            requested_tags=detail.image_tags_requested(),
            provenance=provenance_tags(self.policy, detail),
            creation=detail,
        )
        return EventOutcome("handled", detail.event_id, images=[outcome])

    def _on_tags_changed(self, detail: CloudTrailDetail) -> EventOutcome:
        image_ids = detail.image_ids_in_resources()
        if not image_ids:
            return EventOutcome("ignored", detail.event_id, "no AMI among the tagged resources")
        if only_system_tags_changed(self.policy, detail.tag_keys_changed()):
            # Our own verdict/provenance writes come back as CreateTags events: never re-judge them.
            self.count("OwnTagEventsIgnored")
            return EventOutcome("ignored", detail.event_id, "only governance tags changed")
        images = self.images_in(detail.aws_region)
        described = images.describe_images(image_ids)  # one call for all the AMIs of the event
        outcomes = [
            self._judge(images, image_id, detail.aws_region, detail.event_id, described=described)
            for image_id in image_ids
        ]
        self._record_protection(detail, described)
        return EventOutcome("handled", detail.event_id, images=outcomes)

    def _record_protection(self, detail: CloudTrailDetail, described: Mapping[str, ImageFacts | None]) -> None:
        """Keep the inventory's `protected` current: after deregistration the AMI's tags cannot be read, and the
        clean-up keeps a protected AMI's snapshots. Written when the protection tag changed, and for any tag change
        of an AMI that carries it (an AMI older than the deployment is recorded the first time it is re-tagged)."""
        key = self.policy.protection_tag_key
        changed = key in detail.tag_keys_changed()
        for image in described.values():
            if image is not None and image.owner_id == self.account_id and (changed or key in image.tags):
                self.inventory.record(image.image_id, image.region, {"protected": key in image.tags})

    def _on_attribute_modified(self, detail: CloudTrailDetail) -> EventOutcome:
        """Record the AMI's launch permissions after a ModifyImageAttribute on them, as EC2 reports them now.

        The call's add and remove lists are not applied: they say nothing of the grantees they do not name, an
        event can be lost or arrive after a later one, and a forged event must not write sharing into the
        inventory. The report trusts this record instead of reading every AMI's permissions on every run.
        """
        params = detail.request_parameters
        if params is None or not detail.changes_launch_permissions():
            self.count("AttributeChangesIgnored")
            attribute = params.attribute_type if params else None
            return EventOutcome("ignored", detail.event_id, f"attribute {attribute} is not launchPermission")
        image_id = str(params.image_id)  # the model refuses a ModifyImageAttribute that names no image
        region = detail.aws_region
        log = {
            "image_id": image_id,
            "region": region,
            "event_id": detail.event_id,
            "requested": params.launch_permission.counts() if params.launch_permission else {},
        }
        try:
            # Whose AMI it is, and whether it still exists: DescribeImageAttribute answers neither.
            image = self.images_in(region).describe_image(image_id)
            if image is None or image.owner_id != self.account_id:
                return self._permissions_not_recorded(image_id, region, detail.event_id, image, log)
            permissions = self.permissions_in(region).read_one(image_id)
        except MalformedImageId:
            logger.error("Malformed image id in event", extra=log)
            self.count("MalformedEvents")
            return EventOutcome(
                "rejected", detail.event_id, images=[ImageOutcome(image_id, region, "malformed-image-id")]
            )
        if permissions is None:  # deregistered between the two calls
            return self._permissions_not_recorded(image_id, region, detail.event_id, None, log)
        recorded = self.inventory.record_newer_launch_permissions(image_id, region, permissions)
        shared = {
            "public": permissions.public,
            "accounts": len(permissions.accounts),
            "organizations": len(permissions.organization_arns),
            "organizational_units": len(permissions.ou_arns),
        }
        if recorded:
            self.count("LaunchPermissionsRecorded")
            logger.info("Launch permissions recorded", extra={**log, "permissions": shared})
            result = "launch-permissions-recorded"
        else:
            # A later reading is already recorded (the report's, or another delivery's): it stands.
            self.count("LaunchPermissionsSuperseded")
            logger.info("A later reading of the launch permissions is recorded; this one is dropped", extra=log)
            result = "launch-permissions-superseded"
        return EventOutcome("handled", detail.event_id, images=[ImageOutcome(image_id, region, result)])

    def _permissions_not_recorded(
        self, image_id: str, region: str, event_id: str, image: ImageFacts | None, log: Mapping[str, Any]
    ) -> EventOutcome:
        if image is None:
            # Nothing is recorded: no item for an AMI that may never have existed, and a deregistered AMI has no
            # launch permissions left to report.
            logger.info("AMI is gone before its launch permissions could be read", extra=log)
            self.count("ImagesGone")
            result = "gone"
        else:
            logger.warning("AMI owned by another account is not governed here", extra={**log, "owner": image.owner_id})
            self.count("ForeignImages")
            result = "foreign-image"
        return EventOutcome("handled", event_id, images=[ImageOutcome(image_id, region, result)])

    def on_state_change(self, event: AmiStateChangeEvent) -> EventOutcome:
        detail = event.detail
        refused = self.refused(event.account, event.region, event.id)
        if refused:
            return refused
        if detail.state == "failed":
            self.count("ImagesFailed")
            logger.warning("AMI creation failed", extra={"image_id": detail.image_id, "error": detail.error_message})
            fields = {
                "account": event.account,
                "state": "failed",
                "error_message": detail.error_message,
                "recorded_at": iso_timestamp(self.now()),
                "last_event_id": event.id,
            }
            # EC2 lists a failed AMI (state failed) for a while; one it does not know gets no item of its own.
            image = self.images_in(event.region).describe_image(detail.image_id)
            if image is not None and image.state != "failed":
                # EC2 shows the AMI alive: the event's claim is not recorded (a forged or misrouted event).
                contradicted = self._state_claim_refuted(image, "failed", event.id)
                return EventOutcome("ignored", event.id, contradicted.result, images=[contradicted])
            if image is not None:
                self.inventory.record(detail.image_id, event.region, fields)
            else:
                self.inventory.record_existing(detail.image_id, event.region, fields)
            return EventOutcome("handled", event.id, images=[ImageOutcome(detail.image_id, event.region, "failed")])
        if detail.state != "available":
            self.count("UnsupportedEvents")
            return EventOutcome("ignored", event.id, f"AMI state {detail.state} is not handled by enforcement")
        images = self.images_in(event.region)
        outcome = self._judge(
            images, detail.image_id, event.region, event.id, record_inventory=True, claimed_state="available"
        )
        return EventOutcome("handled", event.id, images=[outcome])

    def _state_claim_refuted(self, image: ImageFacts, claimed: str, event_id: str) -> ImageOutcome:
        logger.warning(
            "AMI state in the event is not the AMI's state in EC2: nothing done",
            extra={"image_id": image.image_id, "event_id": event_id, "claimed": claimed, "state": image.state},
        )
        self.count("ClaimsRefuted", claim="state")
        return ImageOutcome(image.image_id, image.region, f"claims-refuted: EC2 shows the AMI {image.state}")

    def judge_images(self, region: str, image_ids: list[str], run_id: str) -> list[ImageOutcome]:
        """Judge AMIs no event judged (imported, or made before the deployment) as a tag change would: one
        DescribeImages for them all, the verdict tags, the notice and, in enforce mode, the remediation, under
        the per-event remediation cap (here: per call)."""
        self._remediations = 0
        images = self.images_in(region)
        described = images.describe_images(image_ids)
        return [self._judge(images, image_id, region, run_id, described=described) for image_id in image_ids]

    # ---- one image ---------------------------------------------------------------------------

    def _judge(
        self,
        images: ImageStore,
        image_id: str,
        region: str,
        event_id: str,
        requested_tags: Mapping[str, str] | None = None,
        provenance: Mapping[str, str] | None = None,
        described: Mapping[str, ImageFacts | None] | None = None,
        record_inventory: bool = False,
        claimed_state: str | None = None,
        creation: CloudTrailDetail | None = None,
    ) -> ImageOutcome:
        log = {"image_id": image_id, "region": region, "event_id": event_id}
        try:
            image = described[image_id] if described is not None else images.describe_image(image_id)
        except MalformedImageId:
            logger.error("Malformed image id in event", extra=log)
            self.count("MalformedEvents")
            return ImageOutcome(image_id, region, "malformed-image-id")
        refused = self._not_judged(image, image_id, region, log, claimed_state, creation)
        if refused is not None or image is None:  # (a missing AMI is always refused)
            return refused or ImageOutcome(image_id, region, "gone")

        # A copy carries its source's governance tags (CopyImageTags): judge it as if it had none.
        inherited = inherited_system_tags(
            self.policy, image.tags, image.image_id, (image.source_region, image.source_image_id)
        )
        view = replace(image, tags={k: v for k, v in image.tags.items() if k not in inherited})
        # First sight: the AMI carries no provenance of its own yet. Only then may the tags its creation call
        # requested stand in for tags the image does not show (a replayed event must not resurrect deleted tags),
        # and only then is the event's provenance written: a later creation event for the same AMI (a replay, or
        # a CopyImage repeated with its ClientToken by someone else) cannot rewrite who made it, so exemptions
        # keep following the recorded creator.
        recorded = recorded_provenance(self.policy, view.tags)
        first_sight = not recorded
        if provenance is not None and recorded:
            self._keep_recorded_provenance(recorded, provenance, log)
            provenance = None
        provisional = first_sight and provenance is None and record_inventory
        subject = subject_from(self.policy, image.name, view.tags, requested_tags if first_sight else None, provenance)
        verdict = evaluate(self.policy, subject)
        if provisional:
            # The state change outran the CloudTrail event (it usually does): without the creator, exemptions by
            # creator cannot be judged, so the notice and any remediation wait for that event.
            plan = RemediationPlan(summary="deferred until the CloudTrail event names the creator")
        else:
            cap_reached = self._remediations >= self.policy.remediation.max_images_per_event
            plan = plan_remediation(self.policy, view, verdict, self.now(), cap_reached=cap_reached)

        verdict_tag_values = verdict_tags(self.policy, verdict)
        desired = {
            **(provenance or {}),
            **verdict_tag_values,
            self.policy.tag_key(SystemTag.IMAGE_ID): image.image_id,
        }
        if plan.tag_value is not None:
            desired[self.policy.tag_key(SystemTag.REMEDIATION)] = plan.tag_value
        change = tags_to_write(self.policy, image.tags, desired, obsolete=inherited)

        # Tags are written last: they are what a retry compares against, so everything else must be done by then
        # (a notice that failed to publish is published again on the retry, not forgotten).
        notified = None if provisional else self._notify(view, verdict, subject.creator, plan, event_id, first_sight)
        self._remediate(images, image, plan)
        previous = view.tags.get(self.policy.tag_key(SystemTag.COMPLIANCE))
        if record_inventory:
            self._record_available(images, image, verdict, event_id)
        elif previous is not None and (provenance or change.to_write.keys() & verdict_tag_values.keys()):
            # A re-evaluation changed an existing verdict, or the creation event came after the `available` one
            # (the inventory item exists, without its creator): keep the inventory's copy current. (A new AMI's
            # first verdict reaches the inventory with its `available` event.)
            fields = self._verdict_fields(verdict, event_id)
            if provenance:
                fields["created_by"] = provenance.get(self.policy.tag_key(SystemTag.CREATED_BY))
            self.inventory.record(image.image_id, region, fields)
        self._apply_tags(images, image, change, log)

        self.count("ImagesEvaluated")
        if verdict.status is ComplianceStatus.NON_COMPLIANT:
            self.count("NonCompliantImages")
            for violation in verdict.violations:
                self.count("Violations", kind=violation.kind.value)
        outcome = ImageOutcome(
            image.image_id,
            region,
            "provisional" if provisional else "evaluated",
            verdict.status.value,
            [v.short for v in verdict.violations],
            sorted(change.to_write),
            notified,
            plan.summary or None,
        )
        logger.info("AMI judged", extra={**log, **asdict(outcome)})
        return outcome

    def _not_judged(
        self,
        image: ImageFacts | None,
        image_id: str,
        region: str,
        log: Mapping[str, str],
        claimed_state: str | None,
        creation: CloudTrailDetail | None,
    ) -> ImageOutcome | None:
        """The outcome of an AMI this event may not judge (gone, another account's, or contradicted by EC2)."""
        if image is None:
            # Nothing is recorded: "not found" cannot tell an AMI deregistered since from one that never existed,
            # and events naming AMIs that do not exist must not create inventory items.
            logger.info("AMI is gone before it could be judged", extra=log)
            self.count("ImagesGone")
            return ImageOutcome(image_id, region, "gone")
        if image.owner_id != self.account_id:
            logger.warning("AMI owned by another account is not governed here", extra={**log, "owner": image.owner_id})
            self.count("ForeignImages")
            return ImageOutcome(image_id, region, "foreign-image")
        return self._claims_refuted(image, claimed_state, creation, log)

    def _claims_refuted(
        self, image: ImageFacts, claimed_state: str | None, creation: CloudTrailDetail | None, log: Mapping[str, str]
    ) -> ImageOutcome | None:
        """The outcome that drops an event whose claims about the AMI EC2 contradicts (logged, counted), else None."""
        if claimed_state is not None and image.state not in STATES_THAT_BEAR_OUT.get(claimed_state, {claimed_state}):
            # A state change EC2 does not bear out (a forged `available` for a pending or failed AMI): judging now
            # would record snapshots and a state the AMI does not have.
            return self._state_claim_refuted(image, claimed_state, log["event_id"])
        refuted = creation_claims_refuted(creation, image) if creation is not None else {}
        if not refuted:
            return None
        # The creation event says something of the AMI that EC2 contradicts: none of its claims (creator, requested
        # tags, source) may stand in for what EC2 shows, nor be written as provenance.
        claims = {claim: {"event": said, "ec2": shown} for claim, (said, shown) in refuted.items()}
        logger.warning("Creation event contradicted by EC2: nothing done", extra={**log, "claims": claims})
        for claim in refuted:
            self.count("ClaimsRefuted", claim=claim)
        return ImageOutcome(image.image_id, image.region, f"claims-refuted: {', '.join(sorted(refuted))}")

    def _keep_recorded_provenance(
        self, recorded: Mapping[str, str], provenance: Mapping[str, str], log: Mapping[str, str]
    ) -> None:
        """A creation event for an AMI whose provenance is already recorded: the first stays. Another creator is
        a conflict, logged and counted; a replay of the recording event, or the same creator again, is not."""
        event_key = self.policy.tag_key(SystemTag.CREATED_BY_EVENT)
        if recorded.get(event_key) == provenance.get(event_key):
            return
        conflict = creator_conflict(self.policy, recorded, provenance)
        if not conflict:
            logger.info("A later creation event by the same creator: the recorded provenance is kept", extra=log)
            return
        logger.warning(
            "A later creation event names another creator: the recorded provenance is kept",
            extra={
                **log,
                "recorded_event": recorded.get(event_key),
                "conflict": {key: {"recorded": first, "event": later} for key, (first, later) in conflict.items()},
            },
        )
        self.count("ProvenanceConflicts")

    def _apply_tags(self, images: ImageStore, image: ImageFacts, change: TagChange, log: dict[str, str]) -> None:
        if change.dropped:
            logger.warning(
                "AMI is at the 50-tag limit: governance tags left out", extra={**log, "dropped": change.dropped}
            )
            self.count("TagsDroppedAtLimit", value=len(change.dropped))
        try:
            if change.to_delete:
                images.delete_tags([image.image_id], sorted(change.to_delete))
            if change.to_write:
                images.create_tags([image.image_id], change.to_write)
        except TagLimitExceeded:
            # Permanent until someone removes tags: a retry cannot help, the verdict is in the log and the notice.
            logger.error("AMI tag limit reached: verdict tags not written", extra=log)
            self.count("TagsDroppedAtLimit", value=len(change.to_write))

    def _remediate(self, images: ImageStore, image: ImageFacts, plan: RemediationPlan) -> None:
        if plan.counts_against_cap and plan.actions and plan.tag_value is not None:
            # Except the remediation's own record, written before it acts: once the AMI is disabled (or
            # deprecated) a retry finds the remediation in force and plans nothing, so a record left for the end
            # would be lost with a failure after the action, and the AMI would stay disabled, never restored.
            # With the image-id tag: without it the record would look inherited from a copy's source, and go.
            record = {SystemTag.REMEDIATION: plan.tag_value, SystemTag.IMAGE_ID: image.image_id}
            images.create_tags([image.image_id], {self.policy.tag_key(k): v for k, v in record.items()})
        if plan.notes:
            self.count("RemediationsCapped")
            logger.warning("Remediation skipped: blast-radius cap reached", extra={"image_id": image.image_id})
        for action in plan.actions:
            if action is Ec2Action.DISABLE_IMAGE:
                images.disable_image(image.image_id)
            elif action is Ec2Action.ENABLE_IMAGE:
                images.enable_image(image.image_id)
            elif action is Ec2Action.ENABLE_DEPRECATION and plan.deprecate_at is not None:
                images.enable_deprecation(image.image_id, plan.deprecate_at)
            elif action is Ec2Action.DISABLE_DEPRECATION:
                images.disable_deprecation(image.image_id)
            self.count("RemediationActions", action=action.value)
        if plan.counts_against_cap:
            self._remediations += 1

    def _notify(
        self, image: ImageFacts, verdict: Verdict, creator: Any, plan: RemediationPlan, event_id: str, first_sight: bool
    ) -> str | None:
        previous = image.tags.get(self.policy.tag_key(SystemTag.COMPLIANCE))
        previous_violations = image.tags.get(self.policy.tag_key(SystemTag.VIOLATIONS))
        notice: Notice | None = None
        if verdict.status is ComplianceStatus.NON_COMPLIANT:
            current = summarise(v.short for v in verdict.violations)
            changed = previous != verdict.status.value or previous_violations != current
            if first_sight or changed or plan.actions:
                notice = violation_notice(self.policy, image, verdict, creator, plan.summary or "none", event_id)
        elif previous == ComplianceStatus.NON_COMPLIANT.value and not first_sight:
            # (a provisional verdict, never announced, is not "restored" either)
            notice = resolved_notice(self.policy, image, verdict, plan.summary, event_id)
        if notice is None:
            return None
        message_id = self.notifier.publish(notice)
        self.count("Notifications")
        return message_id

    def _record_available(self, images: ImageStore, image: ImageFacts, verdict: Verdict, event_id: str) -> None:
        if image.snapshot_ids:
            # The link snapshot -> AMI is gone after deregistration; the tag and the inventory keep it.
            try:
                images.create_tags(list(image.snapshot_ids), {self.policy.tag_key(SystemTag.IMAGE_ID): image.image_id})
            except TagLimitExceeded:
                logger.warning(
                    "A snapshot is at the tag limit: image-id tag not written", extra={"image_id": image.image_id}
                )
                self.count("TagsDroppedAtLimit")
        self.inventory.record(
            image.image_id,
            image.region,
            {
                "account": image.owner_id,
                "name": image.name,
                "state": image.state,
                "snapshot_ids": list(image.snapshot_ids),
                # After deregistration neither can be read back: the clean-up needs the sizes (GB freed, also
                # of snapshots DeregisterImage deleted itself) and whether the AMI was protected.
                "snapshot_sizes": dict(image.snapshot_sizes),
                "protected": self.policy.protection_tag_key in image.tags,
                "source_image_id": image.source_image_id,
                "source_region": image.source_region,
                "created_by": image.tags.get(self.policy.tag_key(SystemTag.CREATED_BY)),
                "creation_date": image.creation_date,
                **self._verdict_fields(verdict, event_id),
            },
        )

    def _verdict_fields(self, verdict: Verdict, event_id: str) -> dict[str, Any]:
        return {
            "compliance": verdict.status.value,
            "violations": [v.short for v in verdict.violations],
            "recorded_at": iso_timestamp(self.now()),
            "last_event_id": event_id,
        }
