"""EventBridge pattern semantics the stack relies on, through the emulator's matcher."""

from __future__ import annotations

import pytest

from emulator.matcher import pattern_matches

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
