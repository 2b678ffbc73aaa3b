"""Lambda event source mappings for SQS queues: what Lambda's queue poller does, for the router to run.

Lambda reads a batch from the queue (ReceiveMessage, so the queue's visibility timeout hides the batch while the
function runs and its redrive policy moves a message to the dead-letter queue once it has been received
`maxReceiveCount` times), invokes the function synchronously with the SQS event, and deletes what succeeded: the
whole batch when the function returns, nothing when it raises, and with `ReportBatchItemFailures` all but the
messages it lists in `batchItemFailures`. A message left in the queue comes back when its visibility timeout ends,
in real time; ChangeMessageVisibility moves that moment, as in AWS.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from moto.sqs.models import sqs_backends

from emulator.functions import FunctionSpec, InvocationResult

# The system attributes Lambda copies into a record (the FIFO ones and the trace header only when present).
RECORD_ATTRIBUTES = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
    "SequenceNumber",
    "MessageGroupId",
    "MessageDeduplicationId",
    "AWSTraceHeader",
)


@dataclass
class SqsEventSourceMapping:
    uuid: str
    arn: str
    queue_arn: str
    function: FunctionSpec
    batch_size: int = 10
    maximum_batching_window_seconds: int = 0
    report_batch_item_failures: bool = False
    enabled: bool = True

    @property
    def queue_region(self) -> str:
        return self.queue_arn.split(":")[3]

    @property
    def queue_name(self) -> str:
        return self.queue_arn.rsplit(":", 1)[-1]


@dataclass(frozen=True)
class QueueCounts:
    """What a queue holds for its consumers right now, read from moto's model."""

    deliverable: int  # visible and not delayed: the next ReceiveMessage returns (or redrives) them
    not_visible: int  # received and not deleted (in flight), or delayed
    next_ready_in: float | None  # seconds until the first of those becomes deliverable


def queue_counts(account: str, queue_arn: str) -> QueueCounts:
    region, name = queue_arn.split(":")[3], queue_arn.rsplit(":", 1)[-1]
    queue = sqs_backends[account][region].queues.get(name)
    if queue is None:
        return QueueCounts(0, 0, None)
    now_ms = time.time() * 1000
    deliverable, waiting = 0, []
    for message in list(queue._messages):
        ready_at_ms = max(message.visible_at, message.delayed_until)
        if ready_at_ms < now_ms:
            deliverable += 1
        else:
            waiting.append(ready_at_ms)
    next_ready_in = (min(waiting) - now_ms) / 1000 + 0.001 if waiting else None
    return QueueCounts(deliverable, len(waiting), next_ready_in)


def sqs_event(mapping: SqsEventSourceMapping, messages: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The event Lambda passes to the function for these ReceiveMessage messages."""
    return {"Records": [_record(mapping, message) for message in messages]}


def _record(mapping: SqsEventSourceMapping, message: Mapping[str, Any]) -> dict[str, Any]:
    attributes = message.get("Attributes") or {}
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": {key: str(attributes[key]) for key in RECORD_ATTRIBUTES if key in attributes},
        "messageAttributes": {
            name: _message_attribute(value) for name, value in (message.get("MessageAttributes") or {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": mapping.queue_arn,
        "awsRegion": mapping.queue_region,
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def _message_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    attribute: dict[str, Any] = {}
    if "StringValue" in value:
        attribute["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        attribute["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
    attribute["stringListValues"] = list(value.get("StringListValues") or [])
    attribute["binaryListValues"] = [base64.b64encode(v).decode() for v in value.get("BinaryListValues") or []]
    attribute["dataType"] = value.get("DataType", "String")
    return attribute


def failed_message_ids(  # noqa: PLR0911 - one return per case Lambda's documentation distinguishes
    mapping: SqsEventSourceMapping, result: InvocationResult, message_ids: Sequence[str]
) -> tuple[set[str], str | None]:
    """The messages of the batch Lambda keeps in the queue after this invocation, and why (None: all succeeded).

    With ReportBatchItemFailures Lambda treats an empty or null response or `batchItemFailures` as complete
    success, and a response it cannot read (an identifier that is missing, empty or not in the batch) as
    complete failure."""
    everything = set(message_ids)
    if not result.ok:
        return everything, f"{result.error_type}: {result.error_message}"
    if not mapping.report_batch_item_failures or not result.result:
        return set(), None
    if not isinstance(result.result, dict):
        return everything, "the function's response is not a batchItemFailures object"
    failures = result.result.get("batchItemFailures")
    if not failures:
        return set(), None
    if not isinstance(failures, list):
        return everything, "batchItemFailures is not a list"
    listed: set[str] = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(identifier, str) or identifier not in everything:
            return everything, f"invalid batchItemFailures entry {failure!r}: the whole batch failed"
        listed.add(identifier)
    return listed, f"batchItemFailures: {', '.join(sorted(listed))}"
