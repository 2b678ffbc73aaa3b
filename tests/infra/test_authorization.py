"""The offline authorization check (tests/iam/authorization.py) on every stack of every synthesized variant, and
proof that it catches the defects it exists for: a condition key the action does not support (ec2:Owner on
ec2:DeleteTags) and a key policy EventBridge cannot use to publish to an encrypted topic."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aws_cdk.assertions import Template

from ami_governance.models.policy import GovernancePolicy, load_policy_file
from stacks.constructs.routed_rule import RULES_MAY_USE_KEY_SID
from stacks.permissions import cleanup_permissions, copy_permissions, enforce_permissions
from stacks.resource_names import HOME_STACK_NAME, forwarder_stack_name
from tests.iam.authorization import (
    EXTRA_CHECKS,
    SUPPORTED_ELSEWHERE,
    Finding,
    check_statements,
    check_template,
)
from tests.iam.reference import AuthorizationReference, load_reference
from tests.iam.statements import PolicyKind, Statement
from tests.infra.conftest import POLICY_FILE
from tests.infra.support import (
    APP_FIXTURES,
    REPLICATION_SOURCE_ONLY_REGIONS,
    REPLICATION_TARGETS,
    resolved_statements,
)

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

REGION = "us-east-1"
ACCOUNT = {"Ref": "AWS::AccountId"}


def _stack_names(app_fixture: str) -> list[str]:
    # The stacks each variant builds (conftest): the replication app governs its own regions, the others the
    # repository policy's. test_every_stack_of_every_variant_is_checked keeps this in step with the fixtures.
    repository = load_policy_file(POLICY_FILE)
    governed = (
        (*REPLICATION_SOURCE_ONLY_REGIONS, *REPLICATION_TARGETS)
        if app_fixture == "replication_app"
        else tuple(repository.governed_regions)
    )
    return [HOME_STACK_NAME] + [forwarder_stack_name(r) for r in governed if r != repository.home_region]


VARIANT_STACKS = [(app_fixture, stack) for app_fixture in APP_FIXTURES for stack in _stack_names(app_fixture)]


@pytest.fixture(scope="module")
def reference() -> AuthorizationReference:
    return load_reference()


def _report(findings: list[Finding]) -> str:
    return "\n".join(["", *(f"  {finding}" for finding in findings)])


def _policy_template(*statements: dict[str, Any]) -> dict[str, Any]:
    """A template holding `statements` as one identity policy."""
    return {
        "Resources": {
            "Role": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {"Statement": []}}},
            "Permissions": {
                "Type": "AWS::IAM::Policy",
                "Properties": {
                    "PolicyDocument": {"Version": "2012-10-17", "Statement": list(statements)},
                    "Roles": [{"Ref": "Role"}],
                },
            },
        }
    }


def _check(reference: AuthorizationReference, *statements: dict[str, Any]) -> list[Finding]:
    return check_template(_policy_template(*statements), stack_name="Probe", region=REGION, reference=reference)


def _topic_key_template(key_statement: dict[str, Any], *, encrypts_topic: bool = True) -> dict[str, Any]:
    resources: dict[str, Any] = {
        "Key": {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": {"Statement": [key_statement]}}},
    }
    if encrypts_topic:
        resources["Topic"] = {
            "Type": "AWS::SNS::Topic",
            "Properties": {"KmsMasterKeyId": {"Fn::GetAtt": ["Key", "Arn"]}},
        }
    return {"Resources": resources}


# --- every stack of every variant -------------------------------------------------------------------------------


@pytest.mark.parametrize(("app_fixture", "stack_name"), VARIANT_STACKS)
def test_every_statement_is_authorized_by_the_reference(
    app_fixture: str, stack_name: str, request: pytest.FixtureRequest, reference: AuthorizationReference
) -> None:
    # Given one synthesized stack of one policy variant
    built: Any = request.getfixturevalue(app_fixture)
    stack = built.stack(stack_name)
    template = Template.from_stack(stack).to_json()

    # When every IAM statement in it (roles, trust, key, topic, queue, bus policies, function permissions) is
    # checked against the service authorization reference and the extra checks
    findings = check_template(template, stack_name=stack_name, region=stack.region, reference=reference)

    # Then there is nothing to report
    assert findings == [], _report(findings)


@pytest.mark.parametrize("app_fixture", APP_FIXTURES)
def test_every_stack_of_every_variant_is_checked(app_fixture: str, request: pytest.FixtureRequest) -> None:
    built: Any = request.getfixturevalue(app_fixture)
    assert sorted(stack.stack_name for stack in built.stacks) == sorted(_stack_names(app_fixture))


# --- ec2:DeleteTags under ec2:Owner -----------------------------------------------------------------------------

IMAGES_AND_SNAPSHOTS = [
    "arn:aws:ec2:us-east-1::image/*",
    "arn:aws:ec2:eu-west-1::image/*",
    "arn:aws:ec2:us-east-1::snapshot/*",
    "arn:aws:ec2:eu-west-1::snapshot/*",
]
OWN_TAG_KEYS = {
    "ForAllValues:StringLike": {"aws:TagKeys": ["ami-governance:*"]},
    "Null": {"aws:TagKeys": "false"},
}
# The enforce role's tagging statement as it was: DeleteTags shared CreateTags' ec2:Owner condition.
OLD_TAGGING_STATEMENT = {
    "Sid": "WriteOwnTagNamespaceOnly",
    "Effect": "Allow",
    "Action": ["ec2:CreateTags", "ec2:DeleteTags"],
    "Resource": IMAGES_AND_SNAPSHOTS,
    "Condition": {**OWN_TAG_KEYS, "StringEquals": {"ec2:Owner": ACCOUNT}},
}


def test_the_check_fails_on_delete_tags_under_ec2_owner(reference: AuthorizationReference) -> None:
    # Given the old tagging statement, when it is checked
    findings = _check(reference, OLD_TAGGING_STATEMENT)

    # Then DeleteTags is reported on every image and snapshot resource for ec2:Owner, and CreateTags is not
    assert {(f.sid, f.action, f.condition_key, f.resource) for f in findings} == {
        ("WriteOwnTagNamespaceOnly", "ec2:DeleteTags", "ec2:Owner", resource) for resource in IMAGES_AND_SNAPSHOTS
    }
    assert "condition key not supported" in findings[0].problem


def test_the_check_passes_delete_tags_with_tag_key_conditions_only(reference: AuthorizationReference) -> None:
    # Given DeleteTags in a statement of its own, with the tag-key conditions and without ec2:Owner, and the
    # protection-tag Deny on both actions
    delete_tags = {**OLD_TAGGING_STATEMENT, "Action": "ec2:DeleteTags", "Condition": OWN_TAG_KEYS}
    create_tags = {**OLD_TAGGING_STATEMENT, "Action": "ec2:CreateTags"}
    deny = {
        "Effect": "Deny",
        "Action": ["ec2:CreateTags", "ec2:DeleteTags"],
        "Resource": IMAGES_AND_SNAPSHOTS,
        "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": ["ami-governance:protected"]}},
    }

    # Then nothing is reported
    assert _check(reference, create_tags, delete_tags, deny) == []


@pytest.mark.parametrize(
    "permissions",
    [enforce_permissions, cleanup_permissions, copy_permissions],
    ids=["enforce", "cleanup", "copy"],
)
def test_the_check_passes_the_permission_sets_in_every_setting(
    permissions: Callable[[GovernancePolicy, str], Any],
    make_policy: Callable[..., GovernancePolicy],
    reference: AuthorizationReference,
) -> None:
    # Given the permission sets at their widest (enforce mode, deleting and cascading clean-up), without a synth
    policy = make_policy(
        mode="enforce",
        remediation={"action": "deprecate"},
        cleanup={"dry_run": False, "cascade_to_replicas": True},
    )
    statements = resolved_statements(permissions, policy)

    # Then the check reports nothing
    findings = _check(reference, *statements)
    assert findings == [], _report(findings)


# --- the key policy of the notifications topic -------------------------------------------------------------------

EVENTS = {"Service": "events.amazonaws.com"}
# The key policy statement as it was: EventBridge may use the key only under aws:SourceAccount.
OLD_KEY_STATEMENT = {
    "Sid": RULES_MAY_USE_KEY_SID,
    "Effect": "Allow",
    "Principal": EVENTS,
    "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
    "Resource": "*",
    "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
}


def test_the_check_fails_on_a_source_condition_for_eventbridge_on_a_topic_key(
    reference: AuthorizationReference,
) -> None:
    # Given the old key policy statement on the key of an SNS topic, when the template is checked
    findings = check_template(
        _topic_key_template(OLD_KEY_STATEMENT), stack_name="Probe", region=REGION, reference=reference
    )

    # Then the extra check reports the condition (the reference alone accepts it: aws:SourceAccount is global)
    assert [(f.sid, f.condition_key) for f in findings] == [(RULES_MAY_USE_KEY_SID, "aws:SourceAccount")]
    assert findings[0].problem.startswith("EventBridge to a KMS-encrypted SNS topic")

    # And so would aws:SourceArn and aws:SourceOrgID
    for key in ("aws:SourceArn", "aws:SourceOrgID"):
        statement = {**OLD_KEY_STATEMENT, "Condition": {"StringEquals": {key: "x"}}}
        template = _topic_key_template(statement)
        findings = check_template(template, stack_name="Probe", region=REGION, reference=reference)
        assert [f.condition_key for f in findings] == [key]


def test_the_source_condition_rule_is_about_topic_keys_only(reference: AuthorizationReference) -> None:
    # Given the same statement on a key that encrypts no topic of the template (an event bus key, say, where
    # EventBridge documents aws:SourceArn), then it is not reported
    template = _topic_key_template(OLD_KEY_STATEMENT, encrypts_topic=False)
    assert check_template(template, stack_name="Probe", region=REGION, reference=reference) == []


def test_the_check_passes_the_key_policy_as_deployed(
    home_template: Template, reference: AuthorizationReference
) -> None:
    # Given the home stack's key policy statement for EventBridge
    [key] = home_template.find_resources("AWS::KMS::Key").values()
    [statement] = [s for s in key["Properties"]["KeyPolicy"]["Statement"] if s.get("Principal") == EVENTS]
    template = home_template.to_json()

    # Then it is scoped by the topic encryption context, which the reference lists for both actions
    assert list(statement["Condition"]) == ["StringLike"]
    assert list(statement["Condition"]["StringLike"]) == ["kms:EncryptionContext:aws:sns:topicArn"]
    findings = check_template(template, stack_name=HOME_STACK_NAME, region=REGION, reference=reference)
    assert [f for f in findings if f.sid == RULES_MAY_USE_KEY_SID] == []


# --- the check's other rules -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("statement", "problem"),
    [
        ({"Action": "ec2:DeleteTag", "Resource": "*"}, "no such action"),
        ({"Action": "ec2:Deregister*Snapshots", "Resource": "*"}, "no such action"),
        ({"Action": "sqs:SendMessage", "Resource": "arn:aws:sns:us-east-1:123456789012:topic"}, "matches none"),
        ({"Action": "sns:Publish", "Resource": "*"}, "matches none"),
        ({"Action": "ec2:DeleteSnapshot", "Resource": "arn:aws:ec2:us-east-1::image/*"}, "matches none"),
        (
            {
                "Action": "sqs:SendMessage",
                "Resource": "arn:aws:sqs:us-east-1:123456789012:queue",
                "Condition": {"ForAnyValue:StringEquals": {"kms:ResourceAliases": ["alias/x"]}},
            },
            "condition key not supported",
        ),
        (
            {
                "Action": "ec2:DescribeImages",
                "Resource": "*",
                "Condition": {"StringEquals": {"ec2:Owner": "123456789012"}},
            },
            "condition key not supported",
        ),
        (
            # The tag keys are global in name only: DescribeImages carries no aws:ResourceTag.
            {
                "Action": "ec2:DescribeImages",
                "Resource": "*",
                "Condition": {"Null": {"aws:ResourceTag/ami-governance:protected": "true"}},
            },
            "condition key not supported",
        ),
        ({"Action": "sqs:SendMessage", "Resource": {"Fn::GetAtt": ["Missing", "Arn"]}}, "no resource 'Missing'"),
        # CopyImage on an image depends on CreateTags (tags at creation), which this role lacks.
        ({"Action": "ec2:CopyImage", "Resource": "arn:aws:ec2:eu-west-1::image/*"}, "lacks ec2:CreateTags"),
    ],
)
def test_the_check_reports(statement: dict[str, Any], problem: str, reference: AuthorizationReference) -> None:
    findings = _check(reference, {"Sid": "Probe", "Effect": "Allow", **statement})
    assert findings, statement
    assert all(problem in f.problem for f in findings), _report(findings)


@pytest.mark.parametrize(
    "statement",
    [
        {"Action": "ec2:Describe*", "Resource": "*", "Condition": {"StringEquals": {"aws:RequestedRegion": "x"}}},
        {"Action": "xray:PutTraceSegments", "Resource": "*"},
        {
            "Action": "ec2:DisableImage",
            "Resource": "arn:aws:ec2:eu-west-1::image/*",
            "Condition": {"Null": {"aws:ResourceTag/ami-governance:protected": "true", "ec2:ResourceTag/a/b": "true"}},
        },
        {
            "Action": "ec2:CreateTags",
            "Resource": "arn:aws:ec2:eu-west-1::snapshot/*",
            "Condition": {"StringEquals": {"ec2:CreateAction": "CopyImage", "ec2:Owner": "123456789012"}},
        },
        {
            "Action": ["kms:Decrypt", "kms:ReEncrypt*"],
            "Resource": "arn:aws:kms:eu-west-1:123456789012:key/*",
            "Condition": {
                "StringEquals": {"kms:ViaService": "ec2.eu-west-1.amazonaws.com"},
                "ForAnyValue:StringEquals": {"kms:ResourceAliases": ["alias/x"]},
            },
        },
        {
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/f:*",
        },
    ],
)
def test_the_check_accepts(statement: dict[str, Any], reference: AuthorizationReference) -> None:
    findings = _check(reference, {"Sid": "Probe", "Effect": "Allow", **statement})
    assert findings == [], _report(findings)


def test_resource_policies_are_checked_with_their_own_resource(reference: AuthorizationReference) -> None:
    # Given a queue policy whose statement names no resource ('*'), and one granting a topic action on it
    statement = {"Effect": "Allow", "Principal": EVENTS, "Resource": "*"}
    template = {
        "Resources": {
            "Queue": {"Type": "AWS::SQS::Queue", "Properties": {}},
            "QueuePolicy": {
                "Type": "AWS::SQS::QueuePolicy",
                "Properties": {
                    "Queues": [{"Ref": "Queue"}],
                    "PolicyDocument": {
                        "Statement": [
                            {**statement, "Sid": "Fine", "Action": "sqs:SendMessage"},
                            {**statement, "Sid": "WrongService", "Action": "sns:Publish"},
                        ]
                    },
                },
            },
        }
    }

    # Then '*' stands for the queue: SendMessage is fine there, Publish is not
    findings = check_template(template, stack_name="Probe", region=REGION, reference=reference)
    assert [(f.sid, f.resource) for f in findings] == [("WrongService", "arn:aws:sqs:us-east-1:123456789012:Queue")]


def _statement(conditions: dict[str, Any], *, effect: str = "Allow") -> Statement:
    return Statement(
        where="Probe",
        kind=PolicyKind.IDENTITY,
        sid="Probe",
        effect=effect,
        actions=("ec2:DeleteTags",),
        resources=("arn:aws:ec2:us-east-1::snapshot/*",),
        conditions=conditions,
    )


@pytest.mark.parametrize(
    ("conditions", "problem"),
    [
        ({"ForAllValues:StringLike": {"aws:TagKeys": ["p:*"]}}, "add Null"),
        ({"StringLike": {"aws:TagKeys": "p:*"}}, "needs ForAllValues or ForAnyValue"),
        ({"ForAnyValue:StringEquals": {"aws:RequestedRegion": ["eu-west-1"]}}, "single-valued key"),
    ],
)
def test_the_extra_checks_report(conditions: dict[str, Any], problem: str, reference: AuthorizationReference) -> None:
    findings = check_statements([_statement(conditions)], reference)
    assert [problem in f.problem for f in findings] == [True], _report(findings)


def test_the_extra_checks_and_the_allowlist_carry_their_sources() -> None:
    # (an entry without the AWS documentation that shows it works does not belong in either)
    for check in EXTRA_CHECKS:
        assert check.rule, check.name
        assert "https://docs.aws.amazon.com/" in check.source, check.name
    for entry in SUPPORTED_ELSEWHERE:
        assert entry.reason, entry.condition_key
        assert "https://docs.aws.amazon.com/" in entry.source, entry.condition_key


def test_every_allowlisted_key_is_one_the_reference_leaves_out(reference: AuthorizationReference) -> None:
    # Given each allowlist entry, then the reference lists the key for the resource type itself but not in every
    # row of an action on that type (else the entry would be needless)
    for entry in SUPPORTED_ELSEWHERE:
        assert entry.condition_key in reference.resource_type_keys(entry.service, entry.resource_type)
        rows = [
            action.resource_types[entry.resource_type] | action.any_resource_keys
            for action in reference.actions(f"{entry.service}:*")
            if entry.resource_type in action.resource_types
        ]
        assert any(entry.condition_key not in row for row in rows), entry.condition_key


def test_the_reference_keeps_the_per_action_rows_apart_from_the_resource_type(
    reference: AuthorizationReference,
) -> None:
    # The difference the check rests on: the image resource type lists ec2:Owner, DeleteTags' image row does not
    [delete_tags] = reference.actions("ec2:DeleteTags")
    [create_tags] = reference.actions("ec2:CreateTags")
    assert "ec2:Owner" in reference.resource_type_keys("ec2", "image")
    assert "ec2:Owner" not in delete_tags.resource_types["image"] | delete_tags.any_resource_keys
    assert "ec2:Owner" in create_tags.resource_types["image"]
