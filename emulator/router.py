"""EventBridge routing as in the cloud: buses and rules read from the emulator's EventBridge, matched with
EventBridge pattern semantics, targets delivered asynchronously with their retry policy and dead-letter queue.

Lambda targets are invoked asynchronously: a function error is retried `MaximumRetryAttempts` times (the
function's EventInvokeConfig), then the event goes to the function's dead-letter queue with Lambda's message
attributes (RequestID, ErrorCode, ErrorMessage). A target EventBridge cannot deliver to (an unknown function, a
missing bus) is retried per the rule target's RetryPolicy and then sent to the target's dead-letter queue.

SQS event source mappings (see event_sources.py) run on the same worker: a queue that has messages a consumer could
receive gets a poll, which delivers one batch to the function. moto tells the router when a queue changes (a
message sent, received or made visible, see server.py); a message that becomes visible later (its visibility
timeout or delay ends) wakes the router at that moment.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from moto.events.models import events_backends

from emulator.event_sources import SqsEventSourceMapping, failed_message_ids, queue_counts, sqs_event
from emulator.functions import FunctionRegistry
from emulator.matcher import pattern_matches

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import DeleteMessageBatchRequestEntryTypeDef, MessageTypeDef

logger = logging.getLogger(__name__)

# Real retries back off for minutes; the emulator keeps the count and shortens the wait.
RETRY_DELAY_SECONDS = 0.05
MAX_TARGET_RETRIES = 3
# The `rule` of what a Lambda Invoke API call ran, in the drain's records (emulator/lambda_invoke.py).
INVOKE_EVENT = "lambda:Invoke (Event)"
INVOKE_REQUEST_RESPONSE = "lambda:Invoke (RequestResponse)"


@dataclass
class Invocation:
    """One delivery attempt of an event to a target, as `POST /_governance/drain` reports it."""

    event_id: str
    detail_type: str
    description: str
    rule: str
    target: str
    attempt: int
    outcome: str  # success | error | dead-lettered | delivered | dropped | emulator-error
    duration_ms: float = 0.0
    error: str | None = None
    result: Any = None


@dataclass
class LoggedEvent:
    time: str
    region: str
    bus: str
    event_id: str
    source: str
    detail_type: str
    rules: list[str]
    event: dict[str, Any]
    # What failed in the emulator while the event was matched or delivered (it is still routed to the rest).
    errors: list[str] = field(default_factory=list)


@dataclass(order=True)
class _Job:
    due: float
    sequence: int
    run: Callable[[], None] = field(compare=False)
    # A wake-up for a message that becomes visible later: a drain does not wait for it.
    background: bool = field(default=False, compare=False)
    # What the job works on, for the record if it fails: the event, and the rule and target it is delivered by.
    event: dict[str, Any] | None = field(default=None, compare=False)
    rule: str = field(default="", compare=False)
    target: str = field(default="", compare=False)


class Router:
    def __init__(
        self,
        account: str,
        functions: FunctionRegistry,
        send_sqs: Callable[..., None],
        publish_sns: Callable[[str, str], None],
        sqs_client: Callable[[str], SQSClient] | None = None,
        sns_target_refusal: Callable[[str], str | None] | None = None,
    ) -> None:
        self.account = account
        # With IAM enforced: topic ARN -> why EventBridge may not publish to it (its KMS key's policy), or None.
        self.sns_target_refusal = sns_target_refusal
        self.functions = functions
        self.send_sqs = send_sqs
        self.publish_sns = publish_sns
        self.sqs_client = sqs_client  # region -> an SQS client of the emulator's endpoint, for the mappings
        self.mappings: list[SqsEventSourceMapping] = []
        self._polls_pending: set[str] = set()  # mapping uuids with a poll in the queue
        self._wakes: dict[str, float] = {}  # mapping uuid -> when its wake-up is due (monotonic)
        self._windows: dict[str, float] = {}  # mapping uuid -> when its batching window opened (monotonic)
        self._idle_polls: set[str] = set()  # mapping uuids whose last poll received nothing
        self.events: list[LoggedEvent] = []
        self._completed: list[Invocation] = []
        self._jobs: list[_Job] = []
        self._sequence = itertools.count()
        self._condition = threading.Condition()
        self._busy = False
        self._stopping = False
        self._thread = threading.Thread(target=self._work, name="eventbridge-router", daemon=True)
        self._thread.start()

    # ---- putting events ----------------------------------------------------------------------

    def put(
        self,
        region: str,
        bus: str,
        event: dict[str, Any],
        delay: float = 0.0,
        before: Callable[[], None] | None = None,
    ) -> None:
        """Put `event` on `bus` in `region`; rules are evaluated when it is its turn (as EventBridge does).
        `before` runs just before, at the same moment (e.g. the AMI becoming available with its event)."""

        def route() -> None:
            try:
                if before is not None:
                    before()
            finally:  # the event is routed (and logged) even if what comes with it failed
                self._route(region, bus, event)

        self._schedule(delay, route, event=event, target=f"event bus {bus} in {region}")

    def _schedule(
        self,
        delay: float,
        run: Callable[[], None],
        background: bool = False,
        event: dict[str, Any] | None = None,
        rule: str = "",
        target: str = "",
    ) -> None:
        job = _Job(time.monotonic() + delay, next(self._sequence), run, background, event, rule, target)
        with self._condition:
            heapq.heappush(self._jobs, job)
            self._condition.notify_all()

    # ---- the worker --------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._condition:
                while not self._stopping and (not self._jobs or self._jobs[0].due > time.monotonic()):
                    timeout = None if not self._jobs else max(0.0, self._jobs[0].due - time.monotonic())
                    self._condition.wait(timeout)
                if self._stopping:
                    return
                job = heapq.heappop(self._jobs)
                self._busy = True
            try:
                job.run()
            except Exception as error:  # one job's failure must not stop the routing of every later event
                self._failed(job.event, job.rule, job.target, error)
            finally:
                with self._condition:
                    self._busy = False
                    self._condition.notify_all()

    def drain(self, timeout: float = 60.0) -> list[Invocation]:
        """Block until every queued event and retry has been handled and no mapped queue holds a message its
        function could receive now; what ran since the last drain. Messages that are not visible (in flight, or
        delayed) are not waited for: `messages_not_visible` counts them."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while True:
                # A message whose visibility timeout ended while nothing looked gets its poll now.
                waiting = [mapping for mapping in self.mappings if self._check_queue(mapping)]
                if not waiting and not self._busy and all(job.background for job in self._jobs):
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"events still pending after {timeout} s")
                self._condition.wait(remaining)
            completed, self._completed = self._completed, []
        return completed

    def stop(self) -> None:
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        self._thread.join(5)

    # ---- SQS event source mappings -----------------------------------------------------------

    def add_sqs_mapping(self, mapping: SqsEventSourceMapping) -> None:
        with self._condition:
            self.mappings.append(mapping)
            self._check_queue(mapping)

    def queue_changed(self, queue_arn: str) -> None:
        """moto changed this queue (a message sent, received or made visible): poll it if a mapping reads it."""
        with self._condition:
            for mapping in self.mappings:
                if mapping.queue_arn == queue_arn:
                    self._check_queue(mapping)

    def messages_not_visible(self) -> dict[str, int]:
        """Mapped queue ARN -> its messages in flight or delayed, which a drain does not wait for."""
        return {m.queue_arn: queue_counts(self.account, m.queue_arn).not_visible for m in self.mappings}

    def _check_queue(self, mapping: SqsEventSourceMapping) -> bool:
        """Schedule a poll if the queue has messages to deliver, and a wake-up for the moment the next message
        becomes visible or the batching window closes. True while the queue has deliverable messages."""
        if not mapping.enabled:
            return False
        counts = queue_counts(self.account, mapping.queue_arn)
        key = mapping.uuid
        with self._condition:
            if not counts.deliverable:
                self._windows.pop(key, None)
            elif key not in self._polls_pending:
                now = time.monotonic()
                # Lambda gathers records for up to the batching window before it invokes with a partial batch.
                closes = self._windows.setdefault(key, now) + mapping.maximum_batching_window_seconds
                if counts.deliverable >= mapping.batch_size or closes <= now:
                    self._polls_pending.add(key)
                    # A poll that found nothing although messages looked deliverable is not repeated at once.
                    delay = RETRY_DELAY_SECONDS if key in self._idle_polls else 0.0
                    self._schedule(delay, functools.partial(self._poll, mapping))
                else:
                    self._wake(mapping, closes - now)
            if counts.next_ready_in is not None:
                self._wake(mapping, counts.next_ready_in)
        return counts.deliverable > 0

    def _wake(self, mapping: SqsEventSourceMapping, delay: float) -> None:
        """Check the queue again in `delay` seconds (one wake-up per mapping: the earliest)."""
        due = time.monotonic() + delay
        with self._condition:
            if mapping.uuid in self._wakes and self._wakes[mapping.uuid] <= due:
                return
            self._wakes[mapping.uuid] = due

        def wake() -> None:
            with self._condition:
                if self._wakes.get(mapping.uuid) == due:
                    del self._wakes[mapping.uuid]
            self._check_queue(mapping)

        self._schedule(delay, wake, background=True)

    def _poll(self, mapping: SqsEventSourceMapping) -> None:
        """One batch from the queue to the function, as Lambda's poller delivers it."""
        key = mapping.uuid
        with self._condition:
            self._polls_pending.discard(key)
            self._windows.pop(key, None)
        try:
            self._deliver_batch(mapping)
        except Exception as error:  # an SQS call of the poller failed; Lambda's poller would try again later
            failure = Invocation(
                "", "SQS message batch", f"poll of {mapping.queue_name} failed", mapping.arn, mapping.function.name,
                0, "error", error=f"{type(error).__name__}: {error}",
            )  # fmt: skip
            self._complete(failure)
            with self._condition:
                self._idle_polls.add(key)
        self._check_queue(mapping)

    def _deliver_batch(self, mapping: SqsEventSourceMapping) -> None:
        if self.sqs_client is None:
            raise RuntimeError("the router has no SQS client for its event source mappings")
        sqs = self.sqs_client(mapping.queue_region)
        url = sqs.get_queue_url(QueueName=mapping.queue_name)["QueueUrl"]
        messages: list[MessageTypeDef] = []
        while len(messages) < mapping.batch_size:
            received = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=min(10, mapping.batch_size - len(messages)),
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not received:
                break
            messages.extend(received)
        with self._condition:
            if not messages:
                # What looked deliverable was moved to the dead-letter queue by the receive (or is not there).
                self._idle_polls.add(mapping.uuid)
                return
            self._idle_polls.discard(mapping.uuid)
        result = self.functions.invoke(mapping.function, sqs_event(mapping, messages))
        ids = [message["MessageId"] for message in messages]
        kept, error = failed_message_ids(mapping, result, ids)
        done = [message for message in messages if message["MessageId"] not in kept]
        for start in range(0, len(done), 10):
            entries: list[DeleteMessageBatchRequestEntryTypeDef] = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[start:][:10])
            ]
            sqs.delete_message_batch(QueueUrl=url, Entries=entries)
        receives = max(int(message.get("Attributes", {}).get("ApproximateReceiveCount", 1)) for message in messages)
        invocation = Invocation(
            event_id=",".join(ids),
            detail_type="SQS message batch",
            description=f"{len(messages)} from {mapping.queue_name}: {len(done)} deleted, {len(kept)} kept",
            rule=mapping.arn,
            target=mapping.function.name,
            attempt=receives - 1,
            outcome="success" if result.ok else "error",
            duration_ms=result.duration_ms,
            error=error,
            result=result.result,
        )
        self._complete(invocation)

    # ---- matching ----------------------------------------------------------------------------

    def _rules(self, region: str, bus: str) -> list[Any]:
        backend = events_backends[self.account][region]
        event_bus = backend.event_buses.get(bus)
        return [] if event_bus is None else list(event_bus.rules.values())

    def _route(self, region: str, bus: str, event: dict[str, Any]) -> None:
        # Logged first, so that an event is in the log whatever happens to it below.
        logged = LoggedEvent(
            _text(event.get("time")),
            region,
            bus,
            _text(event.get("id")),
            _text(event.get("source")),
            _text(event.get("detail-type")),
            [],
            event,
        )
        self.events.append(logged)
        for rule in self._rules(region, bus):
            try:
                pattern = rule.event_pattern.get_pattern()
                if rule.state != "ENABLED" or not pattern or not pattern_matches(pattern, event):
                    continue
            except Exception as error:
                self._failed(event, rule.name, "", error, "matching")
                continue
            logged.rules.append(rule.name)
            for target in rule.targets:
                try:
                    self._deliver(rule.name, target, event, attempt=0)
                except Exception as error:
                    self._failed(event, rule.name, str(target.get("Arn", "")), error)

    def fire_schedules(self) -> list[str]:
        """Deliver a `Scheduled Event` to the targets of every scheduled rule now (`POST /_governance/schedule`)."""
        fired = []
        for region, backend in events_backends[self.account].items():
            for bus in list(backend.event_buses):
                for rule in self._rules(region, bus):
                    if not rule.scheduled_expression or rule.state != "ENABLED":
                        continue
                    fired.append(rule.name)
                    event = {
                        "version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event",
                        "source": "aws.events", "account": self.account, "time": _now(), "region": region,
                        "resources": [rule.arn], "detail": {},
                    }  # fmt: skip
                    for target in rule.targets:
                        deliver = functools.partial(self._deliver, rule.name, target, event, 0)
                        self._schedule(0.0, deliver, event=event, rule=rule.name, target=str(target.get("Arn", "")))
        return fired

    # ---- delivery ----------------------------------------------------------------------------

    def _deliver(self, rule: str, target: dict[str, Any], event: dict[str, Any], attempt: int) -> None:
        arn = target["Arn"]
        service, region, resource = arn.split(":")[2], arn.split(":")[3], arn.split(":", 5)[5]
        if service == "lambda":
            function = self.functions.find(arn)
            if function is None:
                self._target_failed(rule, target, event, attempt, "ResourceNotFoundException", f"no function {arn}")
                return
            # Lambda accepts the asynchronous invocation; the function runs when it is its turn.
            invoke = functools.partial(self._invoke, rule, function, event, 0)
            self._schedule(0.0, invoke, event=event, rule=rule, target=function.name)
        elif service == "events" and resource.startswith("event-bus/"):
            bus = resource.removeprefix("event-bus/")
            if events_backends[self.account][region].event_buses.get(bus) is None:
                self._target_failed(rule, target, event, attempt, "ResourceNotFoundException", f"no event bus {arn}")
                return
            self._record(event, rule, arn, attempt, "delivered")
            self.put(region, bus, event)
        elif service == "sqs":
            self.send_sqs(arn, json.dumps(event))
            self._record(event, rule, arn, attempt, "delivered")
        elif service == "sns":
            refusal = self.sns_target_refusal(arn) if self.sns_target_refusal is not None else None
            if refusal is not None:
                # A permission error is not retried: the event goes to the target's DLQ at once (EventBridge user
                # guide, "Using dead-letter queues to process undelivered events").
                self._target_failed(rule, target, event, attempt, "KMS.AccessDeniedException", refusal, retry=False)
                return
            self.publish_sns(arn, json.dumps(event))
            self._record(event, rule, arn, attempt, "delivered")
        else:
            self._target_failed(
                rule, target, event, attempt, "UnsupportedTarget", f"the emulator cannot deliver to {arn}"
            )

    def _target_failed(
        self,
        rule: str,
        target: dict[str, Any],
        event: dict[str, Any],
        attempt: int,
        code: str,
        message: str,
        *,
        retry: bool = True,
    ) -> None:
        retries = min(int(target.get("RetryPolicy", {}).get("MaximumRetryAttempts", 185)), MAX_TARGET_RETRIES)
        if retry and attempt < retries:
            self._record(event, rule, target["Arn"], attempt, "error", error=f"{code}: {message}")
            self._schedule(
                RETRY_DELAY_SECONDS,
                lambda: self._deliver(rule, target, event, attempt + 1),
                event=event,
                rule=rule,
                target=str(target["Arn"]),
            )
            return
        dead_letter = target.get("DeadLetterConfig", {}).get("Arn")
        if dead_letter:
            self.send_sqs(
                dead_letter,
                json.dumps(event),
                {"RULE_ARN": rule, "TARGET_ARN": target["Arn"], "ERROR_CODE": code, "ERROR_MESSAGE": message},
            )
        outcome = "dead-lettered" if dead_letter else "dropped"
        self._record(event, rule, target["Arn"], attempt, outcome, error=f"{code}: {message}")

    def invoke_async(self, function: Any, payload: Any, request_id: str) -> None:
        """Lambda `Invoke` with InvocationType Event: queued like a rule's delivery to a Lambda target, so the
        function's retry count and dead-letter queue apply as they do to EventBridge's asynchronous invocations."""
        invoke = functools.partial(self._invoke, INVOKE_EVENT, function, payload, 0, request_id)
        self._schedule(0.0, invoke, event=_object(payload), rule=INVOKE_EVENT, target=function.name)

    def _invoke(self, rule: str, function: Any, event: Any, attempt: int, request_id: str | None = None) -> None:
        # One request id for every attempt of an asynchronous invocation, as Lambda's retries keep it.
        request_id = request_id or str(uuid.uuid4())
        result = self.functions.invoke(function, event, request_id)
        error = None if result.ok else f"{result.error_type}: {result.error_message}"
        outcome = "success" if result.ok else "error"
        self._record(event, rule, function.name, attempt, outcome, result.duration_ms, error, result.result)
        if result.ok:
            return
        if attempt < function.retry_attempts:
            self._schedule(
                RETRY_DELAY_SECONDS,
                lambda: self._invoke(rule, function, event, attempt + 1, request_id),
                event=_object(event),
                rule=rule,
                target=function.name,
            )
            return
        if function.dead_letter_arn:
            self.send_sqs(
                function.dead_letter_arn,
                json.dumps(event),
                {"RequestID": request_id, "ErrorCode": "200", "ErrorMessage": error or ""},
            )
            self._record(event, rule, function.name, attempt, "dead-lettered", error=error)

    def _record(
        self,
        event: Any,
        rule: str,
        target: str,
        attempt: int,
        outcome: str,
        duration_ms: float = 0.0,
        error: str | None = None,
        result: Any = None,
    ) -> None:
        fields = _object(event)  # an Invoke payload can be any JSON value
        self._complete(Invocation(
            _text(fields.get("id")), _text(fields.get("detail-type")), describe(event), rule, target, attempt, outcome,
            duration_ms, error, result,
        ))  # fmt: skip

    def _failed(
        self, event: dict[str, Any] | None, rule: str, target: str, error: Exception, doing: str = "routing"
    ) -> None:
        """Log and record what failed in the emulator itself while it worked on `event` (in the drain's result, and
        on the event's latest entry in the event log); the routing goes on."""
        event = event if isinstance(event, dict) else {}
        message = f"{doing} failed in the emulator: {type(error).__name__}: {error}"
        # A forwarded event is the same object on every bus it reaches: its latest entry is where it was last.
        logged = next((entry for entry in reversed(self.events) if entry.event is event), None)
        if logged is not None:
            logged.errors.append(message)
        logger.error(
            "%s (event %s, rule %s, target %s)",
            message,
            _text(event.get("id")) or "-",
            rule or "-",
            target or "-",
            exc_info=error,
        )
        self._record(event, rule, target, 0, "emulator-error", error=message)

    def record_invoke(self, request_id: str, function: Any, payload: Any, result: Any) -> None:
        """A synchronous Invoke, for the next drain: it ran outside the router, but it ran."""
        error = None if result.ok else f"{result.error_type}: {result.error_message}"
        self._complete(Invocation(
            request_id, "", describe(payload) or f"lambda:Invoke {function.name}", INVOKE_REQUEST_RESPONSE,
            function.name, 0,
            "success" if result.ok else "error", result.duration_ms, error, result.result,
        ))  # fmt: skip

    def _complete(self, invocation: Invocation) -> None:
        """What ran, for the next drain to report."""
        with self._condition:
            self._completed.append(invocation)

    def event_log(self) -> list[dict[str, Any]]:
        return [asdict(entry) for entry in self.events]


