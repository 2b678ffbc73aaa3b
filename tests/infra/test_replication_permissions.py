"""Least privilege of the replicate and copy Lambdas: copies reach the replication regions only, tags stay in the
system's namespace, KMS is limited to the keys the policy names, sharing is granted only when the policy shares."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import pytest
from aws_cdk.assertions import Template

from ami_governance.models.policy import GovernancePolicy
from stacks.permissions import ReplicaKey, copy_permissions, replica_key, replicate_permissions
from tests.infra.support import (
    REPLICATION_SOURCE_ONLY_REGIONS,
    REPLICATION_TARGETS,
    allowed_actions,
    as_list,
    resolved_statements,
    role_statements,
    statement_by_sid,
)

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

REPLICATE_HANDLER = "handlers.replicate.handler"
COPY_HANDLER = "handlers.copy.handler"
ACCOUNT = {"Ref": "AWS::AccountId"}
OWNED_BY_THIS_ACCOUNT = {"StringEquals": {"ec2:Owner": ACCOUNT}}
REPLICA_KEY_ACTIONS = ["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncrypt*"]


def _images(regions: Any) -> list[str]:
    return [f"arn:aws:ec2:{r}::image/*" for r in regions]


def _snapshots(regions: Any) -> list[str]:
    return [f"arn:aws:ec2:{r}::snapshot/*" for r in regions]


def _own_keys_only(policy: GovernancePolicy) -> dict[str, Any]:
    return {"ForAllValues:StringLike": {"aws:TagKeys": [f"{policy.tag_prefix}*"]}, "Null": {"aws:TagKeys": "false"}}


def _never_protection_or_approval(policy: GovernancePolicy) -> dict[str, Any]:
    return {"ForAnyValue:StringEquals": {"aws:TagKeys": [policy.protection_tag_key, policy.approval_tag_key]}}


def _statements(built: Any, handler: str) -> list[dict[str, Any]]:
    return role_statements(built.template(built.home), handler)


def _copy_queue_id(template: Template) -> str:
    [queue_id] = [
        logical_id
        for logical_id, queue in template.find_resources("AWS::SQS::Queue").items()
        if "RedrivePolicy" in queue["Properties"]
    ]
    return str(queue_id)


def _is_topic_key(resource: Any) -> bool:
    return isinstance(resource, dict) and resource.get("Fn::GetAtt", [""])[0].startswith("NotificationsKey")


def _kms_statements(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The statements on keys other than the notification topic's (which every function may use to publish)."""
    return [
        s
        for s in statements
        if any(a.startswith("kms:") for a in as_list(s["Action"])) and not _is_topic_key(s["Resource"])
    ]


# --- replicate ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("app_fixture", ["audit_app", "replication_app"])
def test_replicate_reads_images_and_answers_in_its_own_tag_namespace(
    app_fixture: str, request: pytest.FixtureRequest
) -> None:
    # Given the replicate role
    built: Any = request.getfixturevalue(app_fixture)
    policy = built.policy
    statements = _statements(built, REPLICATE_HANDLER)
    governed = list(policy.governed_regions)

    # Then it describes images in the governed regions only
    describe = statement_by_sid(statements, "DescribeImagesInGovernedRegions")
    assert describe["Action"] == "ec2:DescribeImages"
    assert describe["Resource"] == "*"
    assert describe["Condition"] == {"StringEquals": {"aws:RequestedRegion": governed}}
    # And tags this account's images of the governed regions, own prefix only, never the protection or approval tag
    answer = statement_by_sid(statements, "AnswerApprovalsInOwnTagNamespaceOnly")
    assert answer["Action"] == "ec2:CreateTags"
    assert answer["Resource"] == _images(governed)
    assert answer["Condition"] == {**_own_keys_only(policy), **OWNED_BY_THIS_ACCOUNT}
    deny = statement_by_sid(statements, "NeverSetProtectionOrApprovalTag")
    assert deny["Effect"] == "Deny"
    assert deny["Action"] == "ec2:CreateTags"
    assert deny["Resource"] == _images(governed)
    assert deny["Condition"] == _never_protection_or_approval(policy)
    # And may never delete tags, copy, or touch snapshots
    assert not allowed_actions(statements) & {"ec2:DeleteTags", "ec2:CopyImage", "ec2:DeleteSnapshot"}


