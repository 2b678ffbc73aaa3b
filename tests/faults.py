"""Fault injection for the integration tests, and delivery the way AWS delivers events to the Lambdas.

`injecting_faults(rate, seed, kinds=...)`: a share of the Lambda code's AWS calls fail (throttling, 5xx, a read
timeout before the request is sent, or the response lost after AWS applied the call), through botocore's event
hooks: the injector is `emulator/fault_injection.py`'s, the one the emulator's workers use. Only the Lambda code's
calls are faulted: the first frame outside botocore and boto3 must be under `lambdas/` or in Powertools (as
`tests/iam/api_calls.py` attributes calls), so the test's own set-up and assertions never fail.

`AsyncDelivery`: EventBridge's rule target with Lambda's asynchronous invocation: an invocation that raises is
retried `LAMBDA_ASYNC_RETRY_ATTEMPTS` times, then the event goes to the function's dead-letter list.
`CopyQueueDelivery`: the copy queue's event source mapping: batches with ReportBatchItemFailures, a failed job
received again until `COPY_QUEUE_MAX_RECEIVES`, then moved to the queue's dead-letter list.
"""

from __future__ import annotations

import datetime as datetime_module
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from types import FrameType
from typing import Any

import boto3

from emulator.fault_injection import ALL_KINDS, FaultInjector, FaultKind, FaultSpec

REPO_ROOT = Path(__file__).resolve().parents[1]
# stacks/constructs/governed_function.py: every function's EventInvokeConfig has MaximumRetryAttempts 2 (the rule
# target's own retry policy, stacks/constructs/routed_rule.py, is for delivery failures only, not function errors).
LAMBDA_ASYNC_RETRY_ATTEMPTS = 2
# stacks/home_stack.py COPY_QUEUE_MAX_RECEIVES: the copy queue's redrive policy (stacks/constructs/job_queue.py).
COPY_QUEUE_MAX_RECEIVES = 20

__all__ = ["ALL_KINDS", "AsyncDelivery", "CopyQueueDelivery", "FaultInjector", "FaultKind", "injecting_faults"]


def _directory_of(module: Any) -> str:
    return os.path.dirname(os.path.realpath(module.__file__)) + os.sep


class _LambdaCaller:
    """Whether the AWS call being made comes from the Lambda code (see the module docstring)."""

    def __init__(self) -> None:
        import aws_lambda_powertools
        import botocore

        import emulator.fault_injection

        self._skip = (
            _directory_of(botocore),
            _directory_of(boto3),
            os.path.realpath(emulator.fault_injection.__file__),
            os.path.realpath(__file__),
        )
        self._lambda = (str(REPO_ROOT / "lambdas") + os.sep, _directory_of(aws_lambda_powertools))
        self._real: dict[str, str] = {}

    def __call__(self) -> bool:
        frame: FrameType | None = sys._getframe(1)
        while frame is not None:
            name = frame.f_code.co_filename
            real = self._real.get(name)
            if real is None:
                real = self._real[name] = os.path.realpath(name)
            if not real.startswith(self._skip):
                return real.startswith(self._lambda)
            frame = frame.f_back
        return False


def _forget_clients() -> None:
    """New botocore sessions and clients for the Lambda code, so that they get the injector's handlers."""
    from ami_governance.adapters import clients
    from ami_governance.services import wiring

    wiring.reset()  # the services' clients, the settings and Powertools' SSM provider
    clients._session.cache_clear()


@contextmanager
def injecting_faults(
    rate: float, seed: int = 0, kinds: Sequence[FaultKind | str] = ALL_KINDS
) -> Iterator[FaultInjector]:
    """Inside the block, `rate` of the Lambda code's AWS calls fail with one of `kinds`, deterministically per
    `seed`. The injector counts the calls it could fault and what it injected (`summary()`, `by_kind()`);
    `injector.enabled = False` pauses it (a fault-free redrive of the dead letters, say)."""
    spec = FaultSpec(rate=rate, seed=seed, kinds=tuple(FaultKind(k) for k in kinds))
    injector = FaultInjector(spec, applies=_LambdaCaller())
    with injector.installed():
        _forget_clients()
        try:
            yield injector
        finally:
            injector.enabled = False
            _forget_clients()


# The services whose clocks decide leases and claims (each reads `datetime.now(UTC)` through its module).
CLOCKED_SERVICES = ("cleanup", "copy", "enforce", "lineage", "replicate", "sweep")


# Where Powertools idempotency's store reads the clock (`datetime.datetime.now()`).
IDEMPOTENCY_PERSISTENCE = "aws_lambda_powertools.utilities.idempotency.persistence"