# A description names what an event is about; a hostile event's values are cut short in it.
DESCRIBED_VALUE_MAX = 256
DESCRIBED_SUBJECT_MAX = 1024


def describe(event: Any) -> str:
    """One line saying what an event is about, e.g. 'CreateImage ami-1 by arn:...:assumed-role/Role/me'.

    Total over any JSON: the router describes every event it records, so a field of the wrong type (a list where
    CloudTrail writes an object, a number where it writes a string, a null) reads as missing, never as an error.
    """
    if not isinstance(event, dict):
        return ""
    detail = _object(event.get("detail"))
    if "eventName" in detail:
        request = _object(detail.get("requestParameters"))
        response = _object(detail.get("responseElements"))
        subject = _text(response.get("imageId")) or _text(request.get("imageId"))
        if not subject:
            items = _object(request.get("resourcesSet")).get("items")
            resources = items if isinstance(items, list) else []
            subject = ",".join(filter(None, (_text(_object(item).get("resourceId")) for item in resources)))
        error_code = _text(detail.get("errorCode"))
        failed = f" failed ({error_code})" if error_code else ""
        who = _text(_object(detail.get("userIdentity")).get("arn"))
        return f"{_text(detail.get('eventName'))} {_cut(subject, DESCRIBED_SUBJECT_MAX)}{failed} by {who}".replace(
            "  ", " "
        )
    if "State" in detail:
        return f"{_text(detail.get('ImageId'))} {_text(detail.get('State'))}"
    return _text(event.get("detail-type"))


def _object(value: Any) -> dict[str, Any]:
    """`value` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str:
    """A JSON value as a short string: a string as it is (cut short), null as nothing, a number or boolean as JSON,
    an array or object as its kind only (it may be nested as deep as PutEvents allows)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return _cut(value)
    if isinstance(value, list):
        return "[…]"
    if isinstance(value, dict):
        return "{…}"
    return _cut(json.dumps(value))


def _cut(text: str, limit: int = DESCRIBED_VALUE_MAX) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
