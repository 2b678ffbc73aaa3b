"""The copy worker: copy jobs from the copy queue -> CopyImage in the target region, exactly once per region and
round.

A job claims its region's entry in the source's inventory item with a conditional write before it calls CopyImage,
and records the replica CopyImage names; a job EC2 says must wait (its concurrent-copy cap, CopyImage's 1-per-second
refill) is hidden on the queue for its backoff instead of sleeping. The replica's own state change settles the
entry (services/replicate.py); a copy that never started is settled here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from ami_governance.adapters.ec2 import TagLimitExceeded
from ami_governance.adapters.errors import error_code
from ami_governance.models.image import ImageFacts
from ami_governance.models.jobs import CopyJob, SqsRecord
from ami_governance.models.lineage import ReplicaState
from ami_governance.models.policy import GovernancePolicy
from ami_governance.rules.approval import (
    RETRY_MAX_SECONDS,
    carries_approval,
    copy_request,
    retry_delay_seconds,
    withdrawn_answer,
    withdrawn_reason,
)
from ami_governance.rules.tags import SystemTag, iso_timestamp
from ami_governance.services.common import Counter, NoticeSink
from ami_governance.services.lineage import (
    Lineage,
    LineageStore,
    ReplicaImages,
    SourceRef,
    replicas_of,
)

logger = Logger(child=True)


class CopyJobQueue(Protocol):
    def defer(self, receipt_handle: str, seconds: int) -> None: ...


class CopyInventory(LineageStore, Protocol):
    """The inventory as the copy worker uses it: lineage, plus its claim on one region's copy."""

    def claim_copy(
        self, image_id: str, region: str, target: str, generation: int, owner: str, now: str, lease_until: str
    ) -> bool: ...
    def release_copy(self, image_id: str, region: str, target: str, owner: str) -> bool: ...
    def record_copy(
        self, image_id: str, region: str, target: str, owner: str, replica_id: str, requested_at: str, adopted: bool
    ) -> bool: ...


# EC2 says "later": its concurrent-copy cap, request throttling that outlasted botocore's retries, or a 5xx.
RETRYABLE_COPY_ERRORS = frozenset(
    {
        "ResourceLimitExceeded",
        "RequestLimitExceeded",
        "Throttling",
        "ThrottlingException",
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "Unavailable",
    }
)
# A claimed copy job belongs to its worker this long (twice the copy Lambda's timeout): then another may take it.
COPY_LEASE = timedelta(minutes=4)


