"""At-least-once delivery: each EventBridge event is handled once per function, and a redelivery of it is answered
from the first handling's record (Powertools idempotency on the DynamoDB idempotency table).

Where duplicates come from. EventBridge delivers an event to a rule's target at least once, and retries a delivery
it believes failed for up to the target's `MaximumEventAgeInSeconds` (2 h here, stacks/constructs/routed_rule.py;
once more on the forwarder's hop from a governed region's default bus). Lambda's asynchronous queue may run one
event more than once, for up to the function's maximum event age (the Lambda default, 6 h: the stacks set no
`MaximumEventAgeInSeconds`). A duplicate therefore reaches a function at most 2 h + 2 h + 6 h = 10 h after the
event was put; `EXPIRES_AFTER_SECONDS` keeps each record for 12 h (tests/infra/test_idempotency_table.py holds the
two together). DynamoDB's TTL deletes expired records later (within days), but Powertools compares `expiration`
with the clock itself, so the window is exact.

What the record is keyed on: the event's `id` (`event_key_jmespath="id"`), prefixed by Powertools with the function's
name (`AWS_LAMBDA_FUNCTION_NAME`) and the work's (`services.wiring.enforce_event`, ...): enforce, replicate and
cleanup all receive some of the same events (an AMI becoming available, a tag change) and each must handle them.
The in-progress record expires with the invocation (Powertools reads the remaining time from the Lambda context): a
function that timed out does not block its own retry for longer than its timeout.

What this is not: the only guard. Every effect is idempotent by design, so a duplicate that arrives after its record
expired, or a same call recorded twice by CloudTrail (two EventBridge events, two ids, one `detail.eventID`), changes
nothing either (tests/integration/test_replay.py replays a whole scenario with the store emptied):

- enforce re-reads the AMI (`DescribeImages`), writes only tags that differ from what the AMI carries, notifies only
  when the verdict changes, and a remediation already in place (disabled, deprecated, deadline set) is not repeated;
- cleanup claims a deregistered AMI's clean-up in the inventory with a conditional write, and re-checks every snapshot
  against EC2 before deleting it (a snapshot already gone is recorded, not deleted again);
- replicate queues a region's copy job only while the round's entry for it is unclaimed, and settles a replica once.

Why the copy and report Lambdas have no idempotency record:

- copy is fed by the SQS copy queue, whose messages carry no EventBridge id, and a redelivered job (visibility
  timeout, a batch retried) is already harmless: the job claims its region's entry in the source's lineage with a
  conditional write before it calls `CopyImage`, and `CopyImage`'s `ClientToken` (derived from the source, region
  and round) makes EC2 answer a repeated call with the same copy. A record per message would add two writes per job
  for nothing the lineage does not already guarantee.
- report runs on a schedule (or on demand): each run is a fresh report under its own run id, so a second delivery of
  the schedule's event writes a second report, which costs a scan and is not damage; the sweep it may run re-reads
  AWS (and the inventory) before every action it takes, so a second sweep finds nothing left to do.

A failure of the idempotency store itself (throttling, an outage) raises: the invocation fails and Lambda retries
it, then dead-letters it with an alarm. Running the handler anyway would be safe too (see above), but a store that
silently stops recording would hide the failure; a retried event costs only time.

The Powertools utility imports boto3 and jmespath: it is imported on the first invocation, not at the cold start's
module load (the handlers import pydantic the same way), and its store is built once per container.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from ami_governance.observability import count, logger

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
    from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

    from ami_governance.settings import EventDrivenSettings

Work = Callable[[Any, Any], Any]

# Longer than the latest a duplicate can arrive (10 h, the module's docstring); storage is the only cost of more.
EXPIRES_AFTER_SECONDS: Final = 12 * 60 * 60
# The EventBridge envelope's id: the same on every delivery of one event, different for every other event.
EVENT_KEY: Final = "id"
MAX_EVENT_ID_LENGTH: Final = 256
# A DynamoDB item holds at most 400 KB; the record's key, status and expiry take a few hundred bytes of that.
MAX_RECORDED_ANSWER_BYTES: Final = 390_000
# Powertools' DynamoDBPersistenceLayer defaults, spelled out because the stack's table must match them.
KEY_ATTRIBUTE: Final = "id"
EXPIRY_ATTRIBUTE: Final = "expiration"


def once_per_event(settings: type[EventDrivenSettings], work: Work, event: Any, context: Any) -> Any:
    """`work(event, context)`, once per EventBridge event id: a redelivered event gets the first run's answer, and
    the `DuplicateEvents` metric counts it. An event without a usable id is handled without a record. Called from the
    handler module: the record's calls are the function's (tests/iam attributes calls by the handler's frame)."""
    if not has_event_id(event):
        # No EventBridge envelope sends this (its ids are UUIDs): the work refuses the event as malformed, logged and
        # counted; keyed or stored, an id that is a huge or nested value would fail in Powertools' hashing instead.
        return work(event, context)
    config = settings.load()
    return _idempotent(work)(event, context, store=_store(config.idempotency_table_name, config.region))


def has_event_id(event: Any) -> bool:
    """Whether the event carries an id that can key its record: a string no longer than EventBridge's (36, a UUID)
    by a wide margin."""
    event_id = event.get(EVENT_KEY) if isinstance(event, dict) else None
    return isinstance(event_id, str) and 0 < len(event_id) <= MAX_EVENT_ID_LENGTH


@functools.cache
def _idempotent(work: Work) -> Callable[..., Any]:
    # Imported here, on the first invocation: see the module's docstring.
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent

    config = IdempotencyConfig(
        event_key_jmespath=EVENT_KEY, expires_after_seconds=EXPIRES_AFTER_SECONDS, response_hook=_duplicate
    )

    def run(event: Any, context: Any, *, store: DynamoDBPersistenceLayer) -> Any:
        # The store is given per call (tests and the emulator switch backends between cases; in the cloud it is the
        # same one every time). @idempotent registers the context: an in-progress record expires with the invocation.
        # The record's key names the function (AWS_LAMBDA_FUNCTION_NAME) and `work`'s module and name. Powertools
        # deep-copies the payload it keys on: it gets the envelope's id alone, so that an event nested thousands deep
        # reaches the work (which refuses it, logged and counted) instead of failing in the copy.
        def handle(_: Any, lambda_context: Any) -> Any:
            return recordable(work(event, lambda_context))

        handle.__module__, handle.__qualname__ = work.__module__, work.__qualname__
        return idempotent(handle, persistence_store=store, config=config)({EVENT_KEY: event[EVENT_KEY]}, context)

    return run


def recordable(answer: Any) -> Any:
    """The answer as its record can hold it: an answer too large for a DynamoDB item could not be stored once the
    work was done, and the event would be retried and dead-lettered for nothing. Such an answer is recorded, and
    returned, in brief (Lambda discards an asynchronous invocation's answer; the log and metrics have the rest)."""
    if not isinstance(answer, dict):
        return answer
    size = len(json.dumps(answer, default=str).encode())
    if size <= MAX_RECORDED_ANSWER_BYTES:
        return answer
    images = answer.get("images")
    logger.warning("Answer too large for its idempotency record: recorded in brief", extra={"bytes": size})
    return {
        "status": answer.get("status"),
        "event_id": answer.get("event_id"),
        "reason": str(answer.get("reason") or "")[:1000] or None,
        "images": [],
        "answer_in_brief": f"{size} bytes answered, over {MAX_RECORDED_ANSWER_BYTES}; "
        f"{len(images) if isinstance(images, list) else 0} image outcomes not listed",
    }


def _duplicate(response: Any, idempotent_data: DataRecord) -> Any:
    logger.info(
        "Duplicate event: answered from its first handling", extra={"idempotency_key": idempotent_data.idempotency_key}
    )
    count("DuplicateEvents")
    return response


@functools.cache
def _store(table_name: str, region: str) -> DynamoDBPersistenceLayer:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    from ami_governance.adapters.clients import client

    # The functions' own client (retries, timeouts, the tests' fault hooks), not one Powertools would make.
    return DynamoDBPersistenceLayer(
        table_name=table_name,
        key_attr=KEY_ATTRIBUTE,
        expiry_attr=EXPIRY_ATTRIBUTE,
        boto3_client=client("dynamodb", region),
    )


def forget_stores() -> None:
    """Forget the stores built per container (tests switch AWS backends between cases)."""
    _store.cache_clear()
