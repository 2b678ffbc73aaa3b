"""Malformed and hostile events, drawn by Hypothesis (tests/strategies.py), through every handler on moto: enforce,
cleanup and replicate (every EventBridge event, whether or not a rule would route it to them), copy (SQS records
of copy jobs) and report (the schedule's event, and on-demand invokes).

What holds for every drawn event:
- nothing escapes but the retryable AWS errors the services document (throttling, 5xx, no answer: Lambda retries
  them and then the DLQ keeps the event); on moto, with no fault injected, that is: nothing escapes;
- a rejected event (malformed) is logged with its id in Powertools' JSON log, counted (EMF `MalformedEvents`),
  and nothing is asked of AWS for it but the policy; an event refused or ignored changes nothing in AWS;
- no AWS call fails with an error of the request's making (a `ValidationException`, an
  `InvalidParameterValue`...): a hostile value never reaches AWS.

And a CreateTags naming 1,000 resources (EC2's limit per call) is bounded work: its DescribeImages calls are named
below; one naming 1,001 cannot be a successful call and is refused before any AWS call.

HOSTILE_EXAMPLES (default 10, about a minute) sets the examples per strategy and handler.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from ami_governance.adapters.ec2 import DESCRIBE_BATCH, MAX_RESOURCES_PER_TAG_CALL
from ami_governance.models.policy import load_policy_file
from ami_governance.observability import logger as powertools_logger
from ami_governance.services import wiring
from tests import strategies as hostile
from tests.conftest import POLICY_FILE
from tests.integration.conftest import HOME, TABLE, Estate
from tests.support import (
    MOTO_ACCOUNT,
    POLICY_PARAMETER,
    FakeLambdaContext,
    create_home_resources,
    emitted_metric_names,
    empty_the_idempotency_store,
    recording_api_calls,
    recording_api_failures,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EXAMPLES = int(os.environ.get("HOSTILE_EXAMPLES", "10"))
P = "ami-governance:"
REPORTS_BUCKET = "ami-governance-reports-123456789012"
# What the services let escape (services/common.py, services/copy.py): AWS failing, not the request.
RETRYABLE_CODES = frozenset({
    "Throttling", "ThrottlingException", "RequestLimitExceeded", "InternalError", "InternalFailure",
    "ServiceUnavailable", "Unavailable", "RequestTimeout", "ProvisionedThroughputExceededException",
})  # fmt: skip
# Errors of the request's making: a hostile value that reached AWS (the "gone" answers, a lost conditional write
# and the like are the services' to handle, and they do).
REQUEST_ERRORS = frozenset({
    "ValidationException", "ValidationError", "InvalidParameterValue", "InvalidParameter",
    "InvalidParameterCombination", "MissingParameter", "InvalidRequest", "SerializationException",
    "InvalidAMIID.Malformed", "InvalidID", "MalformedQueryString", "InvalidArgument", "InvalidInput",
})  # fmt: skip
READ_ONLY = ("Describe", "Get", "List", "Query", "Scan", "BatchGet", "Receive")
HANDLER_NAMES = ("enforce", "cleanup", "replicate")
# Outcomes per handler and strategy, for the summary the module prints at its end (the README's figures).
TRIED: dict[str, dict[str, int]] = {}
Invoke = Callable[[Any], Any]


# ---- what one invocation did ----------------------------------------------------------------------------------


class JsonLogs(logging.Handler):
    """The Lambdas' log lines as Powertools writes them (its JSON formatter), parsed."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(powertools_logger.registered_formatter)
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def logs() -> Iterator[JsonLogs]:
    capture = JsonLogs()
    target = logging.getLogger(powertools_logger.name)
    target.addHandler(capture)
    yield capture
    target.removeHandler(capture)


