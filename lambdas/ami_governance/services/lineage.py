"""Lineage bookkeeping shared by the replicate and copy workers: a replica reached an end (available, failed,
deregistered) -> share it, record it on its source, notify, and announce the round once every region is done."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from aws_lambda_powertools import Logger

from ami_governance.adapters.inventory import REPLICAS
from ami_governance.models.image import ImageFacts
from ami_governance.models.jobs import CopyRequest
from ami_governance.models.lineage import ReplicaSettlement, ReplicaState
from ami_governance.models.policy import GovernancePolicy, Sharing
from ami_governance.rules.approval import round_is_over
from ami_governance.rules.notices import replica_failed_notice, replicated_notice
from ami_governance.rules.tags import iso_timestamp, lineage_value
from ami_governance.services.common import Counter, NoticeSink

logger = Logger(child=True)


class ReplicaImages(Protocol):
    def describe_image(self, image_id: str) -> ImageFacts | None: ...
    def describe_images(self, image_ids: list[str]) -> dict[str, ImageFacts | None]: ...
    def create_tags(self, resource_ids: list[str], tags: Mapping[str, str]) -> None: ...
    def copy_image(self, request: CopyRequest) -> str: ...
    def find_copies(self, source_image_id: str, source_region: str) -> list[ImageFacts]: ...
    def share_image(self, image_id: str, sharing: Sharing) -> bool: ...


class LineageStore(Protocol):
    """The inventory as lineage sees it (adapters/inventory.py says what each conditional write guards)."""

    def get(self, image_id: str, region: str, consistent: bool = True) -> dict[str, Any] | None: ...
    def record(self, image_id: str, region: str, fields: Mapping[str, Any]) -> None: ...
    def settle_replica(self, image_id: str, region: str, settlement: ReplicaSettlement) -> dict[str, Any] | None: ...
    def withdraw_replica(
        self, image_id: str, region: str, target: str, owner: str, at: str
    ) -> dict[str, Any] | None: ...
    def claim_announcement(self, image_id: str, region: str, round_id: str) -> bool: ...
    def release_announcement(self, image_id: str, region: str) -> None: ...


class ReplicaNotRecordedYet(RuntimeError):
    """A replica's state change arrived before its copy worker recorded the copy: retried by Lambda."""


@dataclass(frozen=True)
class SourceRef:
    image_id: str
    region: str

    @classmethod
    def parse(cls, value: str) -> SourceRef | None:
        region, _, image_id = value.partition("/")
        return cls(image_id, region) if region and image_id.startswith("ami-") else None

    def __str__(self) -> str:
        return lineage_value(self.region, self.image_id)


def replicas_of(item: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    replicas = (item or {}).get(REPLICAS) or {}
    return {region: dict(entry) for region, entry in replicas.items() if isinstance(entry, Mapping)}


@dataclass
class Lineage:
    policy: GovernancePolicy
    images_in: Callable[[str], ReplicaImages]
    inventory: LineageStore
    notifier: NoticeSink
    count: Counter
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def settle(
        self,
        source: SourceRef,
        target_region: str,
        replica_id: str | None,
        state: ReplicaState,
        event_id: str,
        error: str | None = None,
    ) -> str:
        """Record that the replica of `source` in `target_region` reached `state`. Returns what happened.

        Only the replica the source's entry records is settled (`replica_id` None: the copy worker's own failed
        CopyImage, before any AMI existed): an AMI that merely carries lineage tags, or an older replica of the
        region, is neither shared nor recorded. A replica whose state change outran the copy worker's record of
        it raises `ReplicaNotRecordedYet`, so that the event is retried.
        """
        log = {"source": str(source), "region": target_region, "replica_id": replica_id, "state": state.value}
        entry = replicas_of(self.inventory.get(source.image_id, source.region)).get(target_region)
        if entry is None or (replica_id is not None and entry.get("image_id") != replica_id):
            if entry is not None and not entry.get("image_id") and entry.get("state") == ReplicaState.COPYING:
                raise ReplicaNotRecordedYet(f"{replica_id} in {target_region}: its copy worker has not recorded it")
            logger.warning("Replica event matches no replication entry of its source", extra=log)
            self.count("ReplicaEventsUnmatched")
            return "unmatched"
        # Shared before it is marked available: a retry after a failed share shares again.
        if state is ReplicaState.AVAILABLE and replica_id is not None:
            self._share(target_region, replica_id)
        repeated = entry.get("state") == ReplicaState.FAILED and entry.get("image_id") == replica_id
        if state is ReplicaState.FAILED and not repeated:
            notice = replica_failed_notice(
                source.image_id, source.region, replica_id or "none", target_region, error or "unknown", event_id
            )
            self.notifier.publish(notice)
            self.count("Notifications")

        timestamp = iso_timestamp(self.now())
        # Still the entry read above: a newer round may have replaced it meanwhile.
        settlement = ReplicaSettlement(target_region, replica_id, state, timestamp, error[:1000] if error else None)
        item = self.inventory.settle_replica(source.image_id, source.region, settlement)
        if item is None:
            logger.warning("Replication entry changed while settling", extra=log)
            self.count("ReplicaEventsUnmatched")
            return "unmatched"
        if replica_id:
            self.inventory.record(
                replica_id,
                target_region,
                {
                    "replica_of": str(source),
                    "source_image_id": source.image_id,
                    "source_region": source.region,
                    "state": state.value,
                    "recorded_at": timestamp,
                    "last_event_id": event_id,
                },
            )
        self.count("ReplicasSettled", state=state.value)
        logger.info("Replica settled", extra=log)
        self._announce_if_over(source, item, event_id)
        return state.value

    def withdraw(self, source: SourceRef, target_region: str, owner: str, event_id: str) -> dict[str, Any] | None:
        """The copy worker holding this region's claim (`owner`) found the approval tag gone before it called
        CopyImage: the entry ends `withdrawn`, no copy made, and the round may be over. Returns the source's item
        after the update, or None when the entry is no longer this worker's claim."""
        item = self.inventory.withdraw_replica(
            source.image_id, source.region, target_region, owner, iso_timestamp(self.now())
        )
        if item is None:
            logger.warning("Replication entry changed before it could be withdrawn",
                           extra={"source": str(source), "region": target_region})  # fmt: skip
            self.count("CopyRecordConflicts")
            return None
        self.count("ReplicasSettled", state=ReplicaState.WITHDRAWN.value)
        self._announce_if_over(source, item, event_id)
        return item

    def _share(self, region: str, replica_id: str) -> None:
        if self.images_in(region).share_image(replica_id, self.policy.replication.share_with):
            self.count("ReplicasShared")

    def _announce_if_over(self, source: SourceRef, item: Mapping[str, Any], event_id: str) -> None:
        """One 'replicated' notice per round: claimed with a conditional write, released if the publish fails."""
        targets = [str(region) for region in item.get("replication_targets") or []]
        round_id = item.get("replication_round")
        replicas = replicas_of(item)
        if not round_id or not round_is_over(targets, replicas) or item.get("replication_announced") == round_id:
            return
        if not self.inventory.claim_announcement(source.image_id, source.region, str(round_id)):
            return
        try:
            self.notifier.publish(
                replicated_notice(
                    source.image_id, source.region, str(item.get("name", "")), replicas, targets, event_id
                )
            )
        except Exception:
            self.inventory.release_announcement(source.image_id, source.region)
            raise
        self.count("ReplicationRoundsCompleted")
        self.count("Notifications")
