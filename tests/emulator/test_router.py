"""The emulator's router on events of any shape: `describe()` is total over JSON, and nothing one event does stops
the routing of the next (tests/e2e/test_hostile_events_e2e.py drives the same shapes through PutEvents)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from emulator.functions import FunctionSpec, InvocationResult
from emulator.router import DESCRIBED_SUBJECT_MAX, DESCRIBED_VALUE_MAX, Router, describe

ACCOUNT = "123456789012"
REGION = "us-east-1"
CLOUDTRAIL = "AWS API Call via CloudTrail"
DEREGISTER = {"eventSource": "ec2.amazonaws.com", "eventName": "DeregisterImage"}
CREATE_TAGS = {"eventSource": "ec2.amazonaws.com", "eventName": "CreateTags"}

# The shapes black-box probes sent through PutEvents: each stopped the router's worker for good.
HOSTILE_DETAILS = {
    "resourcesSet null": {**DEREGISTER, "requestParameters": {"resourcesSet": None}},
    "requestParameters a list": {**DEREGISTER, "requestParameters": ["imageId", "ami-0fedcba9876543210"]},
    "requestParameters a string": {**DEREGISTER, "requestParameters": "imageId=ami-0fedcba9876543210"},
    "responseElements a list": {**DEREGISTER, "responseElements": ["ami-0fedcba9876543210"]},
    "userIdentity a list": {**DEREGISTER, "userIdentity": ["arn:aws:iam::123456789012:user/x"]},
    "userIdentity a string": {**DEREGISTER, "userIdentity": "root"},
    "resourcesSet a list": {**CREATE_TAGS, "requestParameters": {"resourcesSet": [{"resourceId": "ami-12345678"}]}},
    "items a string": {**CREATE_TAGS, "requestParameters": {"resourcesSet": {"items": "ami-12345678"}}},
    "items of strings": {**CREATE_TAGS, "requestParameters": {"resourcesSet": {"items": ["ami-12345678", 5]}}},
    "resourceId a number": {**CREATE_TAGS, "requestParameters": {"resourcesSet": {"items": [{"resourceId": 5}]}}},
    "resourceId an object": {**CREATE_TAGS, "requestParameters": {"resourcesSet": {"items": [{"resourceId": {}}]}}},
    "eventName a number": {**DEREGISTER, "eventName": 5},
    "errorCode a list": {**DEREGISTER, "errorCode": ["InvalidAMIID.NotFound"]},
    "imageId 100 KB": {**DEREGISTER, "requestParameters": {"imageId": "ami-" + "0" * 100_000}},
    "State a list": {"State": ["available"], "ImageId": 5},
    "detail a number": 5,
    "detail a string": "DeregisterImage",
    "detail a list": [DEREGISTER],
    "detail null": None,
}


def cloudtrail_event(detail: Any, event_id: str = "e-1", detail_type: str = CLOUDTRAIL) -> dict[str, Any]:
    return {
        "version": "0", "id": event_id, "detail-type": detail_type, "source": "aws.ec2", "account": ACCOUNT,
        "time": "2026-01-01T00:00:00Z", "region": REGION, "resources": [], "detail": detail,
    }  # fmt: skip


# ---- describe() ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("detail", HOSTILE_DETAILS.values(), ids=HOSTILE_DETAILS.keys())
def test_describe_reads_a_field_of_the_wrong_type_as_missing(detail):
    description = describe(cloudtrail_event(detail))

    assert isinstance(description, str)
    assert len(description) <= DESCRIBED_SUBJECT_MAX + 3 * DESCRIBED_VALUE_MAX + 20


def test_describe_names_a_hostile_call_without_what_it_could_not_read():
    assert describe(cloudtrail_event(HOSTILE_DETAILS["requestParameters a list"])) == "DeregisterImage by "
    assert describe(cloudtrail_event(HOSTILE_DETAILS["eventName a number"])) == "5 by "
    assert describe(cloudtrail_event(HOSTILE_DETAILS["items of strings"])) == "CreateTags by "
    assert describe(cloudtrail_event(HOSTILE_DETAILS["detail a number"])) == CLOUDTRAIL


def test_describe_cuts_an_oversized_id_short():
    description = describe(cloudtrail_event(HOSTILE_DETAILS["imageId 100 KB"]))

    assert description.startswith("DeregisterImage ami-0000")
    assert len(description) < 300


@pytest.mark.parametrize(
    ("detail", "expected"),
    [
        (
            {**DEREGISTER, "requestParameters": {"imageId": "ami-0fedcba9876543210"},
             "userIdentity": {"arn": "arn:aws:sts::123456789012:assumed-role/PlatformEngineer/jdoe"}},
            "DeregisterImage ami-0fedcba9876543210 by arn:aws:sts::123456789012:assumed-role/PlatformEngineer/jdoe",
        ),
        (
            {**CREATE_TAGS, "errorCode": "InvalidID", "requestParameters": {
                "resourcesSet": {"items": [{"resourceId": "vol-1"}, {"resourceId": "ami-12345678"}]}}},
            "CreateTags vol-1,ami-12345678 failed (InvalidID) by ",
        ),
        ({"ImageId": "ami-12345678", "State": "available"}, "ami-12345678 available"),
    ],
)  # fmt: skip
def test_describe_still_says_what_a_real_event_is_about(detail, expected):
    assert describe(cloudtrail_event(detail)) == expected


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=25,
)
# Objects built from the keys describe() reads, so that the search reaches every branch.
KEYS = st.sampled_from(
    ["eventName", "requestParameters", "responseElements", "imageId", "resourcesSet", "items", "resourceId",
     "userIdentity", "arn", "errorCode", "State", "ImageId"]
)  # fmt: skip
CLOUDTRAIL_LIKE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=30,
)


@settings(max_examples=500, deadline=None)
@given(detail=CLOUDTRAIL_LIKE | JSON)
def test_describe_is_total_over_any_detail(detail):
    assert isinstance(describe(cloudtrail_event(detail)), str)


@settings(max_examples=200, deadline=None)
@given(event=JSON)
def test_describe_is_total_over_any_event(event):
    assert isinstance(describe(event), str)


def test_describe_does_not_walk_a_deeply_nested_value():
    nested: Any = "ami-12345678"
    for _ in range(5000):
        nested = [nested]

    assert describe(cloudtrail_event({**DEREGISTER, "requestParameters": {"imageId": nested}})) == (
        "DeregisterImage […] by "
    )


# ---- the worker goes on --------------------------------------------------------------------------------------------


class FlakyFunctions:
    """A function registry whose one function fails in the emulator (not in the function) for chosen events."""

    def __init__(self, failing_ids: set[str]) -> None:
        self.spec = FunctionSpec(
            "probe", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:probe", REGION, "h.handler", Path("."), {}, ""
        )
        self.failing_ids = failing_ids
        self.invoked: list[str] = []

    def find(self, arn: str) -> FunctionSpec | None:
        return self.spec if arn == self.spec.arn else None

    def invoke(
        self, spec: FunctionSpec, event: dict[str, Any], request_id: str | None = None, tail_log: bool = False
    ) -> InvocationResult:
        if event["id"] in self.failing_ids:
            raise BrokenPipeError("the worker's pipe broke")
        self.invoked.append(event["id"])
        return InvocationResult(True, 1.0, result={"status": "handled"})


@pytest.fixture
def routed() -> Iterator[tuple[Router, FlakyFunctions]]:
    with mock_aws():
        functions = FlakyFunctions({"e-broken"})
        events = boto3.client("events", region_name=REGION)
        events.put_rule(Name="to-probe", EventPattern=json.dumps({"source": ["aws.ec2"]}))
        events.put_targets(Rule="to-probe", Targets=[{"Id": "probe", "Arn": functions.spec.arn}])
        sent: list[str] = []
        router = Router(ACCOUNT, functions, lambda *args: sent.append(args[0]), lambda *_: None)  # type: ignore[arg-type]
        yield router, functions
        router.stop()


@pytest.mark.parametrize("detail", HOSTILE_DETAILS.values(), ids=HOSTILE_DETAILS.keys())
def test_a_hostile_event_is_logged_delivered_and_the_next_one_is_routed(routed, detail):
    router, functions = routed

    router.put(REGION, "default", cloudtrail_event(detail, "e-hostile"))
    router.put(REGION, "default", cloudtrail_event({"ImageId": "ami-12345678", "State": "available"}, "e-next"))
    ran = router.drain(timeout=10)

    assert functions.invoked == ["e-hostile", "e-next"]
    assert [(i.event_id, i.outcome) for i in ran] == [("e-hostile", "success"), ("e-next", "success")]
    assert [(e["event_id"], e["rules"], e["errors"]) for e in router.event_log()] == [
        ("e-hostile", ["to-probe"], []),
        ("e-next", ["to-probe"], []),
    ]


def test_a_failure_in_the_emulator_is_recorded_with_the_event_and_the_worker_goes_on(routed, caplog):
    router, functions = routed

    router.put(REGION, "default", cloudtrail_event(HOSTILE_DETAILS["resourcesSet null"], "e-broken"))
    router.put(REGION, "default", cloudtrail_event({"ImageId": "ami-12345678", "State": "available"}, "e-next"))
    ran = router.drain(timeout=10)

    [failed] = [i for i in ran if i.event_id == "e-broken"]
    assert failed.outcome == "emulator-error"
    assert failed.target == "probe"
    assert failed.rule == "to-probe"
    assert failed.error == "routing failed in the emulator: BrokenPipeError: the worker's pipe broke"
    assert "e-broken" in caplog.text
    assert [(e["event_id"], e["errors"]) for e in router.event_log()] == [
        ("e-broken", ["routing failed in the emulator: BrokenPipeError: the worker's pipe broke"]),
        ("e-next", []),
    ]
    assert functions.invoked == ["e-next"]
    assert router.drain(timeout=1) == []


def test_a_rule_that_cannot_be_matched_is_recorded_on_the_event_and_the_other_rules_still_match(routed, monkeypatch):
    router, functions = routed
    boto3.client("events", region_name=REGION).put_rule(
        Name="a-broken-rule", EventPattern=json.dumps({"source": ["aws.ec2"], "account": [ACCOUNT]})
    )

    def pattern_matches(pattern: Any, event: dict[str, Any]) -> bool:
        parsed = json.loads(pattern) if isinstance(pattern, str) else pattern
        if "account" in parsed:  # the broken rule's pattern
            raise RecursionError("maximum recursion depth exceeded")
        return True

    monkeypatch.setattr("emulator.router.pattern_matches", pattern_matches)
    router.put(REGION, "default", cloudtrail_event({}, "e-1"))
    ran = router.drain(timeout=10)

    [logged] = router.event_log()
    assert logged["errors"] == ["matching failed in the emulator: RecursionError: maximum recursion depth exceeded"]
    assert logged["rules"] == ["to-probe"]
    assert sorted((i.rule, i.outcome) for i in ran) == [("a-broken-rule", "emulator-error"), ("to-probe", "success")]
    assert functions.invoked == ["e-1"]