@dataclass
class Run:
    """One handler invocation: what it returned or raised, its AWS calls, failed calls, log lines and metrics."""

    result: Any = None
    raised: BaseException | None = None
    calls: list[tuple[str, str]] = field(default_factory=list)
    failures: list[tuple[str, str, str]] = field(default_factory=list)
    lines: list[dict[str, Any]] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)

    def writes(self, allowed: tuple[str, ...] = ()) -> list[str]:
        return [f"{svc}:{op}" for svc, op in self.calls if not op.startswith(READ_ONLY) and op not in allowed]

    def logged(self, message: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line.get("message") == message]


def run(invoke: Invoke, event: Any, logs: JsonLogs, capsys: pytest.CaptureFixture[str]) -> Run:
    # Examples share ids (the strategies draw them), and a handled id is answered from its idempotency record.
    empty_the_idempotency_store()
    capsys.readouterr()
    logs.lines.clear()
    outcome = Run()
    with recording_api_calls() as api, recording_api_failures() as failures:
        try:
            outcome.result = invoke(event)
        except Exception as error:  # what escapes is judged by the property, not by pytest
            outcome.raised = error
    outcome.calls, outcome.failures, outcome.lines = api.calls, failures, list(logs.lines)
    outcome.metrics = emitted_metric_names(capsys.readouterr().out)
    return outcome


def assert_no_escape_but_retryable(outcome: Run, example: hostile.Example) -> None:
    error = outcome.raised
    if error is not None:
        retryable = (isinstance(error, BotoCoreError) and not isinstance(error, ParamValidationError)) or (
            isinstance(error, ClientError) and error.response.get("Error", {}).get("Code") in RETRYABLE_CODES
        )
        assert retryable, f"{example!r} raised {error!r}"
    # A request AWS refused as malformed would mean a hostile value reached it.
    assert [f for f in outcome.failures if f[2] in REQUEST_ERRORS] == [], example


def event_id(event: Any) -> Any:
    """The id the log lines carry: the envelope's, if it is a string an envelope can have (observability.py's
    EVENT_ID_CORRELATION_PATH); a huge or nested "id" is left out of the lines rather than copied into each."""
    value = event.get("id") if isinstance(event, dict) else None
    return value if isinstance(value, str) and 0 < len(value) <= 256 else None


def assert_event_outcome_holds(outcome: Run, example: hostile.Example) -> str:
    """The properties of an EventBridge handler's outcome; returns its status."""
    assert_no_escape_but_retryable(outcome, example)
    if outcome.raised is not None:
        return "raised"
    status = outcome.result["status"]
    assert status in ("handled", "ignored", "rejected"), example
    if status == "rejected":
        # Logged with the event's id (Powertools' correlation id, from the envelope's `id`), counted, and nothing
        # asked of AWS but the policy.
        [line] = outcome.logged("Malformed event dropped") or outcome.logged("Malformed image id in event")
        assert line["level"] == "ERROR"
        expected = event_id(example.event)
        assert line.get("correlation_id") == expected or line.get("event_id") == expected, example
        assert "MalformedEvents" in outcome.metrics, example
        assert [op for _, op in outcome.calls if op != "GetParameter"] == [], example
    if status == "ignored":
        # Nothing changed in EC2 and no notice; the clean-up may keep its own bookkeeping (a claim it released).
        assert [w for w in outcome.writes() if not w.startswith("dynamodb:")] == [], example
        reason = outcome.result["reason"] or ""
        if reason.startswith("event from account") or reason.endswith("is not governed by the policy"):
            [line] = outcome.logged("Event refused")
            assert line["event_id"] == outcome.result["event_id"], example
            assert {"ForeignAccountEvents", "UngovernedRegionEvents"} & set(outcome.metrics), example
    return status


# ---- the handlers on moto ----------------------------------------------------------------------------------------


@dataclass
class World:
    estate: Estate
    handlers: dict[str, Invoke]
    image_ids: list[str]
    environment: dict[str, str]


