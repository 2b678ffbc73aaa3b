"""Replication in the home stack: the replicate and copy Lambdas, the copy queue between them, their rules and
outputs; and none of it when the policy names no replication region."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Template

from stacks.event_patterns import replicate_patterns
from stacks.home_stack import COPY_QUEUE_MAX_RECEIVES, COPY_TIMEOUT
from tests.infra.support import REPLICATION_APPROVAL_TAG, function_by_handler

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

REPLICATE_HANDLER = "handlers.replicate.handler"
COPY_HANDLER = "handlers.copy.handler"
REPLICATING_APPS = ["audit_app", "replication_app"]


def _home(app_fixture: str, request: pytest.FixtureRequest) -> tuple[Any, Template]:
    built: Any = request.getfixturevalue(app_fixture)
    return built, built.template(built.home)


def _copy_queue(template: Template) -> tuple[str, dict[str, Any]]:
    """The one queue that has a dead-letter queue of its own."""
    [(logical_id, queue)] = [
        (logical_id, queue["Properties"])
        for logical_id, queue in template.find_resources("AWS::SQS::Queue").items()
        if "RedrivePolicy" in queue["Properties"]
    ]
    return logical_id, queue


def _only_id(template: Template, resource_type: str) -> str:
    resources = template.find_resources(resource_type)
    if resource_type == "AWS::DynamoDB::Table":
        # The inventory, not the idempotency table (keyed by `id`).
        resources = {k: r for k, r in resources.items() if r["Properties"]["KeySchema"][0]["AttributeName"] != "id"}
    [logical_id] = resources
    return str(logical_id)


def _rules_targeting(template: Template, function_id: str) -> list[dict[str, Any]]:
    return [
        rule["Properties"]
        for rule in template.find_resources("AWS::Events::Rule").values()
        if any(t["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]} for t in rule["Properties"]["Targets"])
    ]


def test_nothing_of_replication_exists_without_replication_regions(no_replication_app: Any) -> None:
    # Given the repository's policy without replication regions
    assert no_replication_app.policy.replication.regions == []
    template = no_replication_app.template(no_replication_app.home)

    # Then there is no replicate or copy function, no copy queue, no event source, no rule and no output for them
    handlers = {f["Properties"]["Handler"] for f in template.find_resources("AWS::Lambda::Function").values()}
    assert handlers == {"handlers.enforce.handler", "handlers.cleanup.handler", "handlers.report.handler"}
    assert not template.find_resources("AWS::Lambda::EventSourceMapping")
    queues = template.find_resources("AWS::SQS::Queue")
    assert len(queues) == 2
    assert all("RedrivePolicy" not in q["Properties"] for q in queues.values())
    assert set(template.to_json().get("Outputs", {})) == {"ReportsBucketName", "ReportFunctionName"}
    approval_key = no_replication_app.policy.approval_tag_key
    assert approval_key not in json.dumps(
        [r["Properties"].get("EventPattern") for r in template.find_resources("AWS::Events::Rule").values()]
    )
    # Nor any of their permissions in any role
    statements = json.dumps(template.find_resources("AWS::IAM::Policy"))
    for action in ("ec2:CopyImage", "ec2:ModifyImageAttribute", "sqs:ReceiveMessage"):
        assert action not in statements


@pytest.mark.parametrize("app_fixture", REPLICATING_APPS)
def test_replicate_function_knows_the_copy_queue(app_fixture: str, request: pytest.FixtureRequest) -> None:
    # Given a replicating app's replicate function
    _, template = _home(app_fixture, request)
    _, function = function_by_handler(template, REPLICATE_HANDLER)
    variables = function["Environment"]["Variables"]
    queue_id, _ = _copy_queue(template)

    # Then, besides the policy, inventory and topic every function is told, it is told the copy queue's URL
    assert variables["COPY_QUEUE_URL"] == {"Ref": queue_id}
    assert variables["POLICY_PARAMETER_NAME"] == {"Ref": _only_id(template, "AWS::SSM::Parameter")}
    assert variables["INVENTORY_TABLE_NAME"] == {"Ref": _only_id(template, "AWS::DynamoDB::Table")}
    assert variables["NOTIFICATION_TOPIC_ARN"] == {"Ref": _only_id(template, "AWS::SNS::Topic")}
    assert function["Timeout"] == 60


@pytest.mark.parametrize("app_fixture", REPLICATING_APPS)
def test_copy_function_is_fed_by_the_copy_queue_only(app_fixture: str, request: pytest.FixtureRequest) -> None:
    # Given a replicating app's copy function
    _, template = _home(app_fixture, request)
    function_id, function = function_by_handler(template, COPY_HANDLER)
    queue_id, _ = _copy_queue(template)

    # Then the copy queue is its one event source: five jobs a batch, no batching wait, failures reported per job
    [mapping] = [m["Properties"] for m in template.find_resources("AWS::Lambda::EventSourceMapping").values()]
    assert mapping == {
        "BatchSize": 5,
        "EventSourceArn": {"Fn::GetAtt": [queue_id, "Arn"]},
        "FunctionName": {"Ref": function_id},
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "MaximumBatchingWindowInSeconds": 0,
    }
    # And no rule targets it; it has two minutes, the common environment and nothing else
    assert _rules_targeting(template, function_id) == []
    assert function["Timeout"] == COPY_TIMEOUT.to_seconds() == 120
    variables = function["Environment"]["Variables"]
    assert "COPY_QUEUE_URL" not in variables
    assert {"POLICY_PARAMETER_NAME", "INVENTORY_TABLE_NAME", "NOTIFICATION_TOPIC_ARN"} <= set(variables)


@pytest.mark.parametrize("app_fixture", REPLICATING_APPS)
def test_copy_queue_retries_a_job_twenty_times_then_dead_letters_it(
    app_fixture: str, request: pytest.FixtureRequest
) -> None:
    # Given the copy queue
    _, template = _home(app_fixture, request)
    queue_id, queue = _copy_queue(template)
    _, copy_function = function_by_handler(template, COPY_HANDLER)

    # Then it hides a received job for six times the copy function's timeout (AWS's advice for an event source)
    assert queue["VisibilityTimeout"] == 6 * copy_function["Timeout"] == 720
    # And after 20 receives moves it to a dead-letter queue of its own, which alarms to the topic
    assert COPY_QUEUE_MAX_RECEIVES == 20
    redrive = queue["RedrivePolicy"]
    assert redrive["maxReceiveCount"] == 20
    dead_letters_id = redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]
    assert dead_letters_id.startswith("CopyJobsDeadLetters")
    [alarm] = [
        a["Properties"]
        for a in template.find_resources("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("Dimensions", [{}])[0].get("Value") == {"Fn::GetAtt": [dead_letters_id, "QueueName"]}
    ]
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["AlarmActions"] == [{"Ref": _only_id(template, "AWS::SNS::Topic")}]
    # Encrypted and TLS only, like every queue
    assert queue["SqsManagedSseEnabled"] is True
    tls_only = [
        s
        for p in template.find_resources("AWS::SQS::QueuePolicy").values()
        if {"Ref": queue_id} in p["Properties"]["Queues"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
    ]
    assert tls_only


@pytest.mark.parametrize("app_fixture", REPLICATING_APPS)
def test_replicate_rules_follow_approvals_and_ami_states(app_fixture: str, request: pytest.FixtureRequest) -> None:
    # Given the rules that target the replicate function
    built, template = _home(app_fixture, request)
    function_id, _ = function_by_handler(template, REPLICATE_HANDLER)
    rules = _rules_targeting(template, function_id)
    bus_id = _only_id(template, "AWS::Events::EventBus")

    # Then they are on the governance bus, with the policy's replicate patterns
    assert {json.dumps(r["EventBusName"]) for r in rules} == {json.dumps({"Ref": bus_id})}
    assert sorted(json.dumps(r["EventPattern"], sort_keys=True) for r in rules) == sorted(
        json.dumps(p, sort_keys=True) for p in replicate_patterns(built.policy).values()
    )
    # Successful CreateTags calls on an AMI that set the policy's approval tag, and the AMI states replicate follows
    [approved] = [
        r["EventPattern"] for r in rules if r["EventPattern"]["detail-type"] == ["AWS API Call via CloudTrail"]
    ]
    assert approved["detail"] == {
        "eventSource": ["ec2.amazonaws.com"],
        "eventName": ["CreateTags"],
        "errorCode": [{"exists": False}],
        "requestParameters": {
            "resourcesSet": {"items": {"resourceId": [{"prefix": "ami-"}]}},
            "tagSet": {"items": {"key": [built.policy.approval_tag_key]}},
        },
    }
    [states] = [r["EventPattern"] for r in rules if r["EventPattern"]["detail-type"] == ["EC2 AMI State Change"]]
    assert states["detail"] == {"State": ["available", "failed", "deregistered"]}


def test_the_approval_rule_names_a_custom_approval_tag(replication_app: Any) -> None:
    # Given a policy whose approval tag is its own, outside the tag prefix
    policy = replication_app.policy
    assert policy.approval_tag_key == REPLICATION_APPROVAL_TAG
    template = replication_app.template(replication_app.home)

    # Then the approval rule matches that key (and not the default one)
    patterns = json.dumps(
        [r["Properties"].get("EventPattern") for r in template.find_resources("AWS::Events::Rule").values()]
    )
    assert f'"key": ["{REPLICATION_APPROVAL_TAG}"]' in patterns
    assert policy.tag_key("approved") not in patterns


@pytest.mark.parametrize("app_fixture", REPLICATING_APPS)
def test_outputs_name_the_copy_role_and_the_copy_queue(app_fixture: str, request: pytest.FixtureRequest) -> None:
    # Given the home stack's outputs
    _, template = _home(app_fixture, request)
    _, copy_function = function_by_handler(template, COPY_HANDLER)
    queue_id, _ = _copy_queue(template)
    outputs = template.to_json()["Outputs"]

    # Then the copy role's ARN (for the key policies) and the copy queue's URL are there
    assert outputs["CopyRoleArn"]["Value"] == copy_function["Role"]
    assert outputs["CopyQueueUrl"]["Value"] == {"Ref": queue_id}
