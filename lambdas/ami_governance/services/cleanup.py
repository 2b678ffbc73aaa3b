"""Snapshot clean-up: delete the snapshots a deregistered AMI leaves behind, exactly those, only when safe.

Which snapshots: the ones the inventory recorded when the AMI became available; for AMIs that predate the
deployment, the ones whose description names the AMI (one paged DescribeSnapshots). Each is checked by the pure
rules in rules/cleanup.py (owner, still used by any AMI, protection tag of the snapshot or of the AMI as last
recorded, age, state); the work for one AMI is claimed in the inventory so that the CloudTrail event and the state
change, or any duplicate, do it once.

Either event may come first. Only the CloudTrail record says whether DeregisterImage deleted the snapshots itself
(DeleteAssociatedSnapshots): when the state change comes first and a recorded snapshot is already gone, the
clean-up does what it can, records that snapshot as awaiting the call, and leaves the summary to the CloudTrail
event, which settles it and sends the one summary.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from ami_governance.adapters.ec2 import TagLimitExceeded
from ami_governance.adapters.errors import error_code
from ami_governance.models.cleanup import (
    CleanupResult,
    DeregisterCall,
    ImageCleanup,
    KeepReason,
    OutcomeKind,
    ReasonKind,
    SnapshotDecision,
    SnapshotFacts,
    SnapshotOutcome,
    recorded_outcomes,
)
from ami_governance.models.events import DEREGISTER_IMAGE, EC2_EVENT_SOURCE, AmiStateChangeEvent, CloudTrailImageEvent
from ami_governance.models.image import ImageFacts
from ami_governance.rules.cleanup import (
    DELETING_TAG_VALUE,
    UNCONFIRMED,
    apply_cap,
    decide,
    deletions_left,
    image_named_in_description,
    live_users,
    outcome_counts,
    settle,
    still_registered,
    summarise,
)
from ami_governance.rules.notices import cleanup_notice
from ami_governance.rules.tags import SystemTag, iso_timestamp
from ami_governance.services.common import EventOutcome, EventService, NoticeSink

logger = Logger(child=True)

CLAIM = "cleanup"
CLAIM_LEASE = timedelta(minutes=16)  # longer than the Lambda's 15-minute timeout: an expired claim is a dead run
# Statuses after which a delivery of the same deregistration has nothing left to do. "deferred" (a snapshot
# kept for now: too young, pending, over the cap) and "dry-run" are revisited by the scheduled sweep.
FINISHED_STATUSES = ("done", "dry-run", "deferred")
# The state change came first and found recorded snapshots gone: the CloudTrail event finishes the clean-up.
AWAITING_CALL = "awaiting-call"
# A claim in one of these may be taken again: a run that failed, an event for an AMI that was still registered,
# and a clean-up awaiting the CloudTrail record (only that record's delivery gets this far, see `_clean`).
RECLAIMABLE_STATUSES = ("failed", "not-deregistered", AWAITING_CALL)
# Statuses the scheduled sweep takes up again (`retry`): the ones an event's delivery leaves alone as finished.
RETRYABLE_STATUSES = ("deferred", "dry-run")
# A retry comes long after the deregistration, whose CloudTrail record settled what EC2 deleted itself: a recorded
# snapshot gone since then was deleted by someone else (or went to the Recycle Bin), not by DeregisterImage.
RETRY_CALL = DeregisterCall(delete_associated_snapshots=False, results={})
# What DeleteSnapshot or CreateTags said of a snapshot that DescribeSnapshots showed moments before.
NOT_FOUND = KeepReason(ReasonKind.GONE, "not found")


class SnapshotStore(Protocol):
    def describe_snapshots(self, snapshot_ids: Sequence[str]) -> dict[str, SnapshotFacts]: ...
    def find_snapshots_by_description(self, image_id: str) -> list[SnapshotFacts]: ...
    def images_using_snapshots(self, snapshot_ids: Sequence[str]) -> dict[str, dict[str, str]]: ...
    def describe_image(self, image_id: str) -> ImageFacts | None: ...
    def delete_tags(self, resource_ids: list[str], keys: list[str]) -> None: ...
    def create_tags(self, resource_ids: list[str], tags: Mapping[str, str]) -> None: ...
    def delete_snapshot(self, snapshot_id: str) -> None: ...
    def deregister_image(self, image_id: str) -> None: ...


class CleanupInventory(Protocol):
    # Reads are strongly consistent unless asked otherwise: the claim's status is read right after writes.
    def get(self, image_id: str, region: str, consistent: bool = True) -> dict[str, Any] | None: ...
    def record(self, image_id: str, region: str, fields: Mapping[str, Any]) -> None: ...
    def claim_cleanup(
        self, image_id: str, region: str, owner: str, now: str, lease_until: str, reclaimable: Sequence[str] = ()
    ) -> bool: ...


class CleanupIncomplete(RuntimeError):
    """Some snapshots could not be handled; raised after the others were, so that the event is retried."""


class CleanupInProgress(RuntimeError):
    """Another delivery of the same deregistration holds the claim and has not finished: retry later."""


def _already_handled(image_id: str, region: str, event_id: str) -> CleanupOutcome:
    return CleanupOutcome("handled", event_id, images=[ImageCleanup(image_id, region, CleanupResult.ALREADY_HANDLED)])


@dataclass
class CleanupOutcome(EventOutcome):
    """The answer of the clean-up: each snapshot's outcome as its text, as recorded (not its kinds)."""

    images: list[ImageCleanup] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "images": [image.as_dict() for image in self.images]}


