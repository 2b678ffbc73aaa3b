"""The sweep: what the scheduled report does about its findings, when the policy turns it on.

It plans with the pure rules (rules/sweep.py), then, unless dry-run, acts on each planned resource after
reading it again from AWS: the scan may be minutes old, and a tag added since (protection), a launch template
made since or a share granted since must stop the action. Each action is reported done, failed (with AWS's error
code), would-do, capped or skipped (with the check that refused); a failure is never reported as done.

Deregistering an AMI leaves its snapshots alone: the deregistration's own events start the clean-up Lambda, which
deletes them with its checks and records them. A clean-up left deferred or dry-run is retried through that same
clean-up service (`CleanupService.retry`); an AMI no event ever judged is judged by the enforcement service
(`EnforcementService.judge_images`).
"""

from __future__ import annotations

import uuid
from collections import Counter as Tally
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from ami_governance.adapters.ec2 import MalformedImageId, TagLimitExceeded
from ami_governance.adapters.errors import IMAGE_GONE_CODES, error_code
from ami_governance.models.cleanup import CleanupResult, OutcomeKind, SnapshotFacts
from ami_governance.models.findings import (
    ActionKind,
    ActionStatus,
    Finding,
    InventoryRecord,
    LaunchPermissions,
    RegionEvidence,
    SweepAction,
)
from ami_governance.models.image import ImageFacts
from ami_governance.models.policy import GovernancePolicy
from ami_governance.models.scan import ReferenceCheck
from ami_governance.rules.cleanup import DELETING_TAG_VALUE, image_named_in_description, live_users
from ami_governance.rules.sweep import (
    DEREGISTERABLE_STATES,
    PlannedAction,
    deregister_deadline,
    own_tags,
    plan_sweep,
    shared_with_others,
)
from ami_governance.rules.tags import SystemTag
from ami_governance.services.cleanup import CleanupIncomplete, CleanupInProgress, CleanupOutcome
from ami_governance.services.common import Counter, EventOutcome

logger = Logger(child=True)

DEREGISTER_KINDS = frozenset({ActionKind.DEREGISTER_OVERDUE, ActionKind.DEREGISTER_STALE})


class SweepStore(Protocol):
    """What the sweep reads and writes in one region (adapters/ec2.py Ec2Images)."""

    def describe_image(self, image_id: str) -> ImageFacts | None: ...
    def describe_snapshots(self, snapshot_ids: Sequence[str]) -> dict[str, SnapshotFacts]: ...
    def images_using_snapshots(self, snapshot_ids: Sequence[str]) -> dict[str, dict[str, str]]: ...
    def create_tags(self, resource_ids: list[str], tags: Mapping[str, str]) -> None: ...
    def delete_tags(self, resource_ids: list[str], keys: list[str]) -> None: ...
    def delete_snapshot(self, snapshot_id: str) -> None: ...
    def deregister_image(self, image_id: str) -> None: ...


class ReferenceChecker(Protocol):
    """DescribeImageReferences for a few AMIs (adapters/scan.py RegionScanner)."""

    def confirm_references(self, image_ids: Iterable[str]) -> ReferenceCheck: ...


class PermissionReader(Protocol):
    """DescribeImageAttribute launchPermission (adapters/launch_permissions.py); a failed read is UNKNOWN."""

    def read(self, image_ids: Sequence[str]) -> dict[str, LaunchPermissions]: ...


class CleanupRetry(Protocol):
    def retry(self, image_id: str, region: str, run_id: str) -> EventOutcome: ...


class Judge(Protocol):
    def judge_images(self, region: str, image_ids: list[str], run_id: str) -> Sequence[Any]: ...