def lambda_handler(module: str, function_name: str) -> Invoke:
    import importlib

    handler = importlib.import_module(f"handlers.{module}").handler
    arn = f"arn:aws:lambda:{HOME}:{MOTO_ACCOUNT}:function:{function_name}"
    context = FakeLambdaContext(function_name=function_name, invoked_function_arn=arn)
    return lambda event: handler(event, context)


@pytest.fixture(scope="module")
def shared_world() -> Iterator[World]:
    """One moto estate for the module: what a handled event changed stays for the next, as it would in AWS (and
    the estate's set-up, a few seconds, is paid once)."""
    with mock_aws():
        wiring.reset()
        resources = create_home_resources(load_policy_file(POLICY_FILE).model_dump_json(), POLICY_PARAMETER, TABLE)
        sqs = boto3.client("sqs", region_name=HOME)
        boto3.client("s3", region_name=HOME).create_bucket(Bucket=REPORTS_BUCKET)
        environment = {
            "NOTIFICATION_TOPIC_ARN": resources.topic_arn,
            "COPY_QUEUE_URL": sqs.create_queue(QueueName="ami-governance-copy-jobs")["QueueUrl"],
            "REPORTS_BUCKET_NAME": REPORTS_BUCKET,
        }
        saved = {name: os.environ.get(name) for name in environment}
        os.environ.update(environment)
        estate = Estate(topic_arn=resources.topic_arn, inbox_url=resources.inbox_url)
        # Two AMIs of this account, so that valid-shaped events reach the services' judgement, not only "gone".
        image_ids = [estate.create_image("payments-api-al2023-1.4.0")[0], estate.create_image("scratch")[0]]
        handlers = {
            name: lambda_handler(name, f"ami-governance-{name}")
            for name in ("enforce", "cleanup", "replicate", "copy", "report")
        }
        yield World(estate, handlers, image_ids, environment)
        wiring.reset()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def world(shared_world: World, monkeypatch: pytest.MonkeyPatch) -> World:
    for name, value in shared_world.environment.items():
        monkeypatch.setenv(name, value)
    wiring.reset()
    return shared_world


PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    # One moto estate for all the examples of a test: what a handled event changed stays, as it would in AWS.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


def event_strategies(image_ids: list[str]) -> dict[str, st.SearchStrategy[hostile.Example]]:
    return {
        "odd CloudTrail": hostile.odd_cloudtrail_events(image_ids=image_ids, tag_keys=[f"{P}approved", "Owner"]),
        "odd state change": hostile.odd_state_change_events(image_ids=image_ids),
        "broken CloudTrail": hostile.broken_cloudtrail_events(),
        "broken state change": hostile.broken_state_change_events(),
    }


@pytest.mark.parametrize("strategy", ["odd CloudTrail", "odd state change", "broken CloudTrail", "broken state change"])
@pytest.mark.parametrize("name", HANDLER_NAMES)
def test_a_hostile_event_never_escapes_and_a_rejected_one_is_logged_counted_and_changes_nothing(
    world, logs, capsys, name, strategy
):
    drawn = event_strategies(world.image_ids)[strategy]
    statuses: Counter[str] = Counter()

    @PROPERTY
    @given(example=drawn)
    def holds(example: hostile.Example) -> None:
        outcome = run(world.handlers[name], example.event, logs, capsys)
        statuses[assert_event_outcome_holds(outcome, example)] += 1

    holds()
    assert sum(statuses.values()) >= EXAMPLES
    assert "raised" not in statuses
    TRIED[f"{name}: {strategy}"] = dict(statuses)


@pytest.mark.parametrize("name", HANDLER_NAMES)
def test_an_event_missing_or_garbling_a_field_its_model_needs_is_always_rejected(world, logs, capsys, name):
    drawn = hostile.unreadable_cloudtrail_events() | hostile.unreadable_state_change_events()
    statuses: Counter[str] = Counter()

    @PROPERTY
    @given(example=drawn)
    def rejected(example: hostile.Example) -> None:
        outcome = run(world.handlers[name], example.event, logs, capsys)
        status = assert_event_outcome_holds(outcome, example)
        statuses[status] += 1
        # `detail-type` garbled is an unsupported event (ignored); anything else the model needs is malformed.
        assert status == "rejected" or (status == "ignored" and "detail-type" in outcome.result["reason"]), example

    rejected()
    TRIED[f"{name}: unreadable"] = dict(statuses)


