"""The hostile events of tests/strategies.py through the emulator's EventBridge: PutEvents entry handling and the
router (emulator/router.py), in-process on moto.

What holds: PutEvents refuses an entry without Source, DetailType or Detail (`InvalidArgument`) or whose Detail is
not a JSON object (`MalformedDetail`), as EventBridge does, and accepts every other; every accepted event is
routed and logged once, delivered to each matching rule's target, and the worker is still routing afterwards:
no crash, no event lost.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws
from moto.events.models import events_backends

from emulator import server
from emulator.functions import FunctionSpec, InvocationResult
from emulator.router import Router, describe
from tests import strategies as hostile

ACCOUNT = "123456789012"
REGION = "us-east-1"

pytestmark = pytest.mark.slow


class RecordingFunctions:
    """A function registry whose one function records the ids of the events it receives."""

    def __init__(self) -> None:
        self.spec = FunctionSpec(
            "probe", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:probe", REGION, "h.handler", Path("."), {}, ""
        )
        self.invoked: list[str] = []

    def find(self, arn: str) -> FunctionSpec | None:
        return self.spec if arn == self.spec.arn else None

    def invoke(
        self, spec: FunctionSpec, event: dict[str, Any], request_id: str | None = None, tail_log: bool = False
    ) -> InvocationResult:
        self.invoked.append(event["id"])
        return InvocationResult(True, 1.0, result={"status": "handled"})


@pytest.fixture
def routed() -> Iterator[tuple[Router, RecordingFunctions, Any]]:
    """The router behind moto's PutEvents (as the emulator wires it), one rule taking every event to the probe."""
    with mock_aws():
        functions = RecordingFunctions()
        events = boto3.client("events", region_name=REGION)
        # Any source: a rule matches on a prefix of nothing, so every routed event reaches the probe.
        events.put_rule(Name="everything", EventPattern=json.dumps({"source": [{"prefix": ""}]}))
        events.put_targets(Rule="everything", Targets=[{"Id": "probe", "Arn": functions.spec.arn}])
        router = Router(ACCOUNT, functions, lambda *_: None, lambda *_: None)  # type: ignore[arg-type]
        original = type(events_backends[ACCOUNT][REGION]).put_events
        server._route_put_events_through(router)
        try:
            yield router, functions, events
        finally:
            type(events_backends[ACCOUNT][REGION]).put_events = original  # type: ignore[method-assign]
            router.stop()


def as_entry(event: Any) -> dict[str, Any]:
    """A PutEvents entry carrying what it can of the event: its source, detail-type, resources and detail as
    EventBridge's API takes them (Detail a string, whatever it holds)."""
    event = event if isinstance(event, dict) else {"detail": event}
    entry: dict[str, Any] = {}
    for key, name in (("source", "Source"), ("detail-type", "DetailType")):
        if isinstance(event.get(key), str):
            entry[name] = event[key]
    resources = event.get("resources")
    if isinstance(resources, list) and all(isinstance(r, str) for r in resources):
        entry["Resources"] = resources
    if "detail" in event:
        try:
            entry["Detail"] = json.dumps(event["detail"])
        except (ValueError, RecursionError):
            entry["Detail"] = "{"  # not JSON: what a truncated or broken client would send
    return entry


def expected_error(entry: dict[str, Any]) -> str | None:
    for key in ("Source", "DetailType", "Detail"):
        if not entry.get(key):
            return "InvalidArgument"
    try:
        detail = json.loads(entry["Detail"])
    except (ValueError, RecursionError):
        return "MalformedDetail"
    return None if isinstance(detail, dict) else "MalformedDetail"


EVENTS = st.one_of(
    hostile.odd_cloudtrail_events(),
    hostile.odd_state_change_events(),
    hostile.broken_cloudtrail_events(),
    hostile.broken_state_change_events(),
    hostile.odd_scheduled_events(),
    hostile.broken_scheduled_events(),
)
PROPERTY = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


def test_every_hostile_entry_is_refused_with_eventbridges_error_or_routed_once_and_none_is_lost(routed):
    router, functions, events = routed
    tried = {"accepted": 0, "refused": 0}

    @PROPERTY
    @given(batch=st.lists(EVENTS, min_size=1, max_size=4))
    def holds(batch: list[hostile.Example]) -> None:
        functions.invoked.clear()
        router.events.clear()
        # PutEvents' own limits (10 entries, 256 KB) are the API's, checked before the emulator sees the entries:
        # an example over them is cut to fit rather than refused as a whole.
        entries = [entry for entry in map(as_entry, (e.event for e in batch)) if len(json.dumps(entry)) < 200_000]
        if not entries:
            return
        answer = events.put_events(Entries=entries)
        router.drain(timeout=30)

        accepted = []
        for entry, result in zip(entries, answer["Entries"], strict=True):
            error = expected_error(entry)
            if error is None:
                assert "EventId" in result, (entry, result)
                accepted.append(result["EventId"])
            else:
                assert result.get("ErrorCode") == error, (entry, result)
                assert "EventId" not in result
        assert answer["FailedEntryCount"] == len(entries) - len(accepted)
        # Every accepted event logged once and delivered once, in order; the refused ones nowhere.
        assert [logged.event_id for logged in router.events] == accepted
        assert functions.invoked == accepted
        assert all(isinstance(describe(logged.event), str) for logged in router.events)
        assert all(logged.errors == [] for logged in router.events)
        tried["accepted"] += len(accepted)
        tried["refused"] += len(entries) - len(accepted)

    holds()
    assert tried["accepted"] > 0
    assert tried["refused"] > 0
    # And the worker is still routing.
    answer = events.put_events(Entries=[{"Source": "aws.ec2", "DetailType": "probe", "Detail": "{}"}])
    router.drain(timeout=10)
    assert functions.invoked[-1:] == [answer["Entries"][0]["EventId"]]
    print(f"\nPutEvents entries tried: {tried}")
