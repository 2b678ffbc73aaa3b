"""The IAM requests the emulator builds for each call the functions make: action, resource ARNs, context keys."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from emulator.iam.enforcement import parse_call
from emulator.iam.requests import Call, Caller, Key, Unmodelled, authorizations

ACCOUNT = "123456789012"
CALLER = Caller(
    arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/CopyRole/copy",
    role_arn=f"arn:aws:iam::{ACCOUNT}:role/CopyRole",
    account=ACCOUNT,
)
BASE = {
    "aws:RequestedRegion": "us-east-1",
    "aws:PrincipalAccount": ACCOUNT,
    "aws:PrincipalArn": CALLER.role_arn,
}
KEY_ARN = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/k-1"
KEY_POLICY = {"Version": "2012-10-17", "Statement": []}
TOPIC = f"arn:aws:sns:us-east-1:{ACCOUNT}:Notifications"


@dataclass
class FakeState:
    tags: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    owners: dict[tuple[str, str], str] = field(default_factory=dict)
    keys: dict[str, Key] = field(default_factory=dict)
    topic_keys: dict[str, str] = field(default_factory=dict)
    queue_keys: dict[str, str] = field(default_factory=dict)
    bus_policies: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def bus_policy(self, region: str, bus: str) -> dict[str, Any] | None:
        return self.bus_policies.get((region, bus))

    def ec2_tags(self, region: str, resource_id: str) -> dict[str, str]:
        return dict(self.tags.get((region, resource_id), {}))

    def ec2_owner(self, region: str, resource_id: str) -> str | None:
        return self.owners.get((region, resource_id))

    def key(self, region: str, reference: str) -> Key | None:
        return self.keys.get(reference)

    def topic_key(self, topic_arn: str) -> str | None:
        return self.topic_keys.get(topic_arn)

    def queue_key(self, queue_arn: str) -> str | None:
        return self.queue_keys.get(queue_arn)


STATE = FakeState(
    tags={("us-east-1", "ami-1"): {"team": "a"}, ("us-east-1", "snap-1"): {}},
    owners={("us-east-1", "ami-1"): ACCOUNT, ("us-east-1", "snap-1"): ACCOUNT, ("us-east-1", "ami-amzn"): "amazon"},
    keys={KEY_ARN: Key(KEY_ARN, KEY_POLICY, ("alias/replicas",)), "alias/notify": Key(KEY_ARN, KEY_POLICY)},
    topic_keys={TOPIC: "alias/notify"},
)


def call(service: str, operation: str, params: dict[str, Any], region: str = "us-east-1") -> Call:
    return Call(service, operation, region, params, CALLER)


def requests(service: str, operation: str, params: dict[str, Any], region: str = "us-east-1") -> list[tuple[Any, ...]]:
    return [
        (a.action, a.resource, dict(a.context), a.via)
        for a in authorizations(call(service, operation, params, region), STATE)
    ]


AMI_CONTEXT = {
    "ec2:Region": "us-east-1",
    "aws:ResourceTag/team": "a",
    "ec2:ResourceTag/team": "a",
    "ec2:Owner": ACCOUNT,
}
IMAGE = "arn:aws:ec2:us-east-1::image/ami-1"

CASES: list[tuple[str, str, str, dict[str, Any], list[tuple[Any, ...]]]] = [
    ("describe images", "ec2", "DescribeImages", {"ImageId": ["ami-1"]},
     [("ec2:DescribeImages", "*", {**BASE, "ec2:Region": "us-east-1"}, None)]),
    ("recycle bin listing", "ec2", "ListImagesInRecycleBin", {},
     [("ec2:ListImagesInRecycleBin", "*", {**BASE, "ec2:Region": "us-east-1"}, None)]),
    ("image attribute: on the image", "ec2", "DescribeImageAttribute", {"ImageId": "ami-1", "Attribute": "x"},
     [("ec2:DescribeImageAttribute", IMAGE, {**BASE, **AMI_CONTEXT}, None)]),
    ("create tags on an image and a snapshot", "ec2", "CreateTags",
     {"ResourceId": ["ami-1", "snap-1"], "Tag": [{"Key": "gov:state", "Value": "ok"}]},
     [("ec2:CreateTags", IMAGE,
       {**BASE, **AMI_CONTEXT, "aws:RequestTag/gov:state": "ok", "aws:TagKeys": ["gov:state"]}, None),
      ("ec2:CreateTags", "arn:aws:ec2:us-east-1::snapshot/snap-1",
       {**BASE, "ec2:Region": "us-east-1", "ec2:Owner": ACCOUNT, "aws:RequestTag/gov:state": "ok",
        "aws:TagKeys": ["gov:state"]}, None)]),
    ("delete tags by key: no request tag values", "ec2", "DeleteTags",
     {"ResourceId": ["ami-1"], "Tag": [{"Key": "gov:state"}]},
     [("ec2:DeleteTags", IMAGE, {**BASE, **AMI_CONTEXT, "aws:TagKeys": ["gov:state"]}, None)]),
    ("delete tags without keys: no aws:TagKeys", "ec2", "DeleteTags", {"ResourceId": ["ami-1"]},
     [("ec2:DeleteTags", IMAGE, {**BASE, **AMI_CONTEXT}, None)]),
    ("Amazon's image: ec2:Owner amazon", "ec2", "DescribeImageAttribute", {"ImageId": "ami-amzn"},
     [("ec2:DescribeImageAttribute", "arn:aws:ec2:us-east-1::image/ami-amzn",
       {**BASE, "ec2:Region": "us-east-1", "ec2:Owner": "amazon"}, None)]),
    ("deregister", "ec2", "DeregisterImage", {"ImageId": "ami-1"},
     [("ec2:DeregisterImage", IMAGE, {**BASE, **AMI_CONTEXT}, None)]),
    ("delete snapshot", "ec2", "DeleteSnapshot", {"SnapshotId": "snap-1"},
     [("ec2:DeleteSnapshot", "arn:aws:ec2:us-east-1::snapshot/snap-1",
       {**BASE, "ec2:Region": "us-east-1", "ec2:Owner": ACCOUNT}, None)]),
    ("sns publish to an encrypted topic: the key through SNS", "sns", "Publish", {"TopicArn": TOPIC, "Message": "m"},
     [("sns:Publish", TOPIC, BASE, None)]
     + [(action, KEY_ARN, {**BASE, "kms:ViaService": "sns.us-east-1.amazonaws.com", "kms:CallerAccount": ACCOUNT,
                           "kms:EncryptionContext:aws:sns:topicArn": TOPIC}, "sns:Publish")
        for action in ("kms:GenerateDataKey", "kms:Decrypt")]),
    ("sqs send", "sqs", "SendMessage", {"QueueUrl": f"http://localhost:4566/{ACCOUNT}/jobs", "MessageBody": "b"},
     [("sqs:SendMessage", f"arn:aws:sqs:us-east-1:{ACCOUNT}:jobs", BASE, None)]),
    ("sqs batch: the single-message action", "sqs", "DeleteMessageBatch",
     {"QueueUrl": f"http://localhost:4566/{ACCOUNT}/jobs", "Entries": []},
     [("sqs:DeleteMessage", f"arn:aws:sqs:us-east-1:{ACCOUNT}:jobs", BASE, None)]),
    ("dynamodb item", "dynamodb", "UpdateItem", {"TableName": "Inventory", "Key": {}},
     [("dynamodb:UpdateItem", f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/Inventory", BASE, None)]),
    ("dynamodb scan of an index", "dynamodb", "Scan", {"TableName": "Inventory", "IndexName": "byState"},
     [("dynamodb:Scan", f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/Inventory/index/byState", BASE, None)]),
    ("ssm parameter", "ssm", "GetParameter", {"Name": "/ami-governance/policy"},
     [("ssm:GetParameter", f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/ami-governance/policy", BASE, None)]),
    ("ssm public parameters have no account", "ssm", "GetParameters", {"Names": ["/aws/service/ami", "mine"]},
     [("ssm:GetParameters", "arn:aws:ssm:us-east-1::parameter/aws/service/ami", BASE, None),
      ("ssm:GetParameters", f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/mine", BASE, None)]),
    ("ssm listing", "ssm", "DescribeParameters", {}, [("ssm:DescribeParameters", "*", BASE, None)]),
    ("autoscaling listing", "autoscaling", "DescribeAutoScalingGroups", {},
     [("autoscaling:DescribeAutoScalingGroups", "*", BASE, None)]),
    ("s3 report", "s3", "PutObject", {"Bucket": "reports", "Key": "latest/report.json"},
     [("s3:PutObject", "arn:aws:s3:::reports/latest/report.json", BASE, None)]),
    ("sts caller identity needs no permission", "sts", "GetCallerIdentity", {}, []),
]  # fmt: skip


@pytest.mark.parametrize(
    ("service", "operation", "params", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_requests_of_each_call(service: str, operation: str, params: dict[str, Any], expected: list[Any]) -> None:
    assert requests(service, operation, params) == expected


def test_copy_image_authorizes_source_new_image_tags_at_creation_and_the_key_through_ec2() -> None:
    params = {
        "SourceImageId": "ami-1",
        "SourceRegion": "us-east-1",
        "Name": "copy",
        "Encrypted": "true",
        "KmsKeyId": KEY_ARN,
        "TagSpecification": [{"ResourceType": "image", "Tag": [{"Key": "gov:source", "Value": "ami-1"}]}],
    }
    region = "eu-west-1"
    base = {**BASE, "aws:RequestedRegion": region}
    new_tags = {"aws:RequestTag/gov:source": "ami-1", "aws:TagKeys": ["gov:source"]}
    kms = {"kms:ViaService": "ec2.eu-west-1.amazonaws.com", "kms:CallerAccount": ACCOUNT,
           "kms:ResourceAliases": ["alias/replicas"]}  # fmt: skip
    assert requests("ec2", "CopyImage", params, region) == [
        ("ec2:CopyImage", IMAGE, {**base, **AMI_CONTEXT, "ec2:Region": region}, None),
        ("ec2:CopyImage", "arn:aws:ec2:eu-west-1::image/*", {**base, "ec2:Region": region, **new_tags}, None),
        ("ec2:CreateTags", "arn:aws:ec2:eu-west-1::image/*",
         {**base, "ec2:Region": region, "ec2:CreateAction": "CopyImage", **new_tags}, "ec2:CopyImage"),
        ("kms:CreateGrant", KEY_ARN, {**base, **kms, "kms:GrantIsForAWSResource": "true"}, "ec2:CopyImage"),
        *[(action, KEY_ARN, {**base, **kms}, "ec2:CopyImage")
          for action in ("kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKeyWithoutPlaintext",
                         "kms:ReEncryptFrom", "kms:ReEncryptTo")],
    ]  # fmt: skip
    [first, *_] = authorizations(call("ec2", "CopyImage", params, region), STATE)
    assert first.resource_account == ACCOUNT
    assert authorizations(call("ec2", "CopyImage", params, region), STATE)[-1].resource_policy == KEY_POLICY


@pytest.mark.parametrize(
    ("service", "operation", "params"),
    [
        ("ec2", "RunInstances", {}),
        ("ec2", "CreateTags", {"ResourceId": ["unknown-1"]}),
        ("sns", "CreateTopic", {"Name": "t"}),
        ("lambda", "Invoke", {}),
        ("dynamodb", "DeleteTable", {"TableName": "t"}),
        ("s3", "DELETE /b/k", {"Bucket": "b", "Key": "k"}),
    ],
)
def test_an_operation_not_modelled_is_refused(service: str, operation: str, params: dict[str, Any]) -> None:
    with pytest.raises(Unmodelled, match=f"does not model {service}:{operation}"):
        authorizations(call(service, operation, params), STATE)


def signed(service: str, region: str = "us-east-1", **extra: str) -> dict[str, Any]:
    credential = f"Credential=lambda-copy/20260101/{region}/{service}/aws4_request, SignedHeaders=host"
    return {"HTTP_AUTHORIZATION": f"AWS4-HMAC-SHA256 {credential}", "REQUEST_METHOD": "POST", **extra}


def test_query_protocol_call_is_parsed_into_nested_parameters() -> None:
    body = b"Action=CreateTags&Version=2016-11-15&ResourceId.1=ami-1&Tag.1.Key=k&Tag.1.Value=v"
    parsed = parse_call(signed("ec2"), body, CALLER)
    assert parsed == Call(
        "ec2", "CreateTags", "us-east-1", {"ResourceId": ["ami-1"], "Tag": [{"Key": "k", "Value": "v"}]}, CALLER
    )


def test_json_protocol_call_is_parsed_from_its_target() -> None:
    environ = signed("dynamodb", HTTP_X_AMZ_TARGET="DynamoDB_20120810.GetItem")
    parsed = parse_call(environ, b'{"TableName": "t"}', CALLER)
    assert parsed == Call("dynamodb", "GetItem", "us-east-1", {"TableName": "t"}, CALLER)


def test_s3_put_object_is_parsed_from_the_path() -> None:
    environ = signed("s3", REQUEST_METHOD="PUT", PATH_INFO="/reports/reports/2026-01-01/r%201.json")
    parsed = parse_call(environ, b"{}", CALLER)
    assert parsed == Call("s3", "PutObject", "us-east-1", {"Bucket": "reports", "Key": "reports/2026-01-01/r 1.json"},
                          CALLER)  # fmt: skip


def test_an_unsigned_request_is_not_a_call() -> None:
    assert parse_call({"REQUEST_METHOD": "GET"}, b"", CALLER) is None