@pytest.mark.parametrize("app_fixture", ["audit_app", "replication_app"])
def test_replicate_sends_copy_jobs_to_the_copy_queue_only(app_fixture: str, request: pytest.FixtureRequest) -> None:
    # Given the replicate role
    built: Any = request.getfixturevalue(app_fixture)
    template = built.template(built.home)
    statements = _statements(built, REPLICATE_HANDLER)

    # Then it may send to the copy queue (and, as every function, to its async-invoke DLQ), and receive nothing
    send = statement_by_sid(statements, "SendCopyJobs")
    assert send["Action"] == "sqs:SendMessage"
    assert send["Resource"] == {"Fn::GetAtt": [_copy_queue_id(template), "Arn"]}
    assert {a for a in allowed_actions(statements) if a.startswith("sqs:")} == {"sqs:SendMessage"}


def test_replicate_shares_nothing_when_the_policy_shares_with_no_one(audit_app: Any) -> None:
    # Given the repository policy, which replicates but shares with no one
    sharing = audit_app.policy.replication.share_with
    assert sharing.accounts == sharing.organization_arns == sharing.ou_arns == []

    # Then no role of the home stack may change an image's attributes
    for handler in (REPLICATE_HANDLER, COPY_HANDLER):
        assert "ec2:ModifyImageAttribute" not in allowed_actions(_statements(audit_app, handler))


def test_replicate_shares_replicas_in_the_replication_regions_only(replication_app: Any) -> None:
    # Given a policy that shares replicas with an account, an organization and an OU
    statements = _statements(replication_app, REPLICATE_HANDLER)

    # Then replicate, and copy (for a replica it adopts already available), may change the attributes (launch
    # permissions) of images in the replication regions only
    for handler in (REPLICATE_HANDLER, COPY_HANDLER):
        statements = _statements(replication_app, handler)
        share = statement_by_sid(statements, "ShareReplicas")
        assert share["Action"] == "ec2:ModifyImageAttribute"
        assert share["Resource"] == _images(REPLICATION_TARGETS)
        sharing = [s["Sid"] for s in statements if "ec2:ModifyImageAttribute" in as_list(s["Action"])]
        assert sharing == ["ShareReplicas"]


@pytest.mark.parametrize(
    ("share_with", "shares"),
    [
        ({}, False),
        ({"accounts": ["444455556666"]}, True),
        ({"organization_arns": ["arn:aws:organizations::111122223333:organization/o-a1b2c3d4e5"]}, True),
        ({"ou_arns": ["arn:aws:organizations::111122223333:ou/o-a1b2c3d4e5/ou-ab12-cd34ef56"]}, True),
    ],
)
def test_sharing_is_granted_exactly_when_the_policy_shares(
    share_with: dict[str, list[str]], shares: bool, make_policy: Callable[..., GovernancePolicy]
) -> None:
    # Given a replicating policy that shares with these
    policy = make_policy(replication={"regions": ["eu-west-1"], "share_with": share_with})

    # When the replicate permissions are derived from it
    permissions = functools.partial(replicate_permissions, copy_queue_arn="arn:aws:sqs:us-east-1:111122223333:q")
    statements = resolved_statements(permissions, policy)

    # Then ModifyImageAttribute is granted only if it names someone
    assert ("ec2:ModifyImageAttribute" in allowed_actions(statements)) is shares


# --- copy --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("app_fixture", ["audit_app", "replication_app"])
def test_copy_copies_into_the_replication_regions_only(app_fixture: str, request: pytest.FixtureRequest) -> None:
    # Given the copy role
    built: Any = request.getfixturevalue(app_fixture)
    policy = built.policy
    statements = _statements(built, COPY_HANDLER)
    governed, targets = list(policy.governed_regions), list(policy.replication.regions)

    # Then it describes images in the governed regions (sources and targets alike: targets are governed)
    describe = statement_by_sid(statements, "DescribeImagesInGovernedRegions")
    assert describe["Action"] == "ec2:DescribeImages"
    assert describe["Condition"] == {"StringEquals": {"aws:RequestedRegion": governed}}
    assert set(targets) <= set(governed)
    # And copies any governed image (the source) into a new image and snapshots of a replication region, the call
    # itself made in a replication region only (CopyImage is called in the target region)
    copy = statement_by_sid(statements, "CopyImagesIntoReplicationRegionsOnly")
    assert copy["Action"] == "ec2:CopyImage"
    assert copy["Resource"] == _images(governed) + _snapshots(governed)
    assert copy["Condition"] == {"StringEquals": {"aws:RequestedRegion": targets}}
    # And tags only what CopyImage creates there, at creation (the source's tags come along, approval and
    # protection included)
    tag = statement_by_sid(statements, "TagReplicasAtCreation")
    assert tag["Action"] == "ec2:CreateTags"
    assert tag["Resource"] == _images(targets) + _snapshots(targets)
    assert tag["Condition"] == {"StringEquals": {"ec2:CreateAction": "CopyImage"}}
    # And, on sources in any governed region, writes the answer to a withdrawn approval: that one key only
    answer = statement_by_sid(statements, "AnswerWithdrawnApprovalsOnSources")
    assert answer["Action"] == "ec2:CreateTags"
    assert answer["Resource"] == _images(governed)
    assert answer["Condition"] == {
        "ForAllValues:StringEquals": {"aws:TagKeys": [f"{policy.tag_prefix}approval"]},
        "Null": {"aws:TagKeys": "false"},
        "StringEquals": {"ec2:Owner": ACCOUNT},
    }
    # And nothing else in EC2 (but sharing, where the policy shares: see below)
    expected = {"ec2:DescribeImages", "ec2:CopyImage", "ec2:CreateTags"}
    if app_fixture == "replication_app":
        expected.add("ec2:ModifyImageAttribute")
    assert {a for a in allowed_actions(statements) if a.startswith("ec2:")} == expected