# ---- copy jobs -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["odd", "broken"])
def test_a_hostile_copy_job_never_escapes_and_a_malformed_one_is_kept_for_the_dlq_and_counted(
    world, logs, capsys, strategy
):
    drawn = hostile.odd_copy_job_records(world.image_ids) if strategy == "odd" else hostile.broken_copy_job_records()
    statuses: Counter[str] = Counter()

    @PROPERTY
    @given(example=drawn)
    def holds(example: hostile.Example) -> None:
        outcome = run(world.handlers["copy"], example.event, logs, capsys)
        assert_no_escape_but_retryable(outcome, example)
        assert outcome.raised is None, example
        failed = [item["itemIdentifier"] for item in outcome.result["batchItemFailures"]]
        malformed = [*outcome.logged("Malformed SQS event"), *outcome.logged("Malformed SQS record"),
                     *outcome.logged("Malformed copy job")]  # fmt: skip
        if malformed:
            # Logged with the message's id, counted, and kept on the queue (its redrive sends it to the DLQ).
            assert "MalformedCopyJobs" in outcome.metrics, example
            for line in malformed:
                assert not line.get("message_id") or str(line["message_id"]) in failed, example
            # Nothing asked of EC2 or DynamoDB; SQS only to hide the message for the longest backoff.
            assert outcome.writes(allowed=("ChangeMessageVisibility",)) == [], example
            assert {svc for svc, _ in outcome.calls} <= {"sqs", "ssm"}, example
            statuses["rejected"] += 1
        else:
            # A job with a valid shape but odd values names no replication entry: skipped, nothing written.
            assert outcome.writes() == [], example
            statuses["skipped"] += 1

    holds()
    assert sum(statuses.values()) >= EXAMPLES
    TRIED[f"copy: {strategy}"] = dict(statuses)


def test_a_malformed_copy_record_is_logged_with_its_message_id(world, logs, capsys):
    record = hostile.sqs_record(hostile.copy_job(), message_id="m-without-receipt")
    del record["receiptHandle"]

    outcome = run(world.handlers["copy"], {"Records": [record]}, logs, capsys)

    [line] = outcome.logged("Malformed SQS record")
    assert line["message_id"] == "m-without-receipt"
    assert outcome.result == {"batchItemFailures": [{"itemIdentifier": "m-without-receipt"}]}
    assert outcome.metrics == ["MalformedCopyJobs"]


# ---- the report --------------------------------------------------------------------------------------------------


@pytest.fixture
def report(world: World) -> Invoke:
    return world.handlers["report"]