@dataclass
class CleanupService(EventService):
    snapshots_in: Callable[[str], SnapshotStore]
    inventory: CleanupInventory
    notifier: NoticeSink
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def on_cloudtrail(self, event: CloudTrailImageEvent) -> EventOutcome:
        detail = event.detail
        if detail.event_name != DEREGISTER_IMAGE or detail.event_source != EC2_EVENT_SOURCE:
            return super().on_cloudtrail(event)
        if self.failed_call(detail.error_code):
            return EventOutcome("ignored", detail.event_id, f"the call failed with {detail.error_code}")
        image_id = detail.request_parameters.image_id if detail.request_parameters else None
        if not image_id:
            self.count("MalformedEvents")
            return EventOutcome("rejected", detail.event_id, "DeregisterImage names no imageId")
        refused = self.refused(event.account, detail.aws_region, detail.event_id)
        if refused:
            return refused
        call = DeregisterCall(
            bool(detail.request_parameters and detail.request_parameters.delete_associated_snapshots),
            detail.snapshot_deletions(),
        )
        return self._clean(image_id, detail.aws_region, detail.event_id, call)

    def on_state_change(self, event: AmiStateChangeEvent) -> EventOutcome:
        if event.detail.state != "deregistered":
            return super().on_state_change(event)
        refused = self.refused(event.account, event.region, event.id)
        if refused:
            return refused
        # The state change does not say whether DeregisterImage deleted the snapshots itself (those it did are
        # simply gone by now): the CloudTrail record will.
        return self._clean(event.detail.image_id, event.region, event.id, call=None)

    def retry(self, image_id: str, region: str, run_id: str) -> EventOutcome:
        """The scheduled sweep takes up a clean-up left deferred (a snapshot too young, pending, over the cap) or
        dry-run: under the same claim, with the same checks and the same record as an event's delivery."""
        refused = self.refused(self.account_id, region, run_id)
        if refused:
            return refused
        item = self.inventory.get(image_id, region) or {}
        status = item.get(f"{CLAIM}_status")
        if status not in RETRYABLE_STATUSES:
            return EventOutcome("ignored", run_id, f"the clean-up of {image_id} is {status or 'not recorded'}")
        now = self.now()
        if not self.inventory.claim_cleanup(
            image_id, region, str(uuid.uuid4()), iso_timestamp(now), iso_timestamp(now + CLAIM_LEASE),
            RETRYABLE_STATUSES,
        ):  # fmt: skip
            self.count("CleanupsBusy")
            raise CleanupInProgress(f"{image_id}: clean-up in progress elsewhere; retry later")
        self.count("CleanupsRetried")
        # A new run with a cap of its own: counting the earlier deliveries' deletions against it would leave a
        # clean-up deferred by the cap deferred for ever.
        return self._clean_holding_claim(image_id, region, run_id, RETRY_CALL, item, now, None, fresh_cap=True)

    # ---- one deregistered AMI ----------------------------------------------------------------

    def _clean(self, image_id: str, region: str, event_id: str, call: DeregisterCall | None) -> EventOutcome:
        item = self.inventory.get(image_id, region) or {}
        status = item.get(f"{CLAIM}_status")
        if status in FINISHED_STATUSES or (status == AWAITING_CALL and call is None):
            # (a clean-up awaiting the CloudTrail record has nothing more to learn from another state change)
            self.count("CleanupsAlreadyDone")
            return _already_handled(image_id, region, event_id)
        found: list[str] | None = None
        if not item:
            # No record of this AMI: it predates the deployment, or it never existed. Only snapshots whose
            # description names it make it one to clean up; without any, nothing is written, so that events naming
            # AMIs that never existed leave no inventory items behind.
            found = self._described_as_of(self.snapshots_in(region), image_id)
            if not found:
                logger.info("Deregistered AMI is unknown and no snapshot names it", extra={"image_id": image_id})
                self.count("CleanupsOfUnknownImages")
                nothing = ImageCleanup(image_id, region, CleanupResult.NOTHING_TO_DO, "description")
                return CleanupOutcome("handled", event_id, images=[nothing])
        now = self.now()
        if not self.inventory.claim_cleanup(
            image_id, region, str(uuid.uuid4()), iso_timestamp(now), iso_timestamp(now + CLAIM_LEASE),
            RECLAIMABLE_STATUSES,
        ):  # fmt: skip
            current = self.inventory.get(image_id, region, consistent=True) or {}
            if current.get(f"{CLAIM}_status") in FINISHED_STATUSES:
                self.count("CleanupsAlreadyDone")
                return _already_handled(image_id, region, event_id)
            # Another delivery holds the claim and has not finished: retry later rather than report success for
            # work nobody may finish (the holder may have crashed; its lease then expires).
            self.count("CleanupsBusy")
            raise CleanupInProgress(f"{image_id}: clean-up in progress elsewhere; retry later")
        return self._clean_holding_claim(image_id, region, event_id, call, item, now, found)

    def _clean_holding_claim(
        self,
        image_id: str,
        region: str,
        event_id: str,
        call: DeregisterCall | None,
        item: Mapping[str, Any],
        now: datetime,
        found: list[str] | None,
        fresh_cap: bool = False,
    ) -> EventOutcome:
        try:
            return self._clean_claimed(image_id, region, event_id, call, item, now, found, fresh_cap)
        except CleanupIncomplete:
            raise
        except Exception:
            # Release the claim so that the retry of this event (or the other delivery) can do the work.
            self.inventory.record(
                image_id, region, {f"{CLAIM}_status": "failed", f"{CLAIM}_at": iso_timestamp(self.now())}
            )
            raise

    def _clean_claimed(
        self,
        image_id: str,
        region: str,
        event_id: str,
        call: DeregisterCall | None,
        item: Mapping[str, Any],
        now: datetime,
        found: list[str] | None,
        fresh_cap: bool = False,
    ) -> EventOutcome:
        store = self.snapshots_in(region)
        snapshot_ids, source = self._snapshots_of(store, image_id, item, found)
        previous = self._previous_outcomes(image_id, item.get(f"{CLAIM}_snapshots") or {})
        # An earlier attempt's snapshots too: found by their descriptions, they are not found again once deleted.
        snapshot_ids += [s for s in previous if s not in snapshot_ids]
        facts = store.describe_snapshots(snapshot_ids)
        users = store.images_using_snapshots(list(facts))
        # Without a snapshot to tell (an instance-store AMI, or none recorded), EC2 is asked: the cascade to the
        # replicas must never follow a DeregisterImage event for an AMI that is still registered.
        if still_registered(image_id, facts, users) or (not facts and store.describe_image(image_id) is not None):
            # Nothing is decided; the real deregistration will come.
            self.inventory.record(
                image_id, region, {f"{CLAIM}_status": "not-deregistered", f"{CLAIM}_at": iso_timestamp(now)}
            )
            self.count("CleanupsOfRegisteredImages")
            return EventOutcome("ignored", event_id, f"{image_id} is still registered")
        protected = item.get("protected") is True
        cap = self.policy.cleanup.max_snapshots_per_event
        decisions = apply_cap(
            [
                decide(self.policy, s, facts.get(s), image_id, self.account_id, live_users(users.get(s), image_id),
                       now, image_protected=protected)
                for s in snapshot_ids
            ],
            cap if fresh_cap else deletions_left(cap, previous.values()),
            cap,
        )  # fmt: skip
        sizes: Mapping[str, Any] = item.get("snapshot_sizes") or {}
        outcomes, failures = self._act(store, decisions, previous, call, sizes, (image_id, region))
        cleanup = summarise(image_id, region, source, outcomes, dry_run=self.policy.cleanup.dry_run,
                            any_snapshots=bool(snapshot_ids), failed=bool(failures))  # fmt: skip
        # One summary per deregistration: a clean-up awaiting the CloudTrail record sends it once settled.
        notice_due = bool(snapshot_ids) and not failures and cleanup.result is not CleanupResult.AWAITING_CALL
        # With a notice due, the claim stays in progress until it is sent: a run that records the outcomes and then
        # fails (or loses SNS's answer) is retried, and the retry sends the summary. Marked finished first, the
        # retry would find nothing to do and the summary would never be sent.
        self._record(image_id, region, event_id, cleanup, finished=not notice_due)
        cleanup.replicas = self._cascade(item)
        finish: dict[str, Any] = {f"{CLAIM}_replicas": cleanup.replicas} if cleanup.replicas else {}
        if notice_due:
            cleanup.notified = self.notifier.publish(cleanup_notice(self.policy, cleanup, event_id))
            finish[f"{CLAIM}_status"] = _status_of(cleanup)
        if finish:
            self.inventory.record(image_id, region, finish)
        for name, number in outcome_counts(outcomes, previous).items():
            self.count(name, value=number)
        logger.info("Snapshot clean-up", extra={"image_id": image_id, "region": region, "result": cleanup.result,
                                                "outcomes": {o.snapshot_id: o.outcome for o in outcomes}})  # fmt: skip
        if failures:
            raise CleanupIncomplete(f"{image_id}: {len(failures)} snapshot(s) failed: {'; '.join(failures)}")
        return CleanupOutcome("handled", event_id, images=[cleanup])

    @staticmethod
    def _previous_outcomes(image_id: str, records: Mapping[str, Any]) -> dict[str, SnapshotOutcome]:
        """What an earlier attempt of this clean-up recorded. An entry that states no outcome (written by another
        version, or by hand) is read as no outcome: the snapshot is decided afresh."""
        previous = recorded_outcomes(records)
        unreadable = sorted(str(snapshot_id) for snapshot_id in records if snapshot_id not in previous)
        if unreadable:
            logger.warning("Recorded snapshot outcomes not understood; deciding afresh",
                           extra={"image_id": image_id, "snapshot_ids": unreadable})  # fmt: skip
        return previous

    def _snapshots_of(
        self, store: SnapshotStore, image_id: str, item: Mapping[str, Any], found: list[str] | None
    ) -> tuple[list[str], str]:
        recorded = [str(s) for s in item.get("snapshot_ids") or []]
        if recorded:
            return recorded, "inventory"
        return (found if found is not None else self._described_as_of(store, image_id)), "description"

    @staticmethod
    def _described_as_of(store: SnapshotStore, image_id: str) -> list[str]:
        # An AMI that predates the deployment: its snapshots' descriptions name it. The owner, usage and
        # protection checks still decide; the description only nominates.
        return [f.snapshot_id for f in store.find_snapshots_by_description(image_id) if
                image_named_in_description(f.description) == image_id]  # fmt: skip

    def _act(
        self,
        store: SnapshotStore,
        decisions: list[SnapshotDecision],
        previous: Mapping[str, SnapshotOutcome],
        call: DeregisterCall | None,
        sizes: Mapping[str, Any],
        item_key: tuple[str, str],
    ) -> tuple[list[SnapshotOutcome], list[str]]:
        outcomes, to_delete = settle(decisions, previous, call, sizes)
        failures: list[str] = []
        if self.policy.cleanup.dry_run:
            outcomes += [SnapshotOutcome(d.snapshot_id, OutcomeKind.WOULD_DELETE, d.size_gb) for d in to_delete]
            return outcomes, failures
        marked, unmarked = self._mark_for_deletion(store, to_delete)
        outcomes += unmarked
        if marked:
            # Recorded before deleting: should this run fail before its own record (or lose DeleteSnapshot's
            # answer), the retry finds these snapshots gone and knows this clean-up deleted them.
            at = iso_timestamp(self.now())
            started = [SnapshotOutcome(d.snapshot_id, OutcomeKind.FAILED, d.size_gb, error=UNCONFIRMED) for d in marked]
            self.inventory.record(*item_key, {f"{CLAIM}_snapshots": {
                o.snapshot_id: {"outcome": o.outcome, "size_gb": o.size_gb, "at": at} for o in [*outcomes, *started]
            }})  # fmt: skip
        marker = self.policy.tag_key(SystemTag.CLEANUP)
        for decision in marked:
            try:
                store.delete_snapshot(decision.snapshot_id)
                outcomes.append(SnapshotOutcome(decision.snapshot_id, OutcomeKind.DELETED, decision.size_gb))
            except ClientError as error:
                code = error_code(error)
                if code == "InvalidSnapshot.InUse":
                    store.delete_tags([decision.snapshot_id], [marker])
                    outcomes.append(SnapshotOutcome.kept(decision.snapshot_id, KeepReason(ReasonKind.DELETE_REFUSED)))
                elif code == "InvalidSnapshot.NotFound":
                    outcomes.append(SnapshotOutcome.kept(decision.snapshot_id, NOT_FOUND))
                else:
                    # Recorded, and raised once the other snapshots are done: the retry picks it up.
                    outcomes.append(
                        SnapshotOutcome(decision.snapshot_id, OutcomeKind.FAILED, decision.size_gb, error=code)
                    )
                    failures.append(f"{decision.snapshot_id} {code}")
            except BotoCoreError as error:
                # No answer (a timeout): recorded like a failure, so that the snapshots deleted before it stay
                # recorded and the retry knows this one's deletion may have happened (rules/cleanup.py `settle`).
                code = error_code(error)
                outcomes.append(SnapshotOutcome(decision.snapshot_id, OutcomeKind.FAILED, decision.size_gb, error=code))
                failures.append(f"{decision.snapshot_id} {code}")
        return outcomes, failures

    def _mark_for_deletion(
        self, store: SnapshotStore, decisions: list[SnapshotDecision]
    ) -> tuple[list[SnapshotDecision], list[SnapshotOutcome]]:
        """Tag the snapshots about to be deleted (the optional Recycle Bin rule keeps only tagged ones): one call,
        or one per snapshot when the batch fails for some of them. An unmarked snapshot is not deleted."""
        if not decisions:
            return [], []
        tag = {self.policy.tag_key(SystemTag.CLEANUP): DELETING_TAG_VALUE}
        try:
            store.create_tags([d.snapshot_id for d in decisions], tag)
            return decisions, []
        except (ClientError, TagLimitExceeded):
            pass
        marked: list[SnapshotDecision] = []
        unmarked: list[SnapshotOutcome] = []
        for decision in decisions:
            try:
                store.create_tags([decision.snapshot_id], tag)
                marked.append(decision)
            except TagLimitExceeded:
                unmarked.append(SnapshotOutcome.kept(decision.snapshot_id, KeepReason(ReasonKind.UNMARKABLE)))
            except ClientError as error:
                code = error_code(error)
                if code != "InvalidSnapshot.NotFound":
                    raise
                unmarked.append(SnapshotOutcome.kept(decision.snapshot_id, NOT_FOUND))
        return marked, unmarked

    def _cascade(self, item: Mapping[str, Any]) -> dict[str, str]:
        """Deregister the source's recorded replicas (policy option); their own clean-up follows their events.
        Runs after the snapshot outcomes are recorded; a replica that cannot be deregistered is an outcome."""
        replicas: Mapping[str, Any] = item.get("replicas") or {}
        if not self.policy.cleanup.cascade_to_replicas or not replicas:
            return {}
        done: dict[str, str] = {}
        for region, replica in replicas.items():
            replica_id = replica.get("image_id") if isinstance(replica, Mapping) else replica
            if not isinstance(replica_id, str) or not replica_id.startswith("ami-"):
                continue  # a copy that never started (queued, or failed before EC2 answered)
            if isinstance(replica, Mapping) and replica.get("state") == "deregistered":
                done[replica_id] = f"already gone from {region}"
                continue
            store = self.snapshots_in(region)
            image = store.describe_image(replica_id)
            if image is None:
                done[replica_id] = f"already gone from {region}"
            elif self.policy.protection_tag_key in image.tags:
                done[replica_id] = f"kept in {region}: protected by {self.policy.protection_tag_key}"
            elif self.policy.cleanup.dry_run:
                done[replica_id] = f"would deregister in {region}"
            else:
                try:
                    store.deregister_image(replica_id)
                    done[replica_id] = f"deregistered in {region}"
                except ClientError as error:
                    done[replica_id] = f"failed in {region}: {error_code(error)}"
        return done

    def _record(self, image_id: str, region: str, event_id: str, cleanup: ImageCleanup, finished: bool) -> None:
        """The clean-up's outcomes; its status too if `finished` (else the claim stays in progress)."""
        at = iso_timestamp(self.now())
        status = {f"{CLAIM}_status": _status_of(cleanup)} if finished else {}
        self.inventory.record(
            image_id,
            region,
            {
                "state": "deregistered",
                **status,
                f"{CLAIM}_event_id": event_id,
                f"{CLAIM}_at": at,
                f"{CLAIM}_source": cleanup.source,
                f"{CLAIM}_gb": cleanup.gb_freed,
                f"{CLAIM}_snapshots": {
                    o.snapshot_id: {"outcome": o.outcome, "size_gb": o.size_gb, "at": at} for o in cleanup.snapshots
                },
            },
        )


def _status_of(cleanup: ImageCleanup) -> str:
    """The claim's status once the clean-up is recorded (see FINISHED_STATUSES and RECLAIMABLE_STATUSES)."""
    return {
        "incomplete": "failed",
        "dry-run": "dry-run",
        "deferred": "deferred",
        AWAITING_CALL: AWAITING_CALL,
    }.get(cleanup.result, "done")