def test_no_copy_or_tag_grant_reaches_a_region_that_is_only_a_source(replication_app: Any) -> None:
    # Given the copy role of an app whose governed regions include regions that are not replication targets
    statements = _statements(replication_app, COPY_HANDLER)
    sources_only = set(REPLICATION_SOURCE_ONLY_REGIONS)
    assert sources_only.isdisjoint(replication_app.policy.replication.regions)

    for statement in statements:
        actions = set(as_list(statement["Action"]))
        if statement["Effect"] != "Allow" or not actions & {"ec2:CopyImage", "ec2:CreateTags"}:
            continue
        resources = as_list(statement["Resource"])
        in_sources_only = [r for r in resources if r.split(":")[3] in sources_only]
        if "ec2:CopyImage" in actions:
            # Then CopyImage names images and snapshots there only as sources: the call can only be made in a
            # target region
            assert in_sources_only == _images(REPLICATION_SOURCE_ONLY_REGIONS) + _snapshots(
                REPLICATION_SOURCE_ONLY_REGIONS
            )
            assert set(statement["Condition"]["StringEquals"]["aws:RequestedRegion"]) == set(REPLICATION_TARGETS)
        elif statement["Sid"] == "AnswerWithdrawnApprovalsOnSources":
            # And CreateTags names images there only for the answer to a withdrawn approval
            assert in_sources_only == _images(REPLICATION_SOURCE_ONLY_REGIONS)
            assert statement["Condition"]["ForAllValues:StringEquals"] == {
                "aws:TagKeys": [f"{replication_app.policy.tag_prefix}approval"]
            }
        else:
            # And CreateTags names nothing else there at all
            assert in_sources_only == []


def test_copy_has_no_kms_rights_beyond_the_topic_without_policy_keys(audit_app: Any) -> None:
    # Given the repository policy, which names no KMS key for its replicas (EC2 then uses the default EBS key)
    assert audit_app.policy.replication.kms_keys == {}

    # Then the copy role's only KMS statement is the notification topic's key, used to publish
    statements = _statements(audit_app, COPY_HANDLER)
    assert _kms_statements(statements) == []
    [topic_key] = [s for s in statements if any(a.startswith("kms:") for a in as_list(s["Action"]))]
    assert topic_key["Action"] == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert _is_topic_key(topic_key["Resource"])


def _key_statements(suffix: str, resource: Any, region: str, alias: str | None = None) -> list[dict[str, Any]]:
    conditions: dict[str, Any] = {"StringEquals": {"kms:ViaService": f"ec2.{region}.amazonaws.com"}}
    if alias is not None:
        conditions["ForAnyValue:StringEquals"] = {"kms:ResourceAliases": [alias]}
    return [
        {
            "Sid": f"EncryptReplicasWithPolicyKey{suffix}",
            "Effect": "Allow",
            "Action": REPLICA_KEY_ACTIONS,
            "Resource": resource,
            "Condition": conditions,
        },
        {
            "Sid": f"LetEc2UsePolicyKey{suffix}",
            "Effect": "Allow",
            "Action": "kms:CreateGrant",
            "Resource": resource,
            "Condition": {**conditions, "Bool": {"kms:GrantIsForAWSResource": "true"}},
        },
    ]


def test_copy_uses_exactly_the_policy_keys_through_ec2_of_their_region(replication_app: Any) -> None:
    # Given a policy naming a key per target region: by alias, by key id, by key ARN
    keys = replication_app.policy.replication.kms_keys
    assert keys["eu-west-1"].startswith("alias/")
    assert keys["ap-southeast-2"].startswith("arn:")
    statements = _statements(replication_app, COPY_HANDLER)

    # Then each key gets two statements, usable only through EC2 in its region: the alias as any key of this account
    # in the region that carries that alias, the key id as this account's key in the region, the ARN as itself
    def this_account_key(region: str, key_id: str) -> dict[str, Any]:
        return {"Fn::Join": ["", [f"arn:aws:kms:{region}:", ACCOUNT, f":key/{key_id}"]]}

    expected = [
        *_key_statements("EuWest1", this_account_key("eu-west-1", "*"), "eu-west-1", alias="alias/ami-replicas"),
        *_key_statements("EuCentral1", this_account_key("eu-central-1", keys["eu-central-1"]), "eu-central-1"),
        *_key_statements("ApSoutheast2", keys["ap-southeast-2"], "ap-southeast-2"),
    ]
    by_sid = {s["Sid"]: s for s in _kms_statements(statements)}
    assert by_sid == {s["Sid"]: s for s in expected}


