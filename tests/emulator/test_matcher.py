"""EventBridge pattern semantics the stack relies on, through the emulator's matcher."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.matcher import pattern_matches
from stacks import event_patterns

EVENT = {
    "source": "aws.ec2",
    "detail-type": "AWS API Call via CloudTrail",
    "detail": {
        "eventName": "CreateTags",
        "requestParameters": {"resourcesSet": {"items": [{"resourceId": "vol-1"}, {"resourceId": "ami-1"}]}},
        "userIdentity": {"type": "AssumedRole"},
    },
}


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ({"detail": {"requestParameters": {"resourcesSet": {"items": {"resourceId": [{"prefix": "ami-"}]}}}}}, True),
        ({"detail": {"requestParameters": {"resourcesSet": {"items": {"resourceId": [{"prefix": "snap-"}]}}}}}, False),
        ({"detail": {"errorCode": [{"exists": False}]}}, True),
        ({"detail": {"eventName": [{"exists": True}]}}, True),
        ({"detail": {"eventName": [{"anything-but": ["CreateTags"]}]}}, False),
        ({"detail": {"eventName": [{"anything-but": ["DeleteTags"]}]}}, True),
        ({"detail": {"eventName": [{"anything-but": {"prefix": "Delete"}}]}}, True),
        ({"source": ["aws.ec2"], "detail-type": ["EC2 AMI State Change"]}, False),
    ],
)
def test_patterns(pattern, expected):
    assert pattern_matches(pattern, EVENT) is expected


def test_exists_false_fails_on_a_failed_call():
    failed = {**EVENT, "detail": {**EVENT["detail"], "errorCode": "InvalidAMIID.NotFound"}}

    assert not pattern_matches({"detail": {"errorCode": [{"exists": False}]}}, failed)


# ---- events of any shape -------------------------------------------------------------------------------------------

STACK_PATTERNS = [
    *event_patterns.FORWARDING_PATTERNS.values(),
    *event_patterns.ENFORCE_PATTERNS.values(),
    *event_patterns.CLEANUP_PATTERNS.values(),
    event_patterns.REPLICATE_ON_IMAGE_STATE_CHANGED,
    event_patterns.replicate_on_image_approved("ami-governance:approved"),
]
# Values and keys the stack's patterns look at, so that the search reaches the fields they match on.
LEAVES = st.none() | st.booleans() | st.integers() | st.sampled_from(
    ["ec2.amazonaws.com", "CreateTags", "DeregisterImage", "CreateImage", "ami-12345678", "available",
     "ami-governance:approved"]
)  # fmt: skip
KEYS = st.sampled_from(
    ["eventSource", "eventName", "requestParameters", "resourcesSet", "items", "resourceId", "tagSet", "key",
     "errorCode", "State", "userIdentity"]
)  # fmt: skip
DETAILS = st.recursive(
    LEAVES, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5), max_leaves=30
)


@settings(max_examples=300, deadline=None)
@given(detail=DETAILS, detail_type=st.sampled_from(["AWS API Call via CloudTrail", "EC2 AMI State Change"]))
def test_the_stacks_patterns_match_an_event_of_any_shape_without_error(detail, detail_type):
    event = {**EVENT, "detail-type": detail_type, "detail": detail}

    for pattern in STACK_PATTERNS:
        assert isinstance(pattern_matches(pattern, event), bool)


TAG_CALL = {"eventSource": "ec2.amazonaws.com", "eventName": "CreateTags", "userIdentity": {"type": "IAMUser"}}


def test_a_tag_call_on_an_ami_matches_the_enforce_rule():
    detail = {**TAG_CALL, "requestParameters": {"resourcesSet": {"items": [{"resourceId": "ami-12345678"}]}}}

    assert pattern_matches(event_patterns.ENFORCE_PATTERNS["ImageTagsChanged"], {**EVENT, "detail": detail})


@pytest.mark.parametrize(
    "request_parameters",
    [
        {"resourcesSet": None},
        {"resourcesSet": [{"resourceId": "ami-12345678"}]},
        {"resourcesSet": {"items": ["ami-12345678"]}},
        {"resourcesSet": {"items": [{"resourceId": 5}]}},
        ["resourcesSet", "ami-12345678"],
    ],
)
def test_a_hostile_tag_call_does_not_look_like_one_on_an_ami(request_parameters):
    detail = {**TAG_CALL, "requestParameters": request_parameters}

    assert not pattern_matches(event_patterns.ENFORCE_PATTERNS["ImageTagsChanged"], {**EVENT, "detail": detail})
