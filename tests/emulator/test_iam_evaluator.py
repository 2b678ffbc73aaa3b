"""The emulator's IAM evaluation (iam-simulate in its Node process) on the requests the builder makes: allow,
implicit and explicit deny, condition keys absent from a request, keys an action does not support, resource tags,
a key policy for EventBridge, and the refusals in each service's error shape."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import botocore.session
import pytest
from botocore.parsers import create_parser

from emulator.iam.enforcement import Denial, Enforcer, PolicyRegistry, error_response, simulation
from emulator.iam.evaluator import ALLOWED, EXPLICIT_DENY, IMPLICIT_DENY, Evaluator
from emulator.iam.requests import Call, Key, authorizations
from tests.emulator.test_iam_requests import ACCOUNT, CALLER, TOPIC, FakeState

IMAGES = "arn:aws:ec2:us-east-1::image/*"
OWNED = {"StringEquals": {"ec2:Owner": ACCOUNT}}
OWN_KEYS = {"ForAllValues:StringLike": {"aws:TagKeys": ["gov:*"]}, "Null": {"aws:TagKeys": "false"}}


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action: str | list[str], resource: str = IMAGES, /, **condition: Any) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": "Allow", "Action": action, "Resource": resource}
    if condition:
        statement["Condition"] = condition
    return statement


STATE = FakeState(
    tags={("us-east-1", "ami-1"): {"gov:protected": "true"}, ("us-east-1", "ami-2"): {}},
    owners={("us-east-1", "ami-1"): ACCOUNT, ("us-east-1", "ami-2"): ACCOUNT},
)


@pytest.fixture(scope="module")
def evaluator() -> Iterator[Evaluator]:
    running = Evaluator().start()
    yield running
    running.stop()


def decide(evaluator: Evaluator, document: dict[str, Any], operation: str, params: dict[str, Any]) -> list[str]:
    call = Call("ec2", operation, "us-east-1", params, CALLER)
    policies = [{"name": "p", "policy": document}]
    return [evaluator.evaluate(simulation(CALLER, r, policies)).result for r in authorizations(call, STATE)]


def tagging(resource: str, *keys: str, values: bool = True) -> dict[str, Any]:
    return {"ResourceId": [resource], "Tag": [{"Key": k, **({"Value": "v"} if values else {})} for k in keys]}


def test_allowed_within_the_statement(evaluator: Evaluator) -> None:
    document = policy(allow("ec2:CreateTags", **OWN_KEYS, **OWNED))
    assert decide(evaluator, document, "CreateTags", tagging("ami-2", "gov:state")) == [ALLOWED]


def test_implicitly_denied_outside_it(evaluator: Evaluator) -> None:
    document = policy(allow("ec2:CreateTags", **OWN_KEYS, **OWNED))
    assert decide(evaluator, document, "CreateTags", tagging("ami-2", "gov:state", "Owner")) == [IMPLICIT_DENY]
    assert decide(evaluator, document, "DeleteTags", tagging("ami-2", "gov:state")) == [IMPLICIT_DENY]


def test_explicit_deny_wins(evaluator: Evaluator) -> None:
    deny = {"Effect": "Deny", "Action": "ec2:CreateTags", "Resource": IMAGES,
            "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": ["gov:protected"]}}}  # fmt: skip
    document = policy(allow("ec2:CreateTags", **OWN_KEYS), deny)
    assert decide(evaluator, document, "CreateTags", tagging("ami-2", "gov:protected")) == [EXPLICIT_DENY]
    assert decide(evaluator, document, "CreateTags", tagging("ami-2", "gov:state")) == [ALLOWED]


def test_a_condition_key_absent_from_the_request(evaluator: Evaluator) -> None:
    # DeleteTags without keys deletes every tag: no aws:TagKeys in the request, so the Null condition refuses it
    # (ForAllValues alone would be true for the empty set).
    document = policy(allow("ec2:DeleteTags", **OWN_KEYS))
    assert decide(evaluator, document, "DeleteTags", {"ResourceId": ["ami-2"]}) == [IMPLICIT_DENY]
    assert decide(evaluator, document, "DeleteTags", tagging("ami-2", "gov:state", values=False)) == [ALLOWED]
    without_null = policy(allow("ec2:DeleteTags", **{"ForAllValues:StringLike": {"aws:TagKeys": ["gov:*"]}}))
    assert decide(evaluator, without_null, "DeleteTags", {"ResourceId": ["ami-2"]}) == [ALLOWED]


def test_ec2_owner_on_delete_tags_denies_every_call(evaluator: Evaluator) -> None:
    # The builder gives ec2:Owner, but DeleteTags does not support it: AWS (and the evaluator) drop it, and the
    # StringEquals on an absent key never matches. CreateTags supports it.
    document = policy(allow("ec2:DeleteTags", **OWNED), allow("ec2:CreateTags", **OWNED))
    assert decide(evaluator, document, "DeleteTags", tagging("ami-2", "gov:state", values=False)) == [IMPLICIT_DENY]
    assert decide(evaluator, document, "CreateTags", tagging("ami-2", "gov:state")) == [ALLOWED]
    call = Call("ec2", "DeleteTags", "us-east-1", tagging("ami-2", "gov:state", values=False), CALLER)
    [request] = authorizations(call, STATE)
    decision = evaluator.evaluate(simulation(CALLER, request, [{"name": "p", "policy": document}]))
    assert "ec2:owner" in [key.lower() for key in decision.ignored_context_keys]


def test_resource_tags_are_the_resources_current_tags(evaluator: Evaluator) -> None:
    unprotected = {"Null": {"aws:ResourceTag/gov:protected": "true"}}
    document = policy(allow("ec2:DeregisterImage", **unprotected, **OWNED))
    assert decide(evaluator, document, "DeregisterImage", {"ImageId": "ami-1"}) == [IMPLICIT_DENY]
    assert decide(evaluator, document, "DeregisterImage", {"ImageId": "ami-2"}) == [ALLOWED]


EVENTS_KEY = "arn:aws:kms:us-east-1:123456789012:key/k-1"


def key_policy(condition: dict[str, Any]) -> dict[str, Any]:
    return policy(
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*", "Resource": "*"},
        {"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
         "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*", "Condition": condition},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("condition", "refused"),
    [
        ({"StringLike": {"kms:EncryptionContext:aws:sns:topicArn": f"arn:aws:sns:us-east-1:{ACCOUNT}:*"}}, False),
        ({"StringEquals": {"aws:SourceAccount": ACCOUNT}}, True),
        ({"StringLike": {"kms:EncryptionContext:aws:sns:topicArn": f"arn:aws:sns:eu-west-1:{ACCOUNT}:*"}}, True),
    ],
    ids=["encryption-context", "source-account-never-sent", "another-region's-topics"],
)
def test_eventbridge_publishing_to_an_encrypted_topic_needs_the_key_policy(
    evaluator: Evaluator, condition: dict[str, Any], refused: bool
) -> None:
    state = FakeState(keys={"alias/n": Key(EVENTS_KEY, key_policy(condition))}, topic_keys={TOPIC: "alias/n"})
    enforcer = Enforcer(ACCOUNT, evaluator, PolicyRegistry(), lambda _: None, state)
    refusal = enforcer.eventbridge_publish_refusal(TOPIC)
    if refused:
        assert refusal == (
            "User: events.amazonaws.com is not authorized to perform: kms:GenerateDataKey on resource: "
            f"{EVENTS_KEY} because no resource-based policy allows the kms:GenerateDataKey action"
        )
        assert [d.authorization.action for d in enforcer.denials if d.authorization] == ["kms:GenerateDataKey"]
    else:
        assert refusal is None
        assert enforcer.denials == []


def _parsed_error(service: str, denial: Denial) -> dict[str, Any]:
    response = error_response(denial)
    model = botocore.session.get_session().get_service_model(service)
    parser = create_parser(model.metadata["protocol"])
    headers = dict(response.headers)
    parsed = parser.parse(
        {"status_code": response.status, "headers": headers, "body": response.body},
        None,  # type: ignore[arg-type]  # an error response needs no output shape
    )
    return {"status": response.status, **parsed["Error"]}


@pytest.mark.parametrize(
    ("service", "code", "status"),
    [
        ("ec2", "UnauthorizedOperation", 403),
        ("dynamodb", "AccessDeniedException", 400),
        ("ssm", "AccessDeniedException", 400),
        ("kms", "AccessDeniedException", 400),
        ("sns", "AuthorizationError", 403),
        ("sqs", "AccessDenied", 403),
        ("autoscaling", "AccessDenied", 403),
        ("s3", "AccessDenied", 403),
    ],
)
def test_refusals_parse_as_the_services_errors(service: str, code: str, status: int) -> None:
    denial = Denial(Call(service, "Op", "us-east-1", {}, CALLER), None, None, "User: x is not authorized")
    parsed = _parsed_error(service, denial)
    assert parsed["status"] == status
    assert parsed["Code"] == code
    expected = "You are not authorized to perform this operation. " if service == "ec2" else ""
    assert parsed["Message"] == f"{expected}User: x is not authorized"


REPLICA_KEY = "arn:aws:kms:eu-west-1:123456789012:key/k-2"
ROOT_ONLY = policy(
    {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*", "Resource": "*"}
)


@pytest.mark.parametrize(("via_region", "allowed"), [("eu-west-1", True), ("us-east-1", False)])
def test_a_copy_uses_its_key_only_through_ec2_in_the_keys_region(
    evaluator: Evaluator, via_region: str, allowed: bool
) -> None:
    # The copy role's statements on a key named by alias: any key of the region, narrowed by kms:ResourceAliases
    # (a key of the resource type, which KMS's actions support) and used only through EC2 there.
    via = {
        "StringEquals": {"kms:ViaService": f"ec2.{via_region}.amazonaws.com"},
        "ForAnyValue:StringEquals": {"kms:ResourceAliases": ["alias/replicas"]},
    }
    keys = "arn:aws:kms:eu-west-1:123456789012:key/*"
    document = policy(
        allow("ec2:CopyImage", "*"),
        allow("ec2:CreateTags", "*"),
        allow(["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncrypt*"], keys, **via),
        allow("kms:CreateGrant", keys, **via, Bool={"kms:GrantIsForAWSResource": "true"}),
    )
    state = FakeState(
        owners={("us-east-1", "ami-2"): ACCOUNT},
        keys={"alias/replicas": Key(REPLICA_KEY, ROOT_ONLY, ("alias/replicas",))},
    )
    params = {"SourceImageId": "ami-2", "SourceRegion": "us-east-1", "KmsKeyId": "alias/replicas", "Encrypted": "true"}
    requests = authorizations(Call("ec2", "CopyImage", "eu-west-1", params, CALLER), state)
    results = {
        r.action: evaluator.evaluate(simulation(CALLER, r, [{"name": "p", "policy": document}])).result
        for r in requests
    }
    kms_actions = ["kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKeyWithoutPlaintext",
                   "kms:ReEncryptFrom", "kms:ReEncryptTo"]  # fmt: skip
    assert results == {"ec2:CopyImage": ALLOWED, **dict.fromkeys(kms_actions, ALLOWED if allowed else IMPLICIT_DENY)}


def test_a_key_policy_that_does_not_delegate_to_iam_refuses_what_the_role_allows(evaluator: Evaluator) -> None:
    no_delegation = policy()
    state = FakeState(owners={("us-east-1", "ami-2"): ACCOUNT}, keys={REPLICA_KEY: Key(REPLICA_KEY, no_delegation)})
    document = policy(allow("ec2:CopyImage", "*"), allow("kms:*", "*"))
    params = {"SourceImageId": "ami-2", "SourceRegion": "us-east-1", "KmsKeyId": REPLICA_KEY}
    requests = authorizations(Call("ec2", "CopyImage", "eu-west-1", params, CALLER), state)
    results = [evaluator.evaluate(simulation(CALLER, r, [{"name": "p", "policy": document}])).result for r in requests]
    assert results == [ALLOWED, ALLOWED] + [IMPLICIT_DENY] * 6


# The governance bus's policy as stacks/home_stack.py writes it (tests/infra/test_home_bus_policy.py checks that).
BUS = f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/ami-governance"
BUS_POLICY = policy(
    {"Sid": "OnlyTheForwardersAccounts", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "events:PutEvents",
     "Resource": BUS, "Condition": {"StringNotEquals": {"aws:PrincipalAccount": [ACCOUNT]}}},
    {"Sid": "OnlyTheForwardedSources", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "events:PutEvents",
     "Resource": BUS, "Condition": {"ForAnyValue:StringNotEquals": {"events:source": ["aws.ec2", "aws.cloudwatch"]}}},
)  # fmt: skip
PRINCIPALS = {
    "forwarder": f"arn:aws:sts::{ACCOUNT}:assumed-role/ForwarderRole/events",
    "outsider": "arn:aws:iam::444455556666:user/mallory",
}


def put_events(enforcer: Enforcer, access_key: str, *entries: tuple[str, str]) -> Denial | None:
    """PutEvents signed with `access_key`, one entry per (bus, source)."""
    body = {"Entries": [{"Source": source, "DetailType": "d", "Detail": "{}", "EventBusName": bus}
                        for bus, source in entries]}  # fmt: skip
    environ = {
        "HTTP_AUTHORIZATION": f"AWS4-HMAC-SHA256 Credential={access_key}/20261201/us-east-1/events/aws4_request, x",
        "HTTP_X_AMZ_TARGET": "AWSEvents.PutEvents",
    }
    return enforcer.put_events_refusal(environ, json.dumps(body).encode(), PRINCIPALS.__getitem__)


@pytest.mark.parametrize(
    ("access_key", "entries", "refused"),
    [
        ("forwarder", [("ami-governance", "aws.ec2")], False),
        ("forwarder", [("ami-governance", "aws.cloudwatch"), ("ami-governance", "aws.ec2")], False),
        ("forwarder", [("ami-governance", "com.example.forged")], True),
        ("forwarder", [("ami-governance", "aws.ec2"), ("ami-governance", "com.example.forged")], True),
        ("outsider", [("ami-governance", "aws.ec2")], True),
        ("forwarder", [("default", "com.example.mine")], False),
        ("outsider", [("default", "aws.ec2")], True),
    ],
    ids=[
        "forwarded-ec2",
        "forwarded-both",
        "own-source",
        "one-forged-entry",
        "another-account",
        "no-bus-policy",
        "another-account-no-policy",
    ],
)
def test_the_governance_bus_policy_admits_only_this_accounts_forwarded_sources(
    evaluator: Evaluator, access_key: str, entries: list[tuple[str, str]], refused: bool
) -> None:
    state = FakeState(bus_policies={("us-east-1", "ami-governance"): BUS_POLICY})
    enforcer = Enforcer(ACCOUNT, evaluator, PolicyRegistry(), lambda _: None, state)

    denial = put_events(enforcer, access_key, *entries)

    if not refused:
        assert denial is None
        return
    assert denial is not None
    assert denial.authorization is not None
    assert denial.authorization.action == "events:PutEvents"
    assert denial.message.startswith(f"User: {PRINCIPALS[access_key]} is not authorized to perform: events:PutEvents")
    assert _parsed_error("events", denial) == {
        "status": 400,
        "Code": "AccessDeniedException",
        "Message": denial.message,
    }