@pytest.mark.parametrize(
    ("region", "reference", "expected"),
    [
        (
            "eu-west-1",
            "alias/ami-replicas",
            ReplicaKey("eu-west-1", "arn:aws:kms:eu-west-1:ACCT:key/*", "alias/ami-replicas"),
        ),
        (
            "eu-west-1",
            "arn:aws:kms:eu-west-1:444455556666:alias/shared/replicas",
            ReplicaKey("eu-west-1", "arn:aws:kms:eu-west-1:444455556666:key/*", "alias/shared/replicas"),
        ),
        (
            "eu-west-1",
            "1234abcd-12ab-34cd-56ef-1234567890ab",
            ReplicaKey("eu-west-1", "arn:aws:kms:eu-west-1:ACCT:key/1234abcd-12ab-34cd-56ef-1234567890ab"),
        ),
        (
            "eu-west-1",
            "mrk-0123456789abcdef0123456789abcdef",
            ReplicaKey("eu-west-1", "arn:aws:kms:eu-west-1:ACCT:key/mrk-0123456789abcdef0123456789abcdef"),
        ),
        (
            "eu-west-1",
            "arn:aws:kms:eu-west-1:444455556666:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            ReplicaKey("eu-west-1", "arn:aws:kms:eu-west-1:444455556666:key/1234abcd-12ab-34cd-56ef-1234567890ab"),
        ),
        # The partition follows the region.
        (
            "cn-north-1",
            "alias/replicas",
            ReplicaKey("cn-north-1", "arn:aws-cn:kms:cn-north-1:ACCT:key/*", "alias/replicas"),
        ),
    ],
)
def test_every_way_of_naming_a_key_becomes_a_resource(region: str, reference: str, expected: ReplicaKey) -> None:
    # Given a key reference as the policy allows it, when turned into an IAM resource, then it is the expected one
    assert replica_key(region, reference, "ACCT") == expected


def test_a_policy_without_keys_grants_no_kms(make_policy: Callable[..., GovernancePolicy]) -> None:
    # Given replication without keys, and the same with a key in one of two regions
    without = make_policy(replication={"regions": ["eu-west-1"]})
    with_one = make_policy(
        governed_regions=["us-east-1", "eu-west-1", "eu-central-1"],
        replication={"regions": ["eu-west-1", "eu-central-1"], "kms_keys": {"eu-central-1": "alias/replicas"}},
    )

    # When the copy permissions are derived, then KMS appears only for the key named, in its region
    assert not [a for a in allowed_actions(resolved_statements(copy_permissions, without)) if a.startswith("kms:")]
    kms = [s for s in resolved_statements(copy_permissions, with_one) if as_list(s["Action"])[0].startswith("kms:")]
    assert [s["Sid"] for s in kms] == ["EncryptReplicasWithPolicyKeyEuCentral1", "LetEc2UsePolicyKeyEuCentral1"]
    assert {s["Condition"]["StringEquals"]["kms:ViaService"] for s in kms} == {"ec2.eu-central-1.amazonaws.com"}


@pytest.mark.parametrize("app_fixture", ["audit_app", "replication_app"])
def test_copy_consumes_the_copy_queue_only(app_fixture: str, request: pytest.FixtureRequest) -> None:
    # Given the copy role
    built: Any = request.getfixturevalue(app_fixture)
    template = built.template(built.home)
    statements = _statements(built, COPY_HANDLER)
    queue_arn = {"Fn::GetAtt": [_copy_queue_id(template), "Arn"]}

    # Then it receives, deletes and hides jobs of the copy queue, sends nothing there, and uses no other service
    [consume] = [s for s in statements if "sqs:ReceiveMessage" in as_list(s["Action"])]
    assert consume["Resource"] == queue_arn
    assert {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"} <= set(consume["Action"])
    assert not [s for s in statements if s["Resource"] == queue_arn and "sqs:SendMessage" in as_list(s["Action"])]
    services = {a.split(":")[0] for a in allowed_actions(statements)}
    assert services == {"ec2", "dynamodb", "ssm", "sns", "kms", "logs", "xray", "sqs"}
