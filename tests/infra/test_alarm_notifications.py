"""Alarms of forwarder regions reach the notification topic through EventBridge.

An alarm action can only publish to an SNS topic in the alarm's own region, and the topic is in the home region.
So every alarm of the product is named with a common prefix; each forwarder region forwards the `CloudWatch Alarm
State Change` events of those alarms going into ALARM from its default bus to the governance bus, and a rule there
publishes them to the topic (with a topic policy and a key policy that let EventBridge do so).
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk.assertions import Template
from constructs import Construct

from emulator.matcher import pattern_matches
from stacks.event_patterns import ALARM_RAISED, CLEANUP_PATTERNS, ENFORCE_PATTERNS, FORWARDING_PATTERNS
from stacks.resource_names import ALARM_NAME_MAX_LENGTH, ALARM_NAME_PREFIX, HOME_STACK_NAME, alarm_name
from tests.infra.support import APP_FIXTURES, as_list

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

# The pattern both rules must have, spelled out rather than imported: this is what AWS will match.
EXPECTED_ALARM_PATTERN = {
    "source": ["aws.cloudwatch"],
    "detail-type": ["CloudWatch Alarm State Change"],
    "detail": {"alarmName": [{"prefix": "AmiGovernance-"}], "state": {"value": ["ALARM"]}},
}
RETRY_POLICY = {"MaximumRetryAttempts": 4, "MaximumEventAgeInSeconds": 7200}
ACCOUNT = {"Ref": "AWS::AccountId"}

FORWARDER_DLQ_ALARM = "AmiGovernance-AmiGovernanceForwarder-eu-west-1-ForwardingDeadLetters-NotEmpty"
# What CloudWatch puts on the default bus of eu-west-1 when the forwarding DLQ alarm goes into ALARM.
ALARM_STATE_CHANGE_EVENT: dict[str, Any] = {
    "version": "0",
    "id": "2b1c6f0e-9a7d-4c3e-8f5b-1d2e3f4a5b6c",
    "detail-type": "CloudWatch Alarm State Change",
    "source": "aws.cloudwatch",
    "account": "111122223333",
    "time": "2026-03-02T09:15:40Z",
    "region": "eu-west-1",
    "resources": [f"arn:aws:cloudwatch:eu-west-1:111122223333:alarm:{FORWARDER_DLQ_ALARM}"],
    "detail": {
        "alarmName": FORWARDER_DLQ_ALARM,
        "state": {
            "value": "ALARM",
            "reason": (
                "Threshold Crossed: 1 out of the last 1 datapoints [3.0 (02/03/26 09:10:00)] was greater than or "
                "equal to the threshold (1.0) (minimum 1 datapoint for OK -> ALARM transition)."
            ),
            "reasonData": (
                '{"version":"1.0","queryDate":"2026-03-02T09:15:40.218+0000","startDate":"2026-03-02T09:10:00.000'
                '+0000","statistic":"Maximum","period":300,"recentDatapoints":[3.0],"threshold":1.0,'
                '"evaluatedDatapoints":[{"timestamp":"2026-03-02T09:10:00.000+0000","sampleCount":5.0,"value":3.0}]}'
            ),
            "timestamp": "2026-03-02T09:15:40.221+0000",
        },
        "previousState": {
            "value": "OK",
            "reason": (
                "Threshold Crossed: no datapoints were received for 1 period and 1 missing datapoint was treated as "
                "[NonBreaching]."
            ),
            "reasonData": '{"version":"1.0","queryDate":"2026-03-01T20:41:02.117+0000","statistic":"Maximum",'
            '"period":300,"recentDatapoints":[],"threshold":1.0}',
            "timestamp": "2026-03-01T20:41:02.120+0000",
        },
        "configuration": {
            "description": "Messages in the dead-letter queue for forwarding AMI events: events were not processed.",
            "metrics": [
                {
                    "id": "8c4f0a2e-5b7d-4e1f-a3c6-9d8e7f6a5b4c",
                    "metricStat": {
                        "metric": {
                            "namespace": "AWS/SQS",
                            "name": "ApproximateNumberOfMessagesVisible",
                            "dimensions": {
                                "QueueName": "AmiGovernanceForwarder-eu-west-1-ForwardingDeadLettersQueueC6D7302C-"
                                "aBcDeFgHiJkL"
                            },
                        },
                        "period": 300,
                        "stat": "Maximum",
                    },
                    "returnData": True,
                }
            ],
        },
    },
}


def _event(alarm: str = FORWARDER_DLQ_ALARM, state: str = "ALARM", region: str = "eu-west-1") -> dict[str, Any]:
    event = copy.deepcopy(ALARM_STATE_CHANGE_EVENT)
    event["region"] = region
    event["resources"] = [f"arn:aws:cloudwatch:{region}:111122223333:alarm:{alarm}"]
    event["detail"]["alarmName"] = alarm
    event["detail"]["state"]["value"] = state
    return event


def _alarm_rules(template: Template) -> dict[str, dict[str, Any]]:
    """Logical id -> properties of the rules with the alarm pattern."""
    return {
        logical_id: rule["Properties"]
        for logical_id, rule in template.find_resources("AWS::Events::Rule").items()
        if rule["Properties"].get("EventPattern") == EXPECTED_ALARM_PATTERN
    }


def _only(template: Template, resource_type: str) -> tuple[str, dict[str, Any]]:
    [(logical_id, resource)] = template.find_resources(resource_type).items()
    return logical_id, resource["Properties"]


def _statements_for(document: dict[str, Any], service: str) -> list[dict[str, Any]]:
    return [s for s in document["Statement"] if s.get("Principal") == {"Service": service}]


def _queue_lets_rule_send(template: Template, queue_id: str, rule_id: str) -> bool:
    return any(
        s["Effect"] == "Allow"
        and s["Principal"] == {"Service": "events.amazonaws.com"}
        and s["Action"] == "sqs:SendMessage"
        and {"Fn::GetAtt": [rule_id, "Arn"]} in as_list(s["Condition"]["ArnEquals"]["aws:SourceArn"])
        for policy in template.find_resources("AWS::SQS::QueuePolicy").values()
        if {"Ref": queue_id} in policy["Properties"]["Queues"]
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    )


def test_the_alarm_pattern_is_the_expected_one() -> None:
    assert ALARM_RAISED == EXPECTED_ALARM_PATTERN


def test_forwarder_forwards_alarms_going_into_alarm_to_the_home_bus(
    forwarder_template: Template, audit_app: Any
) -> None:
    # Given the forwarder's rule with the alarm pattern
    [(rule_id, rule)] = _alarm_rules(forwarder_template).items()
    [target] = rule["Targets"]

    # Then it is on the default bus (where CloudWatch puts the event) and targets the home bus by its ARN
    assert rule["EventBusName"] == "default"
    home = audit_app.policy.home_region
    assert target["Arn"] == {"Fn::Join": ["", [f"arn:aws:events:{home}:", ACCOUNT, ":event-bus/ami-governance"]]}

    # Through the role of the AMI-event forwarding rules, whose one permission covers this target
    roles = {
        json.dumps(t["RoleArn"])
        for r in forwarder_template.find_resources("AWS::Events::Rule").values()
        for t in r["Properties"]["Targets"]
    }
    assert roles == {json.dumps(target["RoleArn"])}
    role_id = target["RoleArn"]["Fn::GetAtt"][0]
    [policy] = forwarder_template.find_resources("AWS::IAM::Policy").values()
    assert policy["Properties"]["Roles"] == [{"Ref": role_id}]
    assert policy["Properties"]["PolicyDocument"]["Statement"] == [
        {"Action": "events:PutEvents", "Effect": "Allow", "Resource": target["Arn"]}
    ]

    # With the retry policy, and the forwarding DLQ (whose policy lets this rule send to it) after that
    assert target["RetryPolicy"] == RETRY_POLICY
    queue_id, _ = _only(forwarder_template, "AWS::SQS::Queue")
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [queue_id, "Arn"]}}
    assert _queue_lets_rule_send(forwarder_template, queue_id, rule_id)


def test_home_publishes_alarms_arriving_on_the_governance_bus_to_the_topic(home_template: Template) -> None:
    # Given the home stack's rule with the alarm pattern
    [(rule_id, rule)] = _alarm_rules(home_template).items()
    [target] = rule["Targets"]
    bus_id, _ = _only(home_template, "AWS::Events::EventBus")
    topic_id, _ = _only(home_template, "AWS::SNS::Topic")

    # Then it is on the governance bus (the home region's own alarms notify directly, and are not forwarded), and
    # publishes to the topic, authorized by the topic policy rather than a role
    assert rule["EventBusName"] == {"Ref": bus_id}
    assert target["Arn"] == {"Ref": topic_id}
    assert "RoleArn" not in target

    # With the retry policy, and the rule-target DLQ (whose policy lets this rule send to it) after that
    assert target["RetryPolicy"] == RETRY_POLICY
    dlq_id = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
    assert dlq_id.startswith("RuleTargetDeadLetters")
    assert _queue_lets_rule_send(home_template, dlq_id, rule_id)


def test_topic_policy_lets_eventbridge_publish_for_that_rule_only(home_template: Template) -> None:
    # Given the topic policy's statements for EventBridge
    [rule_id] = _alarm_rules(home_template)
    topic_id, _ = _only(home_template, "AWS::SNS::Topic")
    _, policy = _only(home_template, "AWS::SNS::TopicPolicy")
    assert policy["Topics"] == [{"Ref": topic_id}]
    [statement] = _statements_for(policy["PolicyDocument"], "events.amazonaws.com")

    # Then there is one (no unconditional grant besides it), for sns:Publish from that rule of this account
    assert {k: v for k, v in statement.items() if k != "Sid"} == {
        "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"},
        "Action": "sns:Publish",
        "Resource": {"Ref": topic_id},
        "Condition": {
            "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [rule_id, "Arn"]}},
            "StringEquals": {"aws:SourceAccount": ACCOUNT},
        },
    }
    # And publishing without TLS is still denied to everyone
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in policy["PolicyDocument"]["Statement"]
    )


def test_key_policy_lets_eventbridge_encrypt_for_this_accounts_topics_only(home_template: Template) -> None:
    # Given the topic's key and its policy's statements for EventBridge
    key_id, key = _only(home_template, "AWS::KMS::Key")
    _, topic = _only(home_template, "AWS::SNS::Topic")
    assert topic["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    [statement] = _statements_for(key["KeyPolicy"], "events.amazonaws.com")

    # Then there is one, for what publishing to an encrypted topic takes, for this account's topics in this region
    # (the encryption context SNS binds the data key to); the topic policy is what narrows it to the rule
    this_accounts_topics = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":sns:us-east-1:", ACCOUNT, ":*"]]}
    assert {k: v for k, v in statement.items() if k != "Sid"} == {
        "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"},
        "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
        "Resource": "*",
        "Condition": {"StringLike": {"kms:EncryptionContext:aws:sns:topicArn": this_accounts_topics}},
    }


@pytest.mark.parametrize("app_fixture", APP_FIXTURES)
def test_no_key_policy_scopes_eventbridge_by_source(app_fixture: str, request: pytest.FixtureRequest) -> None:
    # Given every key policy statement for EventBridge in every stack of the app
    built: Any = request.getfixturevalue(app_fixture)
    statements = [
        statement
        for stack in built.stacks
        for key in built.template(stack).find_resources("AWS::KMS::Key").values()
        for statement in _statements_for(key["Properties"]["KeyPolicy"], "events.amazonaws.com")
    ]
    assert statements

    # Then none carries aws:SourceAccount, aws:SourceArn or aws:SourceOrgID: the SNS developer guide says they are
    # not supported for EventBridge publishing to an encrypted topic, and every delivery would fail the KMS check
    source_keys = {"aws:sourceaccount", "aws:sourcearn", "aws:sourceorgid"}
    used = {key.lower() for s in statements for keys in s.get("Condition", {}).values() for key in keys}
    assert used & source_keys == set()


def test_sample_alarm_event_matches_both_rules_and_nothing_else(
    home_template: Template, forwarder_template: Template
) -> None:
    # Given the patterns of both rules as deployed
    [forwarding] = _alarm_rules(forwarder_template).values()
    [notifying] = _alarm_rules(home_template).values()

    # When the sample ALARM event is matched, then both take it
    assert pattern_matches(forwarding["EventPattern"], ALARM_STATE_CHANGE_EVENT)
    assert pattern_matches(notifying["EventPattern"], ALARM_STATE_CHANGE_EVENT)

    # And no AMI rule takes it
    for patterns in (FORWARDING_PATTERNS, ENFORCE_PATTERNS, CLEANUP_PATTERNS):
        assert not any(pattern_matches(p, ALARM_STATE_CHANGE_EVENT) for p in patterns.values())


@pytest.mark.parametrize("state", ["OK", "INSUFFICIENT_DATA"])
def test_alarm_leaving_alarm_state_is_not_forwarded(state: str) -> None:
    # Given the same alarm going back to OK (or to missing data), then the alarm pattern does not take it
    assert not pattern_matches(ALARM_RAISED, _event(state=state))


def test_other_alarms_are_not_forwarded() -> None:
    # Given someone else's alarm, and one whose name merely contains the prefix, then neither is taken
    assert not pattern_matches(ALARM_RAISED, _event(alarm="ServerCpuTooHigh"))
    assert not pattern_matches(ALARM_RAISED, _event(alarm="Team-AmiGovernance-Errors"))


def test_ami_events_are_not_taken_for_alarms(load_event: Any) -> None:
    # Given real-shaped AMI events, then the alarm pattern takes none
    for name in ("create_image.json", "ami_state_available.json", "deregister_image.json"):
        assert not pattern_matches(ALARM_RAISED, load_event(name)), name


@pytest.mark.parametrize("app_fixture", APP_FIXTURES)
def test_every_alarm_is_named_with_the_prefix_and_uniquely_in_its_region(
    app_fixture: str, request: pytest.FixtureRequest
) -> None:
    # Given every alarm of every stack of the app
    built: Any = request.getfixturevalue(app_fixture)
    alarms = [
        (stack, alarm["Properties"])
        for stack in built.stacks
        for alarm in built.template(stack).find_resources("AWS::CloudWatch::Alarm").values()
    ]
    assert alarms

    # Then each has an explicit name with the prefix, within CloudWatch's limit, unique in its region
    for _, alarm in alarms:
        assert isinstance(alarm["AlarmName"], str)
        assert alarm["AlarmName"].startswith(ALARM_NAME_PREFIX)
        assert len(alarm["AlarmName"]) <= ALARM_NAME_MAX_LENGTH
    per_region = Counter((stack.region, alarm["AlarmName"]) for stack, alarm in alarms)
    assert [key for key, count in per_region.items() if count > 1] == []

    # And every home alarm notifies the topic itself, and every other alarm's ALARM event is forwarded by its stack
    for stack, alarm in alarms:
        if stack.stack_name == HOME_STACK_NAME:
            assert as_list(alarm.get("AlarmActions", [])), alarm["AlarmName"]
            continue
        [forwarding] = _alarm_rules(built.template(stack)).values()
        assert pattern_matches(forwarding["EventPattern"], _event(alarm["AlarmName"], region=stack.region))


def test_alarm_name_follows_the_construct_path_and_refuses_to_exceed_the_limit() -> None:
    # Given a stack and a construct inside it, then names are the prefix, the stack name, the path and the name
    stack = Stack(App(), "SomeStack")
    assert alarm_name(stack, "Errors") == "AmiGovernance-SomeStack-Errors"
    assert alarm_name(Construct(Construct(stack, "Outer"), "Inner"), "NotEmpty") == (
        "AmiGovernance-SomeStack-Outer-Inner-NotEmpty"
    )

    # And a name CloudWatch would refuse fails the synth instead of the deployment
    longest_stack = Stack(App(), "S" * 128)
    with pytest.raises(ValueError, match="longer than 255"):
        alarm_name(longest_stack, "N" * 120)