@contextmanager
def clock_advanced(delta: timedelta) -> Iterator[None]:
    """The services' clocks `delta` ahead: what an operator's redrive of a DLQ sees, some time after the alarm
    (the claims of the invocations that failed have expired by then, as they would on AWS)."""
    import importlib

    class Later(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> Later:
            moment = datetime.now(tz) + delta
            return cls.fromtimestamp(moment.timestamp(), tz)

    class LaterDatetimeModule:
        """The `datetime` module as Powertools idempotency's store sees it: `datetime.datetime.now()` later too, so
        that an in-progress record a failed invocation could not delete has expired, as it has on AWS by then."""

        datetime = Later

        def __getattr__(self, name: str) -> Any:
            return getattr(datetime_module, name)

    modules = [importlib.import_module(f"ami_governance.services.{name}") for name in CLOCKED_SERVICES]
    stores = [importlib.import_module(f"{IDEMPOTENCY_PERSISTENCE}.{n}") for n in ("base", "dynamodb", "datarecord")]
    patched = [(module, module.datetime, Later) for module in modules]
    patched += [(module, module.datetime, LaterDatetimeModule()) for module in stores]
    for module, _, later in patched:
        module.datetime = later
    try:
        yield
    finally:
        for module, original, _ in patched:
            module.datetime = original


# ---- delivery -------------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What became of one event: `success` or `dead-lettered`, after how many attempts, with each error seen."""

    function: str
    event_id: str
    outcome: str
    attempts: int
    errors: list[str] = field(default_factory=list)


@dataclass
class AsyncDelivery:
    """Lambda's asynchronous invocation of an EventBridge target: retries, then the dead-letter list."""

    outcomes: list[Outcome] = field(default_factory=list)
    dead_letters: list[tuple[str, Callable[[dict[str, Any]], Any], dict[str, Any]]] = field(default_factory=list)

    def deliver(self, function: str, handler: Callable[[dict[str, Any]], Any], event: dict[str, Any]) -> Outcome:
        errors: list[str] = []
        for attempt in range(1, LAMBDA_ASYNC_RETRY_ATTEMPTS + 2):
            try:
                handler(event)
            except Exception as error:  # any error is a failed invocation, as Lambda sees it
                errors.append(f"{type(error).__name__}: {error}")
                continue
            outcome = Outcome(function, str(event.get("id")), "success", attempt, errors)
            self.outcomes.append(outcome)
            return outcome
        outcome = Outcome(function, str(event.get("id")), "dead-lettered", LAMBDA_ASYNC_RETRY_ATTEMPTS + 1, errors)
        self.outcomes.append(outcome)
        self.dead_letters.append((function, handler, event))
        return outcome

    def redrive(self) -> list[Outcome]:
        """An operator's redrive of the dead letters (in their order), each delivered again."""
        letters, self.dead_letters = self.dead_letters, []
        return [self.deliver(function, handler, event) for function, handler, event in letters]

    def retries(self) -> int:
        return sum(o.attempts - 1 for o in self.outcomes)

    def count(self, outcome: str) -> int:
        return sum(1 for o in self.outcomes if o.outcome == outcome)


@dataclass
class CopyQueueDelivery:
    """The copy queue's event source mapping, over the queue in moto: every message received is handed to the
    copy Lambda in batches; what it reports failed (or everything, if it raised) is received again, with its
    receive count, until `COPY_QUEUE_MAX_RECEIVES`, then it goes to the dead-letter list. The visibility timeouts
    the copy Lambda sets are honoured in order, not in time: a deferred job simply comes in a later batch."""

    queue_url: str
    handler: Callable[[dict[str, Any]], dict[str, Any]]
    region: str = "us-east-1"
    batch_size: int = 10
    received: dict[str, int] = field(default_factory=dict)  # message id -> receive count
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    succeeded: list[str] = field(default_factory=list)
    invocations: int = 0
    raised: int = 0
    sqs: Any = None

    def drain(self, max_rounds: int = 200) -> None:
        sqs = self.sqs or boto3.client("sqs", region_name=self.region)
        arn = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        pending: dict[str, dict[str, Any]] = {}
        for _ in range(max_rounds):
            # New messages (what the replicate Lambda queued since), then the ones to receive again.
            while True:
                messages = sqs.receive_message(
                    QueueUrl=self.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=43200
                ).get("Messages", [])
                if not messages:
                    break
                for message in messages:
                    pending[message["MessageId"]] = {
                        "messageId": message["MessageId"],
                        "receiptHandle": message["ReceiptHandle"],
                        "body": message["Body"],
                        "attributes": {"ApproximateReceiveCount": "0"},
                        "messageAttributes": {},
                        "md5OfBody": message["MD5OfBody"],
                        "eventSource": "aws:sqs",
                        "eventSourceARN": arn,
                        "awsRegion": self.region,
                    }
            if not pending:
                return
            batch = list(pending.values())[: self.batch_size]
            for record in batch:
                count = self.received.get(record["messageId"], 0) + 1
                self.received[record["messageId"]] = count
                record["attributes"] = {"ApproximateReceiveCount": str(count)}
            self.invocations += 1
            try:
                failed = {f["itemIdentifier"] for f in self.handler({"Records": batch})["batchItemFailures"]}
            except Exception:  # the whole batch failed, as the mapping sees a function error
                self.raised += 1
                failed = {r["messageId"] for r in batch}
            for record in batch:
                message_id = record["messageId"]
                if message_id not in failed:
                    sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=record["receiptHandle"])
                    self.succeeded.append(message_id)
                    del pending[message_id]
                elif self.received[message_id] >= COPY_QUEUE_MAX_RECEIVES:
                    sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=record["receiptHandle"])
                    self.dead_letters.append(record)
                    del pending[message_id]
        raise AssertionError(f"the copy queue did not drain in {max_rounds} batches")
