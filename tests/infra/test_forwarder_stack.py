"""The regional forwarder stacks and how the app lays out stacks across regions."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template

from stacks.app_builder import build_app
from stacks.event_patterns import ALARM_RAISED, FORWARDING_PATTERNS
from stacks.resource_names import ALARM_NAME_PREFIX, HOME_STACK_NAME, forwarder_stack_name
from tests.infra.support import APP_FIXTURES

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]


def _home_bus_arn(home_region: str) -> dict[str, Any]:
    return {
        "Fn::Join": ["", [f"arn:aws:events:{home_region}:", {"Ref": "AWS::AccountId"}, ":event-bus/ami-governance"]]
    }


def test_one_home_stack_and_one_forwarder_per_other_governed_region(audit_app: Any) -> None:
    # Given the app built from the policy
    policy = audit_app.policy
    by_name = {stack.stack_name: stack for stack in audit_app.stacks}

    # Then the home stack is in the home region and every other governed region has a forwarder there
    expected = {HOME_STACK_NAME} | {forwarder_stack_name(r) for r in policy.governed_regions if r != policy.home_region}
    assert set(by_name) == expected
    assert by_name[HOME_STACK_NAME].region == policy.home_region
    for region in policy.governed_regions:
        if region != policy.home_region:
            forwarder = by_name[forwarder_stack_name(region)]
            assert forwarder.region == region
            # Deployed after the home stack, whose bus its rules target.
            assert by_name[HOME_STACK_NAME] in forwarder.dependencies


def test_forwarder_rules_send_the_forwarding_patterns_to_the_home_bus(
    forwarder_template: Template, audit_app: Any
) -> None:
    # Given the forwarder's rules
    rules = [r["Properties"] for r in forwarder_template.find_resources("AWS::Events::Rule").values()]

    # Then they sit on the default bus with the forwarding patterns (AMI events, and this product's alarms going
    # into ALARM) and target the home bus by its fixed ARN
    assert sorted(json.dumps(r["EventPattern"], sort_keys=True) for r in rules) == sorted(
        json.dumps(p, sort_keys=True) for p in [*FORWARDING_PATTERNS.values(), ALARM_RAISED]
    )
    for rule in rules:
        assert rule["EventBusName"] == "default"
        [target] = rule["Targets"]
        assert target["Arn"] == _home_bus_arn(audit_app.policy.home_region)
        assert "RoleArn" in target
        assert target["RetryPolicy"] == {"MaximumRetryAttempts": 4, "MaximumEventAgeInSeconds": 7200}
        dlq_id = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
        assert dlq_id in forwarder_template.find_resources("AWS::SQS::Queue")


def test_forwarding_role_may_only_put_events_on_the_home_bus(forwarder_template: Template, audit_app: Any) -> None:
    # Given the forwarder's IAM policies
    statements = [
        s
        for p in forwarder_template.find_resources("AWS::IAM::Policy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]

    # Then the only permission is events:PutEvents on the home bus
    assert statements == [
        {"Action": "events:PutEvents", "Effect": "Allow", "Resource": _home_bus_arn(audit_app.policy.home_region)}
    ]
    forwarder_template.has_resource_properties(
        "AWS::IAM::Role",
        {
            "AssumeRolePolicyDocument": {
                "Statement": [
                    {
                        "Action": "sts:AssumeRole",
                        "Effect": "Allow",
                        "Principal": {"Service": "events.amazonaws.com"},
                        "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
                    }
                ]
            }
        },
    )


def test_forwarder_dead_letter_queue_is_encrypted_tls_only_and_alarmed(forwarder_template: Template) -> None:
    [(queue_id, queue)] = forwarder_template.find_resources("AWS::SQS::Queue").items()
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    [alarm] = forwarder_template.find_resources("AWS::CloudWatch::Alarm").values()
    assert alarm["Properties"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Properties"]["Dimensions"][0]["Value"] == {"Fn::GetAtt": [queue_id, "QueueName"]}
    # No action (the topic is in another region): its state change is forwarded instead, which its name allows.
    assert "AlarmActions" not in alarm["Properties"]
    assert alarm["Properties"]["AlarmName"].startswith(ALARM_NAME_PREFIX)


def test_forwarder_has_no_cross_stack_reference(forwarder_template: Template) -> None:
    # Given the forwarder template, then nothing is imported from another stack (impossible across regions)
    assert "Fn::ImportValue" not in json.dumps(forwarder_template.to_json())


@pytest.mark.parametrize("app_fixture", APP_FIXTURES)
def test_forwarder_stacks_run_no_lambda(app_fixture: str, request: pytest.FixtureRequest) -> None:
    # Given every forwarder stack of the app variant, then none has a function: only the home region needs the
    # Powertools layer (and a Lambda runtime)
    built: Any = request.getfixturevalue(app_fixture)
    forwarders = [s for s in built.stacks if s.stack_name != HOME_STACK_NAME]
    assert forwarders
    for stack in forwarders:
        assert built.template(stack).find_resources("AWS::Lambda::Function") == {}


def test_a_governed_region_without_the_powertools_layer_can_have_a_forwarder(make_policy: Any) -> None:
    # Given a home region with the layer and a governed region without it (ca-west-1 is not in the publisher's list)
    # (and no report prices for the repository's other region, which a policy may only set for governed ones)
    policy = make_policy(
        home_region="us-east-1",
        governed_regions=["us-east-1", "ca-west-1"],
        replication={"regions": []},
        report={"snapshot_price_per_gb_month": {}},
    )

    # When the app is built, then the forwarder is there, with no function
    stacks = {s.stack_name: s for s in build_app(App(), policy)}
    forwarder = Template.from_stack(stacks[forwarder_stack_name("ca-west-1")])
    assert forwarder.find_resources("AWS::Lambda::Function") == {}
