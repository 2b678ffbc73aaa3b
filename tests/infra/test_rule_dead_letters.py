"""The dead-letter queue of EventBridge rule targets: its queue policy stays within SQS's policy quotas however many
rules send to it, and lets exactly those rules send.

SQS policy quotas (Amazon SQS Developer Guide, "Amazon SQS policy quotas"): 8,192 bytes, 20 statements,
10 conditions, 50 principals, 7 actions per statement.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Template

from tests.infra.support import APP_FIXTURES, as_list

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

SQS_POLICY_MAX_BYTES = 8192
SQS_POLICY_MAX_STATEMENTS = 20
SQS_POLICY_MAX_CONDITIONS = 10
# The largest a deployed ARN can be here: the longest partition and region names, a 64-character rule name (the
# EventBridge maximum) on the governance bus, an 80-character queue name (the SQS maximum).
LONGEST_RULE_ARN = "arn:aws-us-gov:events:us-gov-west-1:123456789012:rule/ami-governance/" + "r" * 64
LONGEST_QUEUE_ARN = "arn:aws-us-gov:sqs:us-gov-west-1:123456789012:" + "q" * 80
# Allow + the TLS-only deny: a constant, whatever the number of rules.
DEAD_LETTER_POLICY_STATEMENTS = 2


def _dead_letter_queues(template: Template) -> dict[str, list[str]]:
    """Logical id of each queue that rule targets dead-letter to -> the logical ids of those rules."""
    senders: dict[str, list[str]] = {}
    for rule_id, rule in template.find_resources("AWS::Events::Rule").items():
        for target in rule["Properties"]["Targets"]:
            queue_id = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
            senders.setdefault(queue_id, []).append(rule_id)
    return senders


def _policy_of(template: Template, queue_id: str) -> dict[str, Any]:
    [policy] = [
        p["Properties"]["PolicyDocument"]
        for p in template.find_resources("AWS::SQS::QueuePolicy").values()
        if {"Ref": queue_id} in p["Properties"]["Queues"]
    ]
    return policy


def _as_deployed(node: Any, template: Template) -> Any:
    """The policy document with every intrinsic replaced by the longest value it can take when deployed; an
    intrinsic this test does not know fails it, so a new kind of reference cannot slip past the size check."""
    resources = template.to_json()["Resources"]
    if isinstance(node, list):
        return [_as_deployed(item, template) for item in node]
    if isinstance(node, dict):
        if list(node) == ["Fn::GetAtt"] and node["Fn::GetAtt"][1] == "Arn":
            kind = resources[node["Fn::GetAtt"][0]]["Type"]
            return {"AWS::Events::Rule": LONGEST_RULE_ARN, "AWS::SQS::Queue": LONGEST_QUEUE_ARN}[kind]
        assert not any(key.startswith("Fn::") or key == "Ref" for key in node), f"unmodelled intrinsic: {node}"
        return {key: _as_deployed(value, template) for key, value in node.items()}
    return node


@pytest.mark.parametrize("app_fixture", APP_FIXTURES)
def test_rule_dead_letter_queue_policies_stay_bounded_and_allow_exactly_their_rules(
    app_fixture: str, request: pytest.FixtureRequest
) -> None:
    # Given every stack of the app variant, and the queues its rules dead-letter to
    built: Any = request.getfixturevalue(app_fixture)
    for stack in built.stacks:
        template = built.template(stack)
        for queue_id, rule_ids in _dead_letter_queues(template).items():
            policy = _policy_of(template, queue_id)

            # Then the policy has the same two statements however many rules send to the queue
            assert len(policy["Statement"]) == DEAD_LETTER_POLICY_STATEMENTS, (stack.stack_name, policy)
            [allow] = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
            assert allow["Principal"] == {"Service": "events.amazonaws.com"}
            assert allow["Action"] == "sqs:SendMessage"
            assert allow["Resource"] == {"Fn::GetAtt": [queue_id, "Arn"]}

            # And its one condition names every rule that dead-letters to this queue, and no other
            assert list(allow["Condition"]) == ["ArnEquals"]
            assert list(allow["Condition"]["ArnEquals"]) == ["aws:SourceArn"]
            allowed = as_list(allow["Condition"]["ArnEquals"]["aws:SourceArn"])
            assert sorted(json.dumps(arn) for arn in allowed) == sorted(
                json.dumps({"Fn::GetAtt": [rule_id, "Arn"]}) for rule_id in rule_ids
            )

            # And deployed with the longest ARNs possible it is well within SQS's quotas
            deployed = json.dumps(_as_deployed(policy, template), separators=(",", ":"))
            assert len(deployed.encode()) < SQS_POLICY_MAX_BYTES // 2, (stack.stack_name, len(deployed))
            conditions = sum(len(s.get("Condition", {})) for s in policy["Statement"])
            assert conditions <= SQS_POLICY_MAX_CONDITIONS
            assert len(policy["Statement"]) <= SQS_POLICY_MAX_STATEMENTS


def test_the_statement_count_does_not_grow_with_the_number_of_rules(
    no_replication_app: Any, replication_app: Any
) -> None:
    # Given the home stack without replication and with it (two more rules to the same queue)
    def home_dead_letters(built: Any) -> tuple[int, int]:
        template = built.template(built.home)
        [(queue_id, rule_ids)] = [
            (q, r) for q, r in _dead_letter_queues(template).items() if q.startswith("RuleTargetDeadLetters")
        ]
        return len(rule_ids), len(_policy_of(template, queue_id)["Statement"])

    fewer_rules, statements_with_fewer = home_dead_letters(no_replication_app)
    more_rules, statements_with_more = home_dead_letters(replication_app)

    # Then more rules send to the queue, and its policy has as many statements as before
    assert more_rules > fewer_rules
    assert statements_with_more == statements_with_fewer == DEAD_LETTER_POLICY_STATEMENTS
