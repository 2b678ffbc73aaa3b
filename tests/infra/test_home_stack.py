"""The home stack as synthesized from the repository policy (in audit mode)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from stacks.event_patterns import ENFORCE_PATTERNS, FORWARDING_PATTERNS
from stacks.resource_names import GOVERNANCE_BUS_NAME, POLICY_PARAMETER_NAME

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]


def _resources(template: Template, resource_type: str) -> dict[str, dict[str, Any]]:
    return {logical_id: dict(resource) for logical_id, resource in template.find_resources(resource_type).items()}


def _logical_id(template: Template, resource_type: str, **properties: Any) -> str:
    matches = template.find_resources(resource_type, {"Properties": properties} if properties else None)
    assert len(matches) == 1, f"expected one {resource_type} with {properties}, found {list(matches)}"
    return str(next(iter(matches)))


def _enforce_function(template: Template) -> tuple[str, dict[str, Any]]:
    functions = _resources(template, "AWS::Lambda::Function")
    [(logical_id, function)] = [
        (k, v) for k, v in functions.items() if v["Properties"]["Handler"].endswith("enforce.handler")
    ]
    return logical_id, function["Properties"]


def test_governance_bus_has_the_fixed_name(home_template: Template) -> None:
    # Given the home stack, then the bus is named so that forwarders can address it by ARN
    home_template.has_resource_properties("AWS::Events::EventBus", {"Name": GOVERNANCE_BUS_NAME})


def test_enforce_rules_on_the_governance_bus_use_the_enforce_patterns(home_template: Template) -> None:
    # Given the rules on the governance bus
    bus_id = _logical_id(home_template, "AWS::Events::EventBus")
    rules = [
        r["Properties"]
        for r in _resources(home_template, "AWS::Events::Rule").values()
        if r["Properties"]["EventBusName"] == {"Ref": bus_id}
    ]

    # Then their patterns are exactly the enforce patterns, and each targets the enforce function
    assert sorted(json.dumps(r["EventPattern"], sort_keys=True) for r in rules) == sorted(
        json.dumps(p, sort_keys=True) for p in ENFORCE_PATTERNS.values()
    )
    enforce_id, _ = _enforce_function(home_template)
    for rule in rules:
        [target] = rule["Targets"]
        assert target["Arn"] == {"Fn::GetAtt": [enforce_id, "Arn"]}


def test_home_region_forwards_its_own_default_bus_to_the_governance_bus(home_template: Template) -> None:
    # Given the rules on the home region's default bus
    bus_id = _logical_id(home_template, "AWS::Events::EventBus")
    rules = [
        r["Properties"]
        for r in _resources(home_template, "AWS::Events::Rule").values()
        if r["Properties"]["EventBusName"] == "default"
    ]

    # Then they carry the forwarding patterns to the governance bus through a role
    assert sorted(json.dumps(r["EventPattern"], sort_keys=True) for r in rules) == sorted(
        json.dumps(p, sort_keys=True) for p in FORWARDING_PATTERNS.values()
    )
    for rule in rules:
        [target] = rule["Targets"]
        assert target["Arn"] == {"Fn::GetAtt": [bus_id, "Arn"]}
        assert "RoleArn" in target


def test_every_rule_target_has_a_dead_letter_queue_and_a_retry_policy(home_template: Template) -> None:
    # Given every rule in the home stack
    rules = _resources(home_template, "AWS::Events::Rule")
    assert len(rules) == len(ENFORCE_PATTERNS) + len(FORWARDING_PATTERNS)

    # Then every target dead-letters to the rule-target DLQ after a bounded retry
    for rule in rules.values():
        for target in rule["Properties"]["Targets"]:
            assert target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0].startswith("RuleTargetDeadLetters")
            assert target["RetryPolicy"] == {"MaximumRetryAttempts": 4, "MaximumEventAgeInSeconds": 7200}


def test_enforce_function_runtime_and_packaging(home_template: Template, audit_app: Any) -> None:
    # Given the enforce function
    _, function = _enforce_function(home_template)

    # Then it is Python 3.14 on arm64 with the pinned Powertools layer, JSON logs and active tracing
    assert function["Runtime"] == "python3.14"
    assert function["Architectures"] == ["arm64"]
    assert function["Handler"] == "handlers.enforce.handler"
    assert function["MemorySize"] == 256
    assert function["Timeout"] == 60
    assert function["Layers"] == [
        f"arn:aws:lambda:{audit_app.policy.home_region}:017000801446:layer:AWSLambdaPowertoolsPythonV3-python314-arm64:36"
    ]
    assert function["TracingConfig"] == {"Mode": "Active"}
    assert function["LoggingConfig"]["LogFormat"] == "JSON"
    assert function["LoggingConfig"]["ApplicationLogLevel"] == "INFO"
    assert function["DeadLetterConfig"]["TargetArn"]["Fn::GetAtt"][0].startswith("AsyncInvokeDeadLetters")


def test_enforce_function_logs_to_an_explicit_log_group_with_retention(home_template: Template) -> None:
    # Given the enforce function and the log groups
    _, function = _enforce_function(home_template)
    [(log_group_id, log_group)] = _resources(home_template, "AWS::Logs::LogGroup").items()

    # Then the function logs to that group, which has a retention (no log_retention custom resource)
    assert function["LoggingConfig"]["LogGroup"] == {"Ref": log_group_id}
    assert log_group["Properties"]["RetentionInDays"] > 0
    assert not home_template.find_resources("Custom::LogRetention")


def test_enforce_function_environment(home_template: Template) -> None:
    # Given the enforce function
    _, function = _enforce_function(home_template)
    variables = function["Environment"]["Variables"]

    # Then it is told where the policy, the inventory and the topic are
    assert variables["POWERTOOLS_SERVICE_NAME"] == "ami-governance"
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "AmiGovernance"
    assert variables["POLICY_PARAMETER_NAME"] == {"Ref": _logical_id(home_template, "AWS::SSM::Parameter")}
    assert variables["INVENTORY_TABLE_NAME"] == {"Ref": _logical_id(home_template, "AWS::DynamoDB::Table")}
    assert variables["NOTIFICATION_TOPIC_ARN"] == {"Ref": _logical_id(home_template, "AWS::SNS::Topic")}


def test_enforce_function_retries_async_invocations_twice(home_template: Template) -> None:
    home_template.has_resource_properties("AWS::Lambda::EventInvokeConfig", {"MaximumRetryAttempts": 2})


def test_enforce_role_uses_no_managed_policies(home_template: Template) -> None:
    # Given the enforce function's role, then it has no AWS managed policy (its logs rights are its own group's)
    _, function = _enforce_function(home_template)
    role = _resources(home_template, "AWS::IAM::Role")[function["Role"]["Fn::GetAtt"][0]]
    assert "ManagedPolicyArns" not in role["Properties"]


def test_inventory_table(home_template: Template) -> None:
    # Given the inventory table, then it is keyed by image and region, on demand, recoverable and retained
    home_template.resource_count_is("AWS::DynamoDB::Table", 1)
    home_template.has_resource(
        "AWS::DynamoDB::Table",
        {
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                "KeySchema": [
                    {"AttributeName": "image_id", "KeyType": "HASH"},
                    {"AttributeName": "region", "KeyType": "RANGE"},
                ],
                "AttributeDefinitions": [
                    {"AttributeName": "image_id", "AttributeType": "S"},
                    {"AttributeName": "region", "AttributeType": "S"},
                ],
                "BillingMode": "PAY_PER_REQUEST",
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                "SSESpecification": {"SSEEnabled": True},
            },
        },
    )


def test_topic_is_encrypted_with_a_rotating_customer_key_and_tls_only(home_template: Template) -> None:
    # Given the notification topic and its key
    key_id = _logical_id(home_template, "AWS::KMS::Key", EnableKeyRotation=True)
    topic_id = _logical_id(home_template, "AWS::SNS::Topic")

    # Then the topic uses the key, and its policy denies publishing without TLS
    home_template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": {"Fn::GetAtt": [key_id, "Arn"]}})
    home_template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "Topics": [{"Ref": topic_id}],
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})]
                )
            },
        },
    )


def test_dead_letter_queues_are_encrypted_and_tls_only(home_template: Template) -> None:
    # Given the queues, then both DLQs use SSE and deny non-TLS access
    queues = _resources(home_template, "AWS::SQS::Queue")
    assert len(queues) == 2
    for queue in queues.values():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True
    policies = _resources(home_template, "AWS::SQS::QueuePolicy").values()
    protected = {
        p["Properties"]["Queues"][0]["Ref"]
        for p in policies
        if any(
            s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
            for s in p["Properties"]["PolicyDocument"]["Statement"]
        )
    }
    assert protected == set(queues)


def test_alarms_on_each_dead_letter_queue_and_on_enforce_errors(home_template: Template) -> None:
    # Given the alarms and the topic
    topic_id = _logical_id(home_template, "AWS::SNS::Topic")
    alarms = [a["Properties"] for a in _resources(home_template, "AWS::CloudWatch::Alarm").values()]

    # Then each DLQ alarms on its first visible message, the function on its first error, all to the topic
    queue_alarms = [a for a in alarms if a["MetricName"] == "ApproximateNumberOfMessagesVisible"]
    error_alarms = [a for a in alarms if a["MetricName"] == "Errors"]
    assert len(queue_alarms) == 2
    assert len(error_alarms) == 1
    alarmed_queues = {a["Dimensions"][0]["Value"]["Fn::GetAtt"][0] for a in queue_alarms}
    assert alarmed_queues == set(_resources(home_template, "AWS::SQS::Queue"))
    for alarm in queue_alarms + error_alarms:
        assert alarm["Threshold"] == 1
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["AlarmActions"] == [{"Ref": topic_id}]


def test_policy_parameter_holds_the_validated_policy_as_json(audit_app: Any, home_template: Template) -> None:
    # Given the policy the app was built from, then the parameter holds its JSON under the fixed name
    home_template.has_resource_properties(
        "AWS::SSM::Parameter",
        {
            "Name": POLICY_PARAMETER_NAME,
            "Type": "String",
            "Value": audit_app.policy.model_dump_json(),
            "Tier": "Standard",
        },
    )