@dataclass
class Sweeper:
    policy: GovernancePolicy
    account_id: str
    count: Counter
    images_in: Callable[[str], SweepStore]
    references_in: Callable[[str], ReferenceChecker]
    permissions_for: Callable[[str], PermissionReader]
    cleanup: CleanupRetry | None = None
    enforcement: Judge | None = None
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def plan(self, findings: Sequence[Finding], evidences: Sequence[RegionEvidence]) -> list[PlannedAction]:
        return plan_sweep(self.policy, findings, evidences, self.now())

    def sweep(self, findings: Sequence[Finding], evidences: Sequence[RegionEvidence]) -> tuple[SweepAction, ...]:
        run_id = f"sweep-{uuid.uuid4()}"
        planned = self.plan(findings, evidences)
        records = {(e.account_id, e.region, r.image_id): r for e in evidences for r in e.inventory}
        results: dict[int, SweepAction] = {}
        judged: defaultdict[str, list[tuple[int, PlannedAction]]] = defaultdict(list)
        for position, action in enumerate(planned):
            early = self._unless_acting(action)
            if early is not None:
                results[position] = early
            elif action.kind is ActionKind.JUDGE:
                judged[action.region].append((position, action))  # one DescribeImages per region
            else:
                results[position] = self._guarded(action, run_id, records)
        for region, batch in judged.items():
            results.update(zip([p for p, _ in batch], self._judge(region, [a for _, a in batch], run_id), strict=True))
        actions = tuple(results[position] for position in range(len(planned)))
        self._record(actions)
        return actions

    # ---- what happens to each planned action ----------------------------------------------------------------

    def _unless_acting(self, action: PlannedAction) -> SweepAction | None:
        if action.refused:
            return _result(action, ActionStatus.SKIPPED, action.reason)
        if action.capped:
            return _result(action, ActionStatus.CAPPED, action.reason)
        if action.account_id != self.account_id:
            return _result(action, ActionStatus.SKIPPED, f"account {action.account_id} is not this deployment's")
        if self.policy.report.sweep.dry_run:
            return _result(action, ActionStatus.WOULD_DO, f"dry-run: would {action.reason}")
        return None

    def _guarded(
        self, action: PlannedAction, run_id: str, records: Mapping[tuple[str, str, str], InventoryRecord]
    ) -> SweepAction:
        try:
            return self._act(action, run_id, records)
        except (ClientError, BotoCoreError) as error:
            # One resource's failure is its own: the others are still acted on, and this one is reported failed.
            return _result(action, ActionStatus.FAILED, f"failed: {error_code(error)}")

    def _act(
        self, action: PlannedAction, run_id: str, records: Mapping[tuple[str, str, str], InventoryRecord]
    ) -> SweepAction:
        if action.kind in DEREGISTER_KINDS:
            return self._deregister(action)
        if action.kind is ActionKind.DELETE_ORPHANED_SNAPSHOT:
            return self._delete_snapshot(action)
        return self._retry_cleanup(action, run_id, records.get((action.account_id, action.region, action.resource_id)))

    def _deregister(self, action: PlannedAction) -> SweepAction:  # noqa: PLR0911 - one return per check
        image_id, region = action.resource_id, action.region
        store = self.images_in(region)
        try:
            image = store.describe_image(image_id)
        except MalformedImageId:
            return _result(action, ActionStatus.SKIPPED, "malformed image id")
        refusal = self._image_refusal(action, image)
        if refusal:
            return _result(action, ActionStatus.SKIPPED, refusal)
        check = self.references_in(region).confirm_references([image_id])
        if image_id in check.unchecked or image_id not in check.checked:
            errors = "; ".join(check.listing_errors.values()) or "not checked"
            return _result(action, ActionStatus.SKIPPED, f"its references could not be checked: {errors}")
        users = sorted({f"{r.resource_type} {r.arn}" for r in check.references if r.image_id == image_id})
        if users:
            return _result(action, ActionStatus.SKIPPED, f"referenced by {', '.join(users)}")
        try:
            store.deregister_image(image_id)
        except ClientError as error:
            code = error_code(error)
            if code in IMAGE_GONE_CODES:
                return _result(action, ActionStatus.SKIPPED, "gone since the scan")
            return _result(action, ActionStatus.FAILED, f"DeregisterImage failed: {code}")
        # Its snapshots are the clean-up Lambda's: the deregistration's events start it, with its checks.
        return _result(action, ActionStatus.DONE, f"deregistered ({action.reason}); its snapshots go to the clean-up")

    def _image_refusal(self, action: PlannedAction, image: ImageFacts | None) -> str | None:  # noqa: PLR0911
        """The checks of the plan again, on what DescribeImages says now."""
        key = self.policy.protection_tag_key
        if image is None or image.state == "deregistered":
            return "gone since the scan"
        if image.owner_id != self.account_id:
            return f"owned by account {image.owner_id}"
        if image.state not in DEREGISTERABLE_STATES:
            return f"the AMI is {image.state}"
        if key in image.tags:
            return f"protected by {key} (tagged since the scan)"
        if action.kind is ActionKind.DEREGISTER_OVERDUE:
            tags = own_tags(self.policy, image.tags, image.image_id, (image.source_region, image.source_image_id))
            deadline = deregister_deadline(self.policy, tags)
            if deadline is None or deadline > self.now():
                return "no passed deregister-after deadline on the AMI any more"
        if not self.policy.report.sweep.allow_shared:
            permissions = self.permissions_for(action.region).read([image.image_id]).get(image.image_id)
            if shared_with_others(permissions, self.account_id):
                return "shared with other accounts (or its sharing is unknown) and the policy does not allow it"
        return None

    def _delete_snapshot(self, action: PlannedAction) -> SweepAction:
        snapshot_id = action.resource_id
        store = self.images_in(action.region)
        facts = store.describe_snapshots([snapshot_id]).get(snapshot_id)
        refusal = self._snapshot_refusal(store, facts)
        if refusal:
            return _result(action, ActionStatus.SKIPPED, refusal)
        marker = self.policy.tag_key(SystemTag.CLEANUP)
        try:
            # The mark the optional Recycle Bin rule keeps deleted snapshots by, as the clean-up writes it.
            store.create_tags([snapshot_id], {marker: DELETING_TAG_VALUE})
            store.delete_snapshot(snapshot_id)
        except TagLimitExceeded:
            return _result(action, ActionStatus.SKIPPED, "at the tag limit, cannot be marked")
        except ClientError as error:
            code = error_code(error)
            if code == "InvalidSnapshot.NotFound":
                return _result(action, ActionStatus.SKIPPED, "gone since the scan")
            if code == "InvalidSnapshot.InUse":
                store.delete_tags([snapshot_id], [marker])
            return _result(action, ActionStatus.FAILED, f"DeleteSnapshot failed: {code}")
        return _result(action, ActionStatus.DONE, f"deleted ({action.reason})")

    def _snapshot_refusal(self, store: SweepStore, facts: SnapshotFacts | None) -> str | None:  # noqa: PLR0911
        """The checks of the plan again, on what DescribeSnapshots and DescribeImages say now."""
        key = self.policy.protection_tag_key
        if facts is None:
            return "gone since the scan"
        if facts.owner_id != self.account_id:
            return f"owned by account {facts.owner_id}"
        if facts.state != "completed":
            return f"the snapshot is {facts.state}"
        if key in facts.tags:
            return f"protected by {key} (tagged since the scan)"
        days = self.policy.report.sweep.delete_orphaned_snapshots_after_days
        if days is None or self.now() - facts.start_time < timedelta(days=days):
            return "younger than the policy's days"
        users = live_users(store.images_using_snapshots([facts.snapshot_id]).get(facts.snapshot_id), "")
        if users:
            return f"used by {', '.join(sorted(users))}"
        named = {image_named_in_description(facts.description), facts.tags.get(self.policy.tag_key(SystemTag.IMAGE_ID))}
        for image_id in sorted(i for i in named if i):
            image = store.describe_image(image_id)
            if image is not None and image.state != "deregistered":
                return f"made for {image_id}, which exists"
        return None

    def _retry_cleanup(  # noqa: PLR0911 - one return per outcome of the clean-up
        self, action: PlannedAction, run_id: str, record: InventoryRecord | None
    ) -> SweepAction:
        if self.cleanup is None:
            return _result(action, ActionStatus.SKIPPED, "no clean-up service in this deployment")
        try:
            outcome = self.cleanup.retry(action.resource_id, action.region, run_id)
        except CleanupIncomplete as error:
            return _result(action, ActionStatus.FAILED, f"clean-up incomplete: {error}")
        except CleanupInProgress:
            return _result(action, ActionStatus.SKIPPED, "the clean-up is in progress elsewhere")
        if not isinstance(outcome, CleanupOutcome) or not outcome.images:
            return _result(action, ActionStatus.SKIPPED, outcome.reason or outcome.status)
        cleanup = outcome.images[0]
        earlier = record.cleanup_snapshots if record else {}
        deleted = [
            o.snapshot_id
            for o in cleanup.snapshots
            if o.kind is OutcomeKind.DELETED and (earlier.get(o.snapshot_id) or {}).get("outcome") != "deleted"
        ]
        kept = [o for o in cleanup.snapshots if o.kind is OutcomeKind.KEPT]
        summary = f"{len(deleted)} snapshot(s) deleted, {len(kept)} kept, {cleanup.gb_freed} GB freed"
        if cleanup.result is CleanupResult.CLEANED or deleted:
            return _result(action, ActionStatus.DONE, f"clean-up {cleanup.result.value}: {summary}")
        if cleanup.result is CleanupResult.DRY_RUN:
            return _result(action, ActionStatus.WOULD_DO, f"clean-up dry-run: {summary}")
        if cleanup.result is CleanupResult.INCOMPLETE:
            return _result(action, ActionStatus.FAILED, f"clean-up incomplete: {summary}")
        reasons = sorted({o.outcome for o in kept})
        return _result(action, ActionStatus.SKIPPED, f"clean-up still {cleanup.result.value}: {', '.join(reasons)}")

    def _judge(self, region: str, actions: list[PlannedAction], run_id: str) -> list[SweepAction]:
        if self.enforcement is None:
            return [_result(a, ActionStatus.SKIPPED, "no enforcement service in this deployment") for a in actions]
        try:
            outcomes = self.enforcement.judge_images(region, [a.resource_id for a in actions], run_id)
        except (ClientError, BotoCoreError) as error:
            return [_result(a, ActionStatus.FAILED, f"failed: {error_code(error)}") for a in actions]
        results = []
        for action, outcome in zip(actions, outcomes, strict=True):
            result = getattr(outcome, "result", "")
            if result == "evaluated":
                verdict = getattr(outcome, "compliance", None) or "judged"
                written = getattr(outcome, "tags_written", [])
                status = ActionStatus.DONE if written else ActionStatus.SKIPPED
                results.append(_result(action, status, f"judged {verdict}" + ("" if written else ", tags unchanged")))
            else:
                results.append(_result(action, ActionStatus.SKIPPED, f"not judged: {result}"))
        return results

    # ---- the record of the run -------------------------------------------------------------------------------

    def _record(self, actions: Sequence[SweepAction]) -> None:
        for action in actions:
            logger.info(
                "Sweep action",
                extra={
                    "kind": action.kind.value,
                    "status": action.status.value,
                    "account_id": action.account_id,
                    "region": action.region,
                    "resource_id": action.resource_id,
                    "reason": action.reason,
                },
            )
        # One metric per (kind, status), not per action: a first sweep may judge thousands of AMIs.
        for (kind, status), number in sorted(Tally((a.kind.value, a.status.value) for a in actions).items()):
            self.count("SweepActions", value=number, kind=kind, status=status)


def _result(action: PlannedAction, status: ActionStatus, reason: str) -> SweepAction:
    return SweepAction(
        kind=action.kind,
        account_id=action.account_id,
        region=action.region,
        resource_id=action.resource_id,
        status=status,
        reason=reason,
        finding_kind=action.finding_kind,
    )