def test_a_hostile_scheduled_event_runs_the_report_or_is_refused_before_any_aws_call(report, logs, capsys):
    drawn = hostile.odd_scheduled_events() | hostile.broken_scheduled_events()
    seen = {"ran": 0, "refused": 0}

    # Each run scans both governed regions on moto: fewer examples than the event handlers get.
    @settings(PROPERTY, max_examples=max(5, EXAMPLES // 4))
    @given(example=drawn)
    def holds(example: hostile.Example) -> None:
        outcome = run(report, example.event, logs, capsys)
        regions = example.event.get("regions") if isinstance(example.event, dict) else None
        if isinstance(outcome.raised, ValueError):
            # The on-demand invoke's documented refusal (handlers/report.py): regions that are not a list of
            # governed region names. Raised before any scan, so nothing is read or written.
            assert regions is not None, example
            assert [op for _, op in outcome.calls if op != "GetParameter"] == [], example
            seen["refused"] += 1
            return
        assert_no_escape_but_retryable(outcome, example)
        assert outcome.raised is None, example
        # The schedule's event is read for `regions` only: whatever else is in it, the report runs and publishes.
        assert outcome.result["complete"] is True, example
        # (the inventory's records of what the scan read are the report's own bookkeeping)
        assert {"s3:PutObject", "sns:Publish", "dynamodb:UpdateItem"} >= set(outcome.writes()), example
        seen["ran"] += 1

    holds()
    assert seen["ran"] > 0
    TRIED["report: odd and broken"] = seen


# ---- a tag call naming 1,000 resources ----------------------------------------------------------------------------


def test_create_tags_naming_1000_amis_is_judged_in_bounded_calls(world, logs, capsys):
    # Given a CreateTags naming EC2's maximum of 1,000 resources: this account's two AMIs and 998 AMI ids of the
    # right shape that name no AMI
    mine = [world.estate.create_image(f"bulk-{index}")[0] for index in range(2)]
    unknown = [f"ami-{index:017x}" for index in range(1, MAX_RESOURCES_PER_TAG_CALL - 1)]
    event = hostile.create_tags_naming([*mine, *unknown], {"Owner": "payments-team"})

    outcome = run(world.handlers["enforce"], event, logs, capsys)

    # Then both AMIs are judged and the rest are gone, in at most two DescribeImages per 100 ids: EC2 fails a
    # request naming an unknown id, and the batch is asked again by filter (not once per id)
    assert outcome.raised is None
    results = [(image["image_id"], image["result"]) for image in outcome.result["images"]]
    assert results[2:] == [(image_id, "gone") for image_id in unknown]
    assert [result for _, result in results[:2]] == ["evaluated", "evaluated"]
    describes = outcome.calls.count(("ec2", "DescribeImages"))
    assert describes <= 2 * math.ceil(MAX_RESOURCES_PER_TAG_CALL / DESCRIBE_BATCH) == 20
    # and writes only for the two AMIs: their verdict tags and a notice each
    assert sorted(outcome.writes()) == ["ec2:CreateTags", "ec2:CreateTags", "sns:Publish", "sns:Publish"]


def test_create_tags_naming_1001_resources_is_refused_before_any_aws_call(world, logs, capsys):
    # EC2 takes at most 1,000 resources per CreateTags: a successful call's record cannot name more.
    resources = [*world.image_ids, *(f"ami-{i:017x}" for i in range(1, MAX_RESOURCES_PER_TAG_CALL))]
    event = hostile.create_tags_naming(resources, {"Owner": "payments-team"})

    for name in HANDLER_NAMES:
        outcome = run(world.handlers[name], event, logs, capsys)

        assert outcome.raised is None
        assert outcome.result["status"] == "rejected", name
        [line] = outcome.logged("Malformed event dropped")
        assert "at most 1000 items" in line["problems"]
        assert [op for _, op in outcome.calls if op != "GetParameter"] == []


def test_create_tags_naming_1000_other_resources_makes_no_aws_call(world, logs, capsys):
    # Given 1,000 resources of which none is an AMI (volumes, snapshots, instances: one call may tag them all)
    resources = [f"{prefix}-{index:017x}" for index in range(334) for prefix in ("vol", "snap", "i")][:1000]
    event = hostile.create_tags_naming(resources, {"Owner": "payments-team"})

    outcome = run(world.handlers["enforce"], event, logs, capsys)

    assert outcome.result["status"] == "ignored"
    assert outcome.result["reason"] == "no AMI among the tagged resources"
    assert [op for _, op in outcome.calls if op != "GetParameter"] == []


@pytest.fixture(scope="module", autouse=True)
def _summary() -> Iterator[None]:
    yield
    if TRIED:
        total = sum(sum(counts.values()) for counts in TRIED.values())
        lines = [f"  {where}: {counts}" for where, counts in sorted(TRIED.items())]
        print(f"\nhostile events tried: {total}\n" + "\n".join(lines))
