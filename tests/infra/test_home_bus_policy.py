"""The governance bus's resource policy: events only from this account's forwarders.

Two explicit Denies on events:PutEvents: any principal of another account, and any entry whose `source` is not one
the forwarders forward. EventBridge itself refuses PutEvents with an AWS service's source (`aws.*`) from any caller,
so what passes both is an event a forwarding rule delivered. The statements are checked exactly, and their effect
on the callers that matter is worked out below with IAM's semantics for the two operators they use. The emulator
evaluates the same policy at every PutEvents with --enforce-iam (tests/emulator/test_iam_evaluator.py,
tests/e2e/test_forgery_e2e.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from aws_cdk import App, Environment
from aws_cdk.assertions import Template

from stacks.event_patterns import ALARM_RAISED, FORWARDING_PATTERNS
from stacks.home_stack import (
    BUS_POLICY_ALLOW_FORWARDER_ACCOUNTS_SID,
    BUS_POLICY_DENY_OTHER_ACCOUNTS_SID,
    BUS_POLICY_DENY_OTHER_SOURCES_SID,
    FORWARDED_SOURCES,
    AmiGovernanceHomeStack,
)
from stacks.resource_names import GOVERNANCE_BUS_NAME
from tests.iam.authorization import check_template
from tests.iam.reference import load_reference
from tests.iam.statements import PolicyKind, template_statements
from tests.infra.conftest import BuiltApp

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

THIS_ACCOUNT = "123456789012"
MEMBER_ACCOUNT = "210987654321"
OUTSIDER = "444455556666"
HOME = "us-east-1"
ACCOUNT_REF = {"Ref": "AWS::AccountId"}
PARTITION_REF = {"Ref": "AWS::Partition"}
BUS_ARN = {"Fn::Join": ["", ["arn:", PARTITION_REF, f":events:{HOME}:", ACCOUNT_REF, ":event-bus/ami-governance"]]}


def bus_policy(template: Template) -> dict[str, Any]:
    [bus] = template.find_resources("AWS::Events::EventBus", {"Properties": {"Name": GOVERNANCE_BUS_NAME}}).values()
    policy: dict[str, Any] = bus["Properties"]["Policy"]
    return policy


def deny_statements(accounts: list[Any]) -> list[dict[str, Any]]:
    return [
        {
            "Sid": BUS_POLICY_DENY_OTHER_ACCOUNTS_SID,
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": "events:PutEvents",
            "Resource": BUS_ARN,
            "Condition": {"StringNotEquals": {"aws:PrincipalAccount": accounts}},
        },
        {
            "Sid": BUS_POLICY_DENY_OTHER_SOURCES_SID,
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": "events:PutEvents",
            "Resource": BUS_ARN,
            "Condition": {"ForAnyValue:StringNotEquals": {"events:source": ["aws.cloudwatch", "aws.ec2"]}},
        },
    ]


def by_sid(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # The policy's own order, keys compared as a dict (the synthesized JSON orders them alphabetically).
    return [dict(statement) for statement in statements]


# ---- what the policy says ------------------------------------------------------------------------------------------


def test_the_bus_denies_other_accounts_and_sources_the_forwarders_never_send(home_template: Template) -> None:
    policy = bus_policy(home_template)

    assert policy["Version"] == "2012-10-17"
    assert by_sid(policy["Statement"]) == deny_statements([ACCOUNT_REF])
    # One document on the bus: no separate AWS::Events::EventBusPolicy to drift from it.
    assert home_template.find_resources("AWS::Events::EventBusPolicy") == {}


def test_the_forwarded_sources_are_exactly_those_of_the_forwarding_rules() -> None:
    sources = {source for pattern in (*FORWARDING_PATTERNS.values(), ALARM_RAISED) for source in pattern["source"]}

    assert sources == {"aws.ec2", "aws.cloudwatch"}
    assert FORWARDED_SOURCES == ("aws.cloudwatch", "aws.ec2")


def test_the_forwarders_send_only_forwarded_sources_through_a_role_of_this_account(
    audit_app: BuiltApp, forwarder_region: str
) -> None:
    template = audit_app.template(audit_app.forwarder(forwarder_region))
    rules = template.find_resources("AWS::Events::Rule")
    roles = set(template.find_resources("AWS::IAM::Role"))

    for logical_id, rule in rules.items():
        properties = rule["Properties"]
        [target] = properties["Targets"]
        # Every rule of the forwarder stack forwards to the bus, as a role of the same stack (this account)...
        assert target["RoleArn"]["Fn::GetAtt"][0] in roles, logical_id
        # ...and only events whose source the bus lets in.
        assert set(properties["EventPattern"]["source"]) <= set(FORWARDED_SOURCES), logical_id


def bus_statements_checked(template: dict[str, Any]) -> int:
    statements = template_statements(template, stack_name="AmiGovernanceHome", region=HOME)
    return sum(1 for statement in statements if statement.kind is PolicyKind.BUS)


def test_the_policy_passes_the_authorization_check(audit_app: BuiltApp) -> None:
    template = audit_app.template(audit_app.home).to_json()

    findings = check_template(template, stack_name="AmiGovernanceHome", region=HOME, reference=load_reference())

    assert bus_statements_checked(template) == 2
    assert findings == []


# ---- what it does to a caller ------------------------------------------------------------------------------------


def _string_not_equals(value: str, allowed: Sequence[str]) -> bool:
    return value not in allowed


def denied(policy: Mapping[str, Any], *, principal_account: str, sources: Sequence[str]) -> bool:
    """Whether one of the policy's Denies matches a PutEvents by a principal of `principal_account` whose entries
    have `sources`, evaluated as IAM does for the two operators the policy uses (anything else fails the test)."""
    context: dict[str, Any] = {"aws:PrincipalAccount": principal_account, "events:source": list(sources)}
    for statement in policy["Statement"]:
        if statement["Effect"] != "Deny":
            continue
        assert statement["Principal"] == {"AWS": "*"}
        assert statement["Action"] == "events:PutEvents"
        matched = True
        for operator, conditions in statement["Condition"].items():
            for key, values in conditions.items():
                allowed = [v if isinstance(v, str) else THIS_ACCOUNT for v in values]
                if operator == "StringNotEquals":
                    matched &= _string_not_equals(context[key], allowed)
                elif operator == "ForAnyValue:StringNotEquals":
                    # True when at least one of the request's values is none of the policy's (false without any).
                    matched &= any(_string_not_equals(value, allowed) for value in context[key])
                else:
                    pytest.fail(f"operator {operator} is not evaluated by this test")
        if matched:
            return True
    return False


CALLERS = [
    # (who, principal account, sources of the call's entries, denied)
    ("this account's forwarder role, EC2 events", THIS_ACCOUNT, ["aws.ec2"], False),
    ("this account's forwarder role, an alarm", THIS_ACCOUNT, ["aws.cloudwatch"], False),
    ("this account's forwarder role, both in one call", THIS_ACCOUNT, ["aws.ec2", "aws.cloudwatch"], False),
    ("another account, EC2-shaped events", OUTSIDER, ["aws.ec2"], True),
    ("another account, its own source", OUTSIDER, ["com.example.forged"], True),
    ("a principal of this account, a custom source", THIS_ACCOUNT, ["com.example.forged"], True),
    ("a principal of this account, one forged entry among real ones", THIS_ACCOUNT, ["aws.ec2", "forged"], True),
]


@pytest.mark.parametrize(("who", "account", "sources", "expected"), CALLERS, ids=[c[0] for c in CALLERS])
def test_who_may_put_events_on_the_bus(
    home_template: Template, who: str, account: str, sources: list[str], expected: bool
) -> None:
    assert denied(bus_policy(home_template), principal_account=account, sources=sources) is expected


# ---- the Organization scale-out ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def member_accounts_template(audit_app: BuiltApp) -> Template:
    """A home stack that also takes the forwarders of one member account (the documented scale-out)."""
    stack = AmiGovernanceHomeStack(
        App(), "AmiGovernanceHome", policy=audit_app.policy, forwarder_accounts=[MEMBER_ACCOUNT],
        env=Environment(region=HOME),
    )  # fmt: skip
    return Template.from_stack(stack)


def test_member_accounts_are_named_in_the_deny_and_let_in_for_forwarded_sources_only(
    member_accounts_template: Template,
) -> None:
    statements = bus_policy(member_accounts_template)["Statement"]

    assert by_sid(statements[:2]) == deny_statements([ACCOUNT_REF, MEMBER_ACCOUNT])
    assert statements[2:] == [
        {
            "Sid": BUS_POLICY_ALLOW_FORWARDER_ACCOUNTS_SID,
            "Effect": "Allow",
            "Principal": {"AWS": {"Fn::Join": ["", ["arn:", PARTITION_REF, f":iam::{MEMBER_ACCOUNT}:root"]]}},
            "Action": "events:PutEvents",
            "Resource": BUS_ARN,
            "Condition": {
                "ForAllValues:StringEquals": {"events:source": ["aws.cloudwatch", "aws.ec2"]},
                "Null": {"events:source": "false"},
            },
        }
    ]
    policy = bus_policy(member_accounts_template)
    assert denied(policy, principal_account=MEMBER_ACCOUNT, sources=["aws.ec2"]) is False
    assert denied(policy, principal_account=OUTSIDER, sources=["aws.ec2"]) is True


def test_the_member_accounts_policy_passes_the_authorization_check(member_accounts_template: Template) -> None:
    template = member_accounts_template.to_json()

    findings = check_template(template, stack_name="AmiGovernanceHome", region=HOME, reference=load_reference())

    assert bus_statements_checked(template) == 3
    assert findings == []
