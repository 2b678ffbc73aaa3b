"""The granted-vs-used check itself (tests/iam): the comparison, the role reading, the call -> action mapping and
the policy variants. The check must be able to fail, so most of these show it failing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ami_governance.models.policy import GovernancePolicy, load_policy_file, parse_policy
from tests.conftest import POLICY_FILE
from tests.iam.api_calls import function_of_handler, iam_actions
from tests.iam.grants import (
    TemplateError,
    Use,
    compare,
    product_functions,
    role_grants,
    template_policy,
    variant_key,
)
from tests.iam.patterns import granted_action_matches
from tests.iam.usage import read_run

AUDIT = "audit"
ENFORCE = "enforce"


def policy(**changes: Any) -> GovernancePolicy:
    document = load_policy_file(POLICY_FILE).model_dump(mode="json")
    document.update(changes)
    return parse_policy(document)


# ---- compare ----------------------------------------------------------------------------------------------


def test_a_call_whose_action_the_role_lacks_is_missing_under_that_variant_only():
    # Given enforce's role grants DisableImage only in the enforce variant, and a test disabled an AMI under each
    grants = {
        ("enforce", AUDIT): frozenset({"ec2:DescribeImages"}),
        ("enforce", ENFORCE): frozenset({"ec2:DescribeImages", "ec2:DisableImage"}),
    }
    uses = [
        Use("enforce", ENFORCE, "ec2:DisableImage", "t_enforce"),
        Use("enforce", AUDIT, "ec2:DisableImage", "t_audit", count=2),
        Use("enforce", AUDIT, "ec2:DescribeImages", "t_audit"),
    ]

    # When compared
    comparison = compare(uses, grants, allowlist={})

    # Then the call made under the audit variant is missing there, and nothing is unused
    [missing] = comparison.missing
    assert (missing.function, missing.action, missing.missing_in) == ("enforce", "ec2:DisableImage", {AUDIT})
    assert missing.tests == {"t_enforce", "t_audit"}
    assert missing.calls == 3
    assert comparison.unused == []


def test_a_granted_action_no_call_used_is_unused_unless_allowlisted():
    # Given a role granting three actions, one of them used and one allowlisted
    grants = {("cleanup", AUDIT): frozenset({"ec2:DescribeImages", "ec2:DeleteTags", "logs:PutLogEvents"})}
    uses = [Use("cleanup", AUDIT, "ec2:DescribeImages", "t")]

    # When compared
    comparison = compare(uses, grants, allowlist={("*", "logs:PutLogEvents"): "Lambda writes the logs"})

    # Then only the unexcused one is unused; the allowlisted one carries its reason
    assert [(r.function, r.action) for r in comparison.unused] == [("cleanup", "ec2:DeleteTags")]
    [logs] = [r for r in comparison.rows if r.action == "logs:PutLogEvents"]
    assert logs.allowed_unused == "Lambda writes the logs"
    assert comparison.missing == []
    assert comparison.stale_allowances == []


def test_an_allowlist_entry_that_excuses_nothing_is_stale():
    # Given an allowance for an action the function does use, and one for an action no role grants
    grants = {("copy", AUDIT): frozenset({"sqs:ChangeMessageVisibility"})}
    uses = [Use("copy", AUDIT, "sqs:ChangeMessageVisibility", "t")]
    allowlist = {("copy", "sqs:ChangeMessageVisibility"): "used anyway", ("copy", "sqs:PurgeQueue"): "granted nowhere"}

    # When compared, then both are stale
    assert compare(uses, grants, allowlist).stale_allowances == sorted(allowlist)


def test_a_wildcard_grant_covers_the_actions_it_matches_case_insensitively():
    # Given kms:GenerateDataKey* granted, and SNS using kms:GenerateDataKey on the publisher's behalf
    grants = {("enforce", AUDIT): frozenset({"kms:GenerateDataKey*", "sns:Publish"})}
    uses = [
        Use("enforce", AUDIT, "sns:Publish", "t"),
        Use("enforce", AUDIT, "KMS:generatedatakey", "t", via="sns:Publish"),
    ]

    # When compared
    comparison = compare(uses, grants, allowlist={})

    # Then nothing is missing or unused, and the wildcard's row says what it was used as
    assert comparison.missing == []
    assert comparison.unused == []
    [row] = [r for r in comparison.rows if r.action == "kms:GenerateDataKey*"]
    assert row.used_as == {"KMS:generatedatakey"}
    assert row.via == {"sns:Publish"}
    assert granted_action_matches("kms:ReEncrypt*", "kms:ReEncryptFrom")
    assert not granted_action_matches("kms:ReEncrypt", "kms:ReEncryptFrom")


def test_calls_of_a_function_the_variant_does_not_deploy_are_noted_not_judged():
    # Given replicate called under a variant without replication (the handler's "replication off" path)
    grants = {("enforce", AUDIT): frozenset({"ec2:DescribeImages"})}
    uses = [Use("enforce", AUDIT, "ec2:DescribeImages", "t"), Use("replicate", AUDIT, "ssm:GetParameter", "t")]

    # When compared, then it is neither missing nor unused
    comparison = compare(uses, grants, allowlist={})
    assert comparison.missing == []
    assert comparison.unused == []
    assert comparison.not_deployed == {("replicate", AUDIT): 1}


# ---- the template's roles --------------------------------------------------------------------------------


def template(*statements: dict[str, Any], role_properties: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "Resources": {
            "EnforceFunction1": {
                "Type": "AWS::Lambda::Function",
                "Properties": {"Handler": "handlers.enforce.handler", "Role": {"Fn::GetAtt": ["EnforceRole1", "Arn"]}},
            },
            "OtherFunction": {"Type": "AWS::Lambda::Function", "Properties": {"Handler": "index.handler"}},
            "EnforceRole1": {"Type": "AWS::IAM::Role", "Properties": role_properties or {}},
            "EnforcePolicy1": {
                "Type": "AWS::IAM::Policy",
                "Properties": {"PolicyDocument": {"Statement": list(statements)}, "Roles": [{"Ref": "EnforceRole1"}]},
            },
            "SomeoneElsesPolicy": {
                "Type": "AWS::IAM::Policy",
                "Properties": {
                    "PolicyDocument": {"Statement": [{"Effect": "Allow", "Action": "ec2:*", "Resource": "*"}]},
                    "Roles": [{"Ref": "OtherRole"}],
                },
            },
            "Policy": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {"Name": "/ami-governance/policy", "Value": json.dumps({"mode": "audit"})},
            },
        }
    }


def test_role_grants_are_the_allow_actions_of_the_policies_attached_to_the_functions_role():
    # Given a role with an attached policy (Allow and Deny), an inline policy, and another role's policy
    inline = {"Policies": [{"PolicyDocument": {"Statement": {"Effect": "Allow", "Action": "sns:Publish"}}}]}
    home = template(
        {"Effect": "Allow", "Action": ["ec2:DescribeImages", "ec2:CreateTags"], "Resource": "*"},
        {"Effect": "Deny", "Action": "ec2:DeleteTags", "Resource": "*"},
        role_properties=inline,
    )

    # When read, then only the product function is found, and its role grants what its Allows name
    assert product_functions(home) == {"enforce": "EnforceFunction1"}
    assert role_grants(home, "EnforceFunction1") == {"ec2:DescribeImages", "ec2:CreateTags", "sns:Publish"}
    assert template_policy(home) == {"mode": "audit"}


@pytest.mark.parametrize(
    ("statement", "role_properties"),
    [
        ({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}, None),
        ({"Effect": "Allow", "Action": "ec2:DescribeImages"}, {"ManagedPolicyArns": ["arn:aws:iam::aws:policy/X"]}),
    ],
)
def test_what_cannot_be_compared_action_by_action_is_refused(statement, role_properties):
    with pytest.raises(TemplateError):
        role_grants(template(statement, role_properties=role_properties), "EnforceFunction1")


# ---- calls -> IAM actions ----------------------------------------------------------------------------------


def test_a_call_maps_to_its_iam_action_and_the_ones_aws_performs_for_it():
    def names(signing_name, operation, params=()):
        return [(a.name, a.via) for a in iam_actions(signing_name, operation, frozenset(params))]

    # SQS batch calls are authorised as the single-message action
    assert names("sqs", "SendMessageBatch") == [("sqs:SendMessage", None)]
    # CloudWatch signs as "monitoring"
    assert names("monitoring", "PutMetricData") == [("cloudwatch:PutMetricData", None)]
    # Publishing to the (encrypted) topic needs the key, through SNS
    assert names("sns", "Publish") == [
        ("sns:Publish", None),
        ("kms:Decrypt", "sns:Publish"),
        ("kms:GenerateDataKey", "sns:Publish"),
    ]
    # A copy into a customer managed key needs the EBS encryption actions; tags at creation need CreateTags
    assert names("ec2", "CopyImage", ["SourceImageId", "TagSpecifications"]) == [
        ("ec2:CopyImage", None),
        ("ec2:CreateTags", "ec2:CopyImage"),
    ]
    kms = {name for name, via in names("ec2", "CopyImage", ["KmsKeyId"]) if via == "ec2:CopyImage"}
    assert {"kms:CreateGrant", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptTo"} <= kms
    assert names("ec2", "CreateTags", ["Resources", "Tags"]) == [("ec2:CreateTags", None)]


def test_only_the_products_handlers_are_functions():
    assert function_of_handler("handlers.enforce.handler") == "enforce"
    assert function_of_handler("handlers.enforcer.handler") is None  # the e2e test's broken handler path
    assert function_of_handler("index.handler") is None


# ---- policy variants ---------------------------------------------------------------------------------------


def test_the_variant_changes_with_a_grant_relevant_field_only():
    base = policy()

    # A naming or tagging change grants nothing new: same variant
    assert variant_key(policy(required_tags={})) == variant_key(base)
    # Deleting snapshots, enforcing, or sharing replicas changes the roles: another variant each
    others = [
        policy(cleanup={"dry_run": False}),
        policy(mode="enforce"),
        policy(replication={"regions": ["eu-west-1"], "share_with": {"accounts": ["111122223333"]}}),
        policy(replication={"regions": []}),
    ]
    assert len({variant_key(p) for p in [base, *others]}) == 5


def test_the_reports_sweep_makes_its_own_variants():
    # Given the repository policy, whose sweep is off
    base = policy()
    assert not base.report.sweep.enabled
    sweep_on = {"enabled": True, "dry_run": False}

    # A dry-run sweep writes nothing: same role as off
    assert variant_key(policy(report={"sweep": {"enabled": True, "dry_run": True}})) == variant_key(base)
    # An acting sweep adds its writes; deleting orphaned snapshots adds DeleteSnapshot; retrying clean-ups adds
    # only the inventory's GetItem (granted by the home stack, not stacks/permissions.py) to the same statements
    acting = policy(report={"sweep": {**sweep_on, "retry_deferred_cleanups": False}})
    deleting = policy(
        report={"sweep": {**sweep_on, "retry_deferred_cleanups": False, "delete_orphaned_snapshots_after_days": 0}}
    )
    retrying = policy(report={"sweep": {**sweep_on, "retry_deferred_cleanups": True}})
    assert len({variant_key(p) for p in [base, acting, deleting, retrying]}) == 4
    assert "ec2:DeleteSnapshot" in variant_key(deleting)
    assert "ec2:DeleteSnapshot" not in variant_key(acting)


# ---- reading a run back ------------------------------------------------------------------------------------


def test_emulator_calls_belong_to_the_test_running_at_their_time(tmp_path):
    # Given a worker that ran two tests, and an emulator whose enforce function called EC2 during the second
    worker = tmp_path / "gw0"
    emulator = worker / "emulators" / "emulator-1-1"
    emulator.mkdir(parents=True)
    (worker / "tests.jsonl").write_text(
        json.dumps({"test": "t1", "start": 100.0}) + "\n" + json.dumps({"test": "t2", "start": 200.0}) + "\n"
    )
    manifest = {
        "templates": {"AmiGovernanceHome": template()},
        "functions": {
            "AmiGovernanceHome-EnforceFunction1": {
                "stack": "AmiGovernanceHome",
                "logical_id": "EnforceFunction1",
                "handler": "handlers.enforce.handler",
            },
            "custom": {"stack": "Custom", "logical_id": "X", "handler": "index.handler"},
        },
    }
    (emulator / "manifest.json").write_text(json.dumps(manifest))
    call = {"service": "ec2", "operation": "DescribeImages", "params": ["ImageIds"], "time": 250.0}
    (emulator / "calls-a.jsonl").write_text(
        json.dumps({"function": "AmiGovernanceHome-EnforceFunction1", **call})
        + "\n"
        + json.dumps({"function": "custom", **call})
        + "\n"
    )

    # When the run is read back
    run = read_run(tmp_path)

    # Then the product function's call is the second test's, tied to the emulator's template; the other is counted
    [recorded] = run.calls
    assert (recorded.function, recorded.test, recorded.operation) == ("enforce", "t2", "DescribeImages")
    assert run.templates[recorded.template or 0] == template()
    assert run.other_functions == 1
