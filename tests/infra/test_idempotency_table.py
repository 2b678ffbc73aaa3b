"""The idempotency table: Powertools' key and TTL, on demand, recoverable, retained; only the functions the
governance bus invokes use it, each with the three actions Powertools needs on it alone; and its records outlive the
latest a duplicate delivery can arrive (the rules' and Lambda's maximum event ages)."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Template

from ami_governance.adapters.idempotency import EXPIRES_AFTER_SECONDS, EXPIRY_ATTRIBUTE, KEY_ATTRIBUTE
from tests.infra.support import function_by_handler, role_statements

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

EVENT_DRIVEN = ["handlers.cleanup.handler", "handlers.enforce.handler", "handlers.replicate.handler"]
NOT_EVENT_DRIVEN = ["handlers.copy.handler", "handlers.report.handler"]
# Lambda's default maximum age of an asynchronous event, for a function whose EventInvokeConfig sets none
# (Lambda developer guide, "Configuring error handling for asynchronous invocation").
LAMBDA_DEFAULT_MAX_EVENT_AGE_SECONDS = 6 * 60 * 60


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _idempotency_table(template: Template) -> tuple[str, dict[str, Any]]:
    tables = template.find_resources("AWS::DynamoDB::Table")
    [(logical_id, table)] = [
        (k, t) for k, t in tables.items() if t["Properties"]["KeySchema"][0]["AttributeName"] == KEY_ATTRIBUTE
    ]
    return logical_id, table


def test_the_table_has_powertools_key_and_ttl_on_demand_recoverable_and_retained(home_template: Template) -> None:
    # Given the idempotency table
    _, table = _idempotency_table(home_template)
    properties = table["Properties"]

    # Then it is keyed by Powertools' `id`, expires records by `expiration`, and is built like the inventory
    assert properties["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert properties["AttributeDefinitions"] == [{"AttributeName": "id", "AttributeType": "S"}]
    assert properties["TimeToLiveSpecification"] == {"AttributeName": EXPIRY_ATTRIBUTE, "Enabled": True}
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["SSESpecification"] == {"SSEEnabled": True}
    assert (table["DeletionPolicy"], table["UpdateReplacePolicy"]) == ("Retain", "Retain")


@pytest.mark.parametrize("handler", EVENT_DRIVEN)
def test_an_event_driven_function_is_told_the_table_and_may_record_in_it_only(
    handler: str, home_template: Template
) -> None:
    # Given a function the governance bus's rules invoke
    table_id, _ = _idempotency_table(home_template)
    _, function = function_by_handler(home_template, handler)

    # Then it is told the table, and one statement lets it claim, record and drop records in that table only
    assert function["Environment"]["Variables"]["IDEMPOTENCY_TABLE_NAME"] == {"Ref": table_id}
    on_table = [
        s
        for s in role_statements(home_template, handler)
        if {"Fn::GetAtt": [table_id, "Arn"]} in _as_list(s["Resource"])
    ]
    assert on_table == [
        {
            "Action": ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [table_id, "Arn"]},
            "Sid": "RecordHandledEvents",
        }
    ]


@pytest.mark.parametrize("handler", NOT_EVENT_DRIVEN)
def test_the_copy_and_report_functions_neither_know_nor_may_touch_the_table(
    handler: str, home_template: Template
) -> None:
    # Given the queue-fed copy function and the scheduled report (their effects are idempotent by design)
    table_id, _ = _idempotency_table(home_template)
    _, function = function_by_handler(home_template, handler)

    # Then neither is told the table nor granted anything on it
    assert "IDEMPOTENCY_TABLE_NAME" not in function["Environment"]["Variables"]
    resources = [r for s in role_statements(home_template, handler) for r in _as_list(s["Resource"])]
    assert {"Fn::GetAtt": [table_id, "Arn"]} not in resources


@pytest.mark.parametrize("handler", EVENT_DRIVEN)
def test_records_outlive_the_latest_redelivery_of_an_event(handler: str, home_template: Template) -> None:
    # Given the function's rules (each target's maximum event age), the forwarder's hop before them, and the
    # function's asynchronous invocation config (Lambda's queue keeps an event up to its maximum age)
    function_id, _ = function_by_handler(home_template, handler)
    rules = home_template.find_resources("AWS::Events::Rule")
    targets = [
        t
        for r in rules.values()
        for t in r["Properties"].get("Targets", [])
        if t["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    ]
    rule_ages = {t["RetryPolicy"]["MaximumEventAgeInSeconds"] for t in targets}
    forwarding_ages = {
        t["RetryPolicy"]["MaximumEventAgeInSeconds"]
        for r in rules.values()
        for t in r["Properties"].get("Targets", [])
        if "RetryPolicy" in t and "RoleArn" in t  # bus-to-bus targets carry the role EventBridge sends with
    }
    [invoke_config] = [
        c["Properties"]
        for c in home_template.find_resources("AWS::Lambda::EventInvokeConfig").values()
        if c["Properties"]["FunctionName"] == {"Ref": function_id}
    ]
    lambda_age = invoke_config.get("MaximumEventAgeInSeconds", LAMBDA_DEFAULT_MAX_EVENT_AGE_SECONDS)

    # Then a duplicate delivered as late as these allow still finds the first handling's record
    assert targets
    assert forwarding_ages
    latest = max(forwarding_ages) + max(rule_ages) + lambda_age
    assert latest == 10 * 60 * 60
    assert latest < EXPIRES_AFTER_SECONDS
