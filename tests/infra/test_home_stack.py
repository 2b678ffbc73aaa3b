"""The home stack as synthesized from the repository policy (in audit mode, cleanup in dry-run, replicating to one
region; tests/infra/test_replication_stack.py has the replication specifics)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from ami_governance.models.policy import GovernancePolicy
from stacks.event_patterns import (
    ALARM_RAISED,
    CLEANUP_PATTERNS,
    ENFORCE_PATTERNS,
    FORWARDING_PATTERNS,
    EventPatternData,
    replicate_patterns,
)
from stacks.resource_names import ALARM_NAME_PREFIX, GOVERNANCE_BUS_NAME, POLICY_PARAMETER_NAME
from tests.infra.support import function_by_handler, role_statements

ENFORCE_HANDLER = "handlers.enforce.handler"
CLEANUP_HANDLER = "handlers.cleanup.handler"
REPLICATE_HANDLER = "handlers.replicate.handler"
# Fed by the copy queue, not by rules.
COPY_HANDLER = "handlers.copy.handler"
# Fired by a scheduled rule on the default bus (tests/infra/test_report_stack.py).
REPORT_HANDLER = "handlers.report.handler"
HANDLERS = sorted([ENFORCE_HANDLER, CLEANUP_HANDLER, REPLICATE_HANDLER, COPY_HANDLER, REPORT_HANDLER])


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _governance_bus_routes(policy: GovernancePolicy) -> dict[str, dict[str, EventPatternData]]:
    """Handler -> the patterns of its rules on the governance bus (the repository policy replicates)."""
    assert policy.replication.regions
    return {
        ENFORCE_HANDLER: ENFORCE_PATTERNS,
        CLEANUP_HANDLER: CLEANUP_PATTERNS,
        REPLICATE_HANDLER: replicate_patterns(policy),
    }


pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]


def _resources(template: Template, resource_type: str) -> dict[str, dict[str, Any]]:
    return {logical_id: dict(resource) for logical_id, resource in template.find_resources(resource_type).items()}


def _logical_id(template: Template, resource_type: str, **properties: Any) -> str:
    matches = template.find_resources(resource_type, {"Properties": properties} if properties else None)
    assert len(matches) == 1, f"expected one {resource_type} with {properties}, found {list(matches)}"
    return str(next(iter(matches)))


def _inventory_id(template: Template) -> str:
    return _logical_id(
        template, "AWS::DynamoDB::Table", KeySchema=Match.array_with([Match.object_like({"AttributeName": "image_id"})])
    )


def _enforce_function(template: Template) -> tuple[str, dict[str, Any]]:
    return function_by_handler(template, ENFORCE_HANDLER)


def _patterns(rules: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(r["EventPattern"], sort_keys=True) for r in rules)


def test_governance_bus_has_the_fixed_name(home_template: Template) -> None:
    # Given the home stack, then the bus is named so that forwarders can address it by ARN
    home_template.has_resource_properties("AWS::Events::EventBus", {"Name": GOVERNANCE_BUS_NAME})


def test_rules_on_the_governance_bus_route_each_target_its_patterns(home_template: Template, audit_app: Any) -> None:
    # Given the rules on the governance bus, grouped by the function (or topic) their one target is
    bus_id = _logical_id(home_template, "AWS::Events::EventBus")
    rules = [
        r["Properties"]
        for r in _resources(home_template, "AWS::Events::Rule").values()
        if r["Properties"].get("EventBusName") == {"Ref": bus_id}
    ]
    by_target: dict[str, list[dict[str, Any]]] = {}
    for rule in rules:
        [target] = rule["Targets"]
        by_target.setdefault(json.dumps(target["Arn"], sort_keys=True), []).append(rule)

    # Then enforce gets exactly the enforce patterns, cleanup exactly the cleanup patterns, replicate exactly the
    # replicate patterns, and the topic the alarms forwarded from other regions, nothing else (copy has no rule)
    expected = {
        json.dumps({"Fn::GetAtt": [function_by_handler(home_template, handler)[0], "Arn"]}, sort_keys=True): sorted(
            json.dumps(p, sort_keys=True) for p in patterns.values()
        )
        for handler, patterns in _governance_bus_routes(audit_app.policy).items()
    }
    topic_arn = {"Ref": _logical_id(home_template, "AWS::SNS::Topic")}
    expected[json.dumps(topic_arn, sort_keys=True)] = [json.dumps(ALARM_RAISED, sort_keys=True)]
    assert {arn: _patterns(rules) for arn, rules in by_target.items()} == expected


def test_home_region_forwards_its_own_default_bus_to_the_governance_bus(home_template: Template) -> None:
    # Given the rules on the home region's default bus
    bus_id = _logical_id(home_template, "AWS::Events::EventBus")
    rules = [
        r["Properties"]
        for r in _resources(home_template, "AWS::Events::Rule").values()
        # (the report's scheduled rule is on the default bus too, without naming it: CDK leaves it out)
        if r["Properties"].get("EventBusName") == "default"
    ]

    # Then they carry the forwarding patterns to the governance bus through a role
    assert sorted(json.dumps(r["EventPattern"], sort_keys=True) for r in rules) == sorted(
        json.dumps(p, sort_keys=True) for p in FORWARDING_PATTERNS.values()
    )
    for rule in rules:
        [target] = rule["Targets"]
        assert target["Arn"] == {"Fn::GetAtt": [bus_id, "Arn"]}
        assert "RoleArn" in target


def test_every_rule_target_has_a_dead_letter_queue_and_a_retry_policy(home_template: Template, audit_app: Any) -> None:
    # Given every rule in the home stack
    rules = _resources(home_template, "AWS::Events::Rule")
    routed = sum(len(patterns) for patterns in _governance_bus_routes(audit_app.policy).values())
    assert len(rules) == routed + len(FORWARDING_PATTERNS) + 1 + 1  # alarms, the report's schedule

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
    # a tag event may name 1,000 AMIs, each tagged and notified (stacks/home_stack.py, ENFORCE_TIMEOUT)
    assert function["Timeout"] == 300
    assert function["Layers"] == [
        f"arn:aws:lambda:{audit_app.policy.home_region}:017000801446:layer:AWSLambdaPowertoolsPythonV3-python314-arm64:36"
    ]
    assert function["TracingConfig"] == {"Mode": "Active"}
    assert function["LoggingConfig"]["LogFormat"] == "JSON"
    assert function["LoggingConfig"]["ApplicationLogLevel"] == "INFO"
    assert function["DeadLetterConfig"]["TargetArn"]["Fn::GetAtt"][0].startswith("AsyncInvokeDeadLetters")


def test_each_function_logs_to_an_explicit_log_group_of_its_own_with_retention(home_template: Template) -> None:
    # Given the functions and the log groups
    log_groups = _resources(home_template, "AWS::Logs::LogGroup")
    used = [function_by_handler(home_template, h)[1]["LoggingConfig"]["LogGroup"]["Ref"] for h in HANDLERS]

    # Then each function logs to a group of its own, which has a retention (no log_retention custom resource)
    assert sorted(used) == sorted(log_groups)
    for log_group in log_groups.values():
        assert log_group["Properties"]["RetentionInDays"] > 0
    assert not home_template.find_resources("Custom::LogRetention")


@pytest.mark.parametrize("handler", HANDLERS)
def test_function_environment(handler: str, home_template: Template) -> None:
    # Given the function
    _, function = function_by_handler(home_template, handler)
    variables = function["Environment"]["Variables"]

    # Then it is told where the policy, the inventory and the topic are
    assert variables["POWERTOOLS_SERVICE_NAME"] == "ami-governance"
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "AmiGovernance"
    assert variables["POLICY_PARAMETER_NAME"] == {"Ref": _logical_id(home_template, "AWS::SSM::Parameter")}
    assert variables["INVENTORY_TABLE_NAME"] == {"Ref": _inventory_id(home_template)}
    assert variables["NOTIFICATION_TOPIC_ARN"] == {"Ref": _logical_id(home_template, "AWS::SNS::Topic")}


@pytest.mark.parametrize("handler", sorted(set(HANDLERS) - {COPY_HANDLER}))
def test_function_retries_async_invocations_twice_then_dead_letters(handler: str, home_template: Template) -> None:
    # Given the function and its asynchronous invocation settings
    function_id, function = function_by_handler(home_template, handler)
    [config] = [
        c["Properties"]
        for c in _resources(home_template, "AWS::Lambda::EventInvokeConfig").values()
        if c["Properties"]["FunctionName"] == {"Ref": function_id}
    ]

    # Then a failed invocation is retried twice, then goes to the async-invoke DLQ
    assert config["MaximumRetryAttempts"] == 2
    assert function["DeadLetterConfig"]["TargetArn"]["Fn::GetAtt"][0].startswith("AsyncInvokeDeadLetters")


def test_the_queue_fed_copy_function_has_no_async_dead_letter_queue_nor_the_right_to_send_to_one(
    home_template: Template,
) -> None:
    # Given the copy function, which only its SQS event source mapping invokes (synchronously: Lambda never uses a
    # function's DLQ then, the queue's redrive policy does)
    _, function = function_by_handler(home_template, COPY_HANDLER)

    # Then it has no dead-letter queue, and its role cannot send to any queue
    assert "DeadLetterConfig" not in function
    actions = [a for s in role_statements(home_template, COPY_HANDLER) for a in _as_list(s["Action"])]
    assert "sqs:SendMessage" not in actions


@pytest.mark.parametrize("handler", HANDLERS)
def test_function_role_is_its_own_and_uses_no_managed_policies(handler: str, home_template: Template) -> None:
    # Given the function's role, then it has no AWS managed policy (its logs rights are its own group's), and no
    # other function shares it
    _, function = function_by_handler(home_template, handler)
    role_id = function["Role"]["Fn::GetAtt"][0]
    role = _resources(home_template, "AWS::IAM::Role")[role_id]
    assert "ManagedPolicyArns" not in role["Properties"]
    sharing = [h for h in HANDLERS if function_by_handler(home_template, h)[1]["Role"]["Fn::GetAtt"][0] == role_id]
    assert sharing == [handler]


def test_cleanup_function_has_time_to_delete_a_full_batch_of_snapshots(home_template: Template) -> None:
    # Given the cleanup function, which deletes up to max_snapshots_per_event (50) snapshots per event, one
    # DeleteSnapshot call each, on a 5-per-second throttle that botocore backs off from
    _, function = function_by_handler(home_template, CLEANUP_HANDLER)

    # Then it has 5 minutes, and is built like every other function
    assert function["Timeout"] == 900
    assert function["Runtime"] == "python3.14"
    assert function["Architectures"] == ["arm64"]
    assert function["TracingConfig"] == {"Mode": "Active"}
    assert function["LoggingConfig"]["LogFormat"] == "JSON"


def test_inventory_table(home_template: Template) -> None:
    # Given the inventory table, then it is keyed by image and region, on demand, recoverable and retained
    # (and the idempotency table: tests/infra/test_idempotency_table.py)
    home_template.resource_count_is("AWS::DynamoDB::Table", 2)
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


def test_queues_are_encrypted_and_tls_only(home_template: Template) -> None:
    # Given the queues (the two DLQs, the copy queue and its DLQ), then each uses SSE and denies non-TLS access
    queues = _resources(home_template, "AWS::SQS::Queue")
    assert len(queues) == 4
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


def test_alarms_on_each_dead_letter_queue_and_on_each_functions_errors(home_template: Template) -> None:
    # Given the alarms and the topic
    topic_id = _logical_id(home_template, "AWS::SNS::Topic")
    alarms = [a["Properties"] for a in _resources(home_template, "AWS::CloudWatch::Alarm").values()]

    # Then each DLQ alarms on its first visible message, each function on its first error, all to the topic (the
    # copy queue is not a DLQ: it has one, which alarms)
    queue_alarms = [a for a in alarms if a["MetricName"] == "ApproximateNumberOfMessagesVisible"]
    error_alarms = [a for a in alarms if a["MetricName"] == "Errors"]
    assert len(queue_alarms) == 3
    alarmed_functions = sorted(a["Dimensions"][0]["Value"]["Ref"] for a in error_alarms)
    assert alarmed_functions == sorted(function_by_handler(home_template, h)[0] for h in HANDLERS)
    alarmed_queues = {a["Dimensions"][0]["Value"]["Fn::GetAtt"][0] for a in queue_alarms}
    dead_letter_queues = {
        logical_id
        for logical_id, queue in _resources(home_template, "AWS::SQS::Queue").items()
        if "RedrivePolicy" not in queue["Properties"]
    }
    assert alarmed_queues == dead_letter_queues
    for alarm in queue_alarms + error_alarms:
        assert alarm["AlarmName"].startswith(ALARM_NAME_PREFIX)
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
            "Tier": "Advanced",
        },
    )