class RetryLater(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class CopyOutcome:
    message_id: str
    result: str
    source: str = ""
    region: str = ""
    replica_id: str | None = None
    reason: str = ""


@dataclass
class CopyService:
    policy: GovernancePolicy
    account_id: str
    count: Counter
    images_in: Callable[[str], ReplicaImages]
    inventory: CopyInventory
    notifier: NoticeSink
    queue_for: Callable[[str], CopyJobQueue]  # the queue (by ARN) a record came from
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    # Source AMIs as described during this invocation: a batch often holds one source's jobs for several regions.
    _sources: dict[SourceRef, ImageFacts | None] = field(default_factory=dict)
    lineage: Lineage = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.lineage = Lineage(self.policy, self.images_in, self.inventory, self.notifier, self.count, self.now)

    def handle_batch(self, event: Any) -> dict[str, Any]:
        """Lambda's SQS batch: each job on its own. Jobs that must wait are hidden for their backoff and reported
        as failures (ReportBatchItemFailures), so SQS redelivers only those; after the queue's maximum receive
        count they go to its dead-letter queue."""
        records = event.get("Records", []) if isinstance(event, dict) else []
        failures: list[dict[str, str]] = []
        outcomes: list[CopyOutcome] = []
        if not isinstance(records, list):
            # Lambda's SQS events always hold a list: this one was hand-made, and names no message to keep.
            logger.error("Malformed SQS event", extra={"records": type(records).__name__})
            self.count("MalformedCopyJobs")
            records = []
        for raw in records:
            try:
                record = SqsRecord.model_validate(raw)
            except ValidationError as error:
                message_id = raw.get("messageId") if isinstance(raw, dict) else None
                logger.error("Malformed SQS record", extra={"message_id": message_id, "error": str(error)})
                self.count("MalformedCopyJobs")
                if message_id:
                    failures.append({"itemIdentifier": str(message_id)})
                continue
            outcome = self._one(record)
            outcomes.append(outcome)
            if outcome.result in ("retry", "malformed"):
                failures.append({"itemIdentifier": record.message_id})
        return {"batchItemFailures": failures, "outcomes": [asdict(o) for o in outcomes]}

    def _one(self, record: SqsRecord) -> CopyOutcome:
        try:
            job = CopyJob.model_validate_json(record.body)
        except ValidationError as error:
            # Not ours to fix by retrying: kept (hidden for the longest backoff) until it reaches the DLQ.
            logger.error("Malformed copy job", extra={"message_id": record.message_id, "error": str(error)})
            self.count("MalformedCopyJobs")
            self._defer(record, RETRY_MAX_SECONDS)
            return CopyOutcome(record.message_id, "malformed", reason="malformed copy job")
        source = SourceRef(job.source_image_id, job.source_region)
        log = {"message_id": record.message_id, "source": str(source), "region": job.target_region}
        try:
            return self._copy(record, job, source)
        except RetryLater as later:
            delay = retry_delay_seconds(record.receive_count)
            logger.warning("Copy deferred", extra={**log, "reason": later.reason, "retry_in_seconds": delay})
            self.count("CopiesDeferred", reason=later.reason)
            self._defer(record, delay)
            return CopyOutcome(record.message_id, "retry", str(source), job.target_region, reason=later.reason)
        except (ClientError, BotoCoreError) as error:
            # AWS calls failing after botocore's retries (or timing out): this job is retried, the batch goes on.
            code = error_code(error)
            logger.error("AWS call failed; the copy job will be retried", extra={**log, "code": code})
            self.count("AwsErrors", code=code)
            self._defer(record, retry_delay_seconds(record.receive_count))
            return CopyOutcome(record.message_id, "retry", str(source), job.target_region, reason=code)

    def _defer(self, record: SqsRecord, seconds: int) -> None:
        try:
            self.queue_for(record.event_source_arn).defer(record.receipt_handle, seconds)
        except (ClientError, BotoCoreError) as error:
            # The message comes back after the queue's visibility timeout instead: later, not lost.
            logger.warning("Could not delay a copy job", extra={"code": error_code(error)})

    def _copy(self, record: SqsRecord, job: CopyJob, source: SourceRef) -> CopyOutcome:
        region = job.target_region
        done = CopyOutcome(record.message_id, "skipped", str(source), region)
        if region not in self.policy.replication.regions or region == source.region:
            self.count("StaleCopyJobs")
            done.reason = f"{region} is not a replication target of the policy"
            return done
        entry = replicas_of(self.inventory.get(source.image_id, source.region)).get(region)
        if entry is None or int(entry.get("generation", 0)) != job.generation:
            self.count("StaleCopyJobs")
            done.reason = "no matching replication entry (a newer round replaced it, or none was recorded)"
            return done
        state, replica_id = entry.get("state"), entry.get("image_id")
        if state == ReplicaState.COPYING and replica_id:
            return self._check_copy(record, source, region, str(replica_id))
        if state not in (ReplicaState.QUEUED, ReplicaState.COPYING):
            done.reason, done.replica_id = f"already {state}", replica_id
            return done
        owner = record.message_id
        if not self._claim(source, region, owner, job.generation):
            current = replicas_of(self.inventory.get(source.image_id, source.region)).get(region) or {}
            if current.get("state") == ReplicaState.COPYING and not current.get("image_id"):
                # Another delivery of this job is copying right now: look again once its lease has run out.
                raise RetryLater("another worker holds this copy")
            done.reason = f"already {current.get('state')}"
            return done
        try:
            return self._copy_claimed(record, job, source, owner)
        except RetryLater:
            raise
        except Exception:
            # Whatever failed, the region must not stay claimed by a job that is about to be retried.
            self._release(source, region, owner)
            raise

    def _copy_claimed(self, record: SqsRecord, job: CopyJob, source: SourceRef, owner: str) -> CopyOutcome:
        region = job.target_region
        images = self.images_in(region)
        ours = self.policy.tag_key(SystemTag.SOURCE_IMAGE)
        existing = [copy for copy in images.find_copies(source.image_id, source.region) if copy.tags.get(ours)]
        if existing:
            # A replica this system made (its lineage tag says so) that the inventory did not know of, e.g. after
            # a crash between CopyImage and its record: adopted, not copied again.
            replica = existing[0]
            self.count("ReplicasAdopted")
            if not self._record_copy(source, region, owner, replica.image_id, job, adopted=True):
                return CopyOutcome(record.message_id, "skipped", str(source), region, reason="recorded meanwhile")
            if replica.state == "available":
                self.lineage.settle(source, region, replica.image_id, ReplicaState.AVAILABLE, record.message_id)
            return CopyOutcome(record.message_id, "adopted", str(source), region, replica.image_id)

        described = self._source_image(source)
        if described is not None and not carries_approval(self.policy, described):
            return self._withdraw(record, source, region, owner, described)
        request = copy_request(
            self.policy,
            source.image_id,
            source.region,
            region,
            name=job.name,
            description=job.description,
            approver=job.approved_by,
            generation=job.generation,
        )
        try:
            replica_id = images.copy_image(request)
        except ClientError as error:
            code = error_code(error)
            if code in RETRYABLE_COPY_ERRORS:
                self._release(source, region, owner)
                raise RetryLater(code) from error
            # Permanent for this round (source gone, key refused, parameters rejected): recorded and notified;
            # approving again retries once the cause is fixed.
            self.count("CopiesFailed", code=code)
            self.lineage.settle(source, region, None, ReplicaState.FAILED, record.message_id, f"{code}: {error}")
            return CopyOutcome(record.message_id, "failed", str(source), region, reason=code)
        self._record_copy(source, region, owner, replica_id, job)
        self.count("CopiesStarted")
        logger.info("Copy started", extra={"source": str(source), "region": region, "replica_id": replica_id})
        return CopyOutcome(record.message_id, "copying", str(source), region, replica_id)

    def _source_image(self, source: SourceRef) -> ImageFacts | None:
        if source not in self._sources:
            self._sources[source] = self.images_in(source.region).describe_image(source.image_id)
        return self._sources[source]

    def _withdraw(
        self, record: SqsRecord, source: SourceRef, region: str, owner: str, image: ImageFacts
    ) -> CopyOutcome:
        """The approval tag was removed after this job was queued and before its copy started: the job is dropped,
        the region's entry ends `withdrawn` and the answer on the source says which regions were not copied."""
        outcome = CopyOutcome(record.message_id, "withdrawn", str(source), region, reason=withdrawn_reason(self.policy))
        logger.warning("Approval withdrawn before the copy started: job dropped",
                       extra={"source": str(source), "region": region})  # fmt: skip
        self.count("ApprovalsWithdrawn")
        item = self.lineage.withdraw(source, region, owner, record.message_id)
        if item is None:
            outcome.result, outcome.reason = "skipped", "the entry changed meanwhile"
            return outcome
        key = self.policy.tag_key(SystemTag.APPROVAL)
        answer = withdrawn_answer(self.policy, replicas_of(item))
        if image.tags.get(key) != answer:
            try:
                self.images_in(source.region).create_tags([source.image_id], {key: answer})
                self._sources[source] = replace(image, tags={**image.tags, key: answer})
            except TagLimitExceeded:
                logger.warning("AMI is at the tag limit: approval answer not tagged", extra={"source": str(source)})
                self.count("TagsDroppedAtLimit")
        return outcome

    def _check_copy(self, record: SqsRecord, source: SourceRef, region: str, replica_id: str) -> CopyOutcome:
        """A job for a copy already made (a repeated delivery, or a retry after the copy was recorded): settle it
        if it is available, in case its own state change was missed; otherwise its state change will."""
        replica = self.images_in(region).describe_image(replica_id)
        if replica is not None and replica.state == "available":
            result = self.lineage.settle(source, region, replica_id, ReplicaState.AVAILABLE, record.message_id)
            return CopyOutcome(record.message_id, "skipped", str(source), region, replica_id, f"settled: {result}")
        state = replica.state if replica is not None else "gone"
        return CopyOutcome(record.message_id, "skipped", str(source), region, replica_id, f"copy is {state}")

    def _claim(self, source: SourceRef, region: str, owner: str, generation: int) -> bool:
        now = self.now()
        lease_until = iso_timestamp(now + COPY_LEASE)
        return self.inventory.claim_copy(
            source.image_id, source.region, region, generation, owner, iso_timestamp(now), lease_until
        )

    def _release(self, source: SourceRef, region: str, owner: str) -> None:
        self.inventory.release_copy(source.image_id, source.region, region, owner)

    def _record_copy(
        self, source: SourceRef, region: str, owner: str, replica_id: str, job: CopyJob, adopted: bool = False
    ) -> bool:
        timestamp = iso_timestamp(self.now())
        # The state stays `copying`: the replica's own state change settles it, once this record names it.
        if not self.inventory.record_copy(
            source.image_id, source.region, region, owner, replica_id, timestamp, adopted
        ):
            logger.error(
                "Copy made but its entry changed meanwhile: not recorded",
                extra={"source": str(source), "region": region, "replica_id": replica_id},
            )
            self.count("CopyRecordConflicts")
            return False
        self.inventory.record(
            replica_id,
            region,
            {
                "replica_of": str(source),
                "source_image_id": source.image_id,
                "source_region": source.region,
                "approved_by": job.approved_by,
                "account": self.account_id,
                "name": job.name,
                "requested_at": timestamp,
            },
        )
        return True
