"""The pattern matching of the offline authorization check: policy resources against the reference's ARN formats,
condition keys against its key templates, action names against wildcards."""

from __future__ import annotations

import pytest

from tests.iam.patterns import (
    action_matches,
    condition_key_matches,
    granted_action_matches,
    resource_matches_arn_format,
)

IMAGE = "arn:${Partition}:ec2:${Region}::image/${ImageId}"
SNAPSHOT = "arn:${Partition}:ec2:${Region}::snapshot/${SnapshotId}"
LOG_GROUP = "arn:${Partition}:logs:${Region}:${Account}:log-group:${LogGroupName}"
LOG_STREAM = "arn:${Partition}:logs:${Region}:${Account}:log-group:${LogGroupName}:log-stream:${LogStreamName}"
KEY = "arn:${Partition}:kms:${Region}:${Account}:key/${KeyId}"
QUEUE = "arn:${Partition}:sqs:${Region}:${Account}:${QueueName}"


@pytest.mark.parametrize(
    ("resource", "arn_format", "expected"),
    [
        ("arn:aws:ec2:eu-west-1::image/*", IMAGE, True),
        ("arn:aws:ec2:eu-west-1::image/ami-0123456789abcdef0", IMAGE, True),
        ("arn:aws:ec2:*::image/*", IMAGE, True),
        ("arn:aws:ec2:eu-west-1::snapshot/*", IMAGE, False),
        ("arn:aws:ec2:eu-west-1::image/*", SNAPSHOT, False),
        # A '*' stays within its field: the region's cannot run on into '::image/'.
        ("arn:aws:ec2:eu-west-1::snapshot/*", "arn:${Partition}:ec2:${Region}::image/${ImageId}", False),
        # Images carry no account: one with an account is no image ARN.
        ("arn:aws:ec2:eu-west-1:123456789012:image/*", IMAGE, False),
        # A variable stands for at least one character.
        ("arn:aws:ec2:eu-west-1::image/", IMAGE, False),
        ("arn:aws:kms:eu-west-1:123456789012:key/*", KEY, True),
        ("arn:aws:kms:eu-west-1:123456789012:alias/x", KEY, False),
        # What CloudFormation returns for a log group's ARN covers its streams.
        ("arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/f:*", LOG_STREAM, True),
        ("arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/f", LOG_GROUP, True),
        ("arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/f", LOG_STREAM, False),
        ("arn:aws:sqs:us-east-1:123456789012:queue", QUEUE, True),
        ("arn:aws:sns:us-east-1:123456789012:topic", QUEUE, False),
        ("arn:aws:sqs:us-east-?:123456789012:queue", QUEUE, True),
        # Fewer fields: compared as a whole.
        ("arn:aws:sqs:*", QUEUE, True),
        ("arn:aws:sns:*", QUEUE, False),
        # ${*} is a literal '*' (IAM's escape), not a wildcard.
        ("arn:aws:sqs:us-east-1:123456789012:${*}", QUEUE, True),
        ("arn:aws:ec2:eu-west-1::image/${*}", "arn:${Partition}:ec2:${Region}::image/ami-1", False),
    ],
)
def test_resource_matches_arn_format(resource: str, arn_format: str, expected: bool) -> None:
    assert resource_matches_arn_format(resource, arn_format) is expected


@pytest.mark.parametrize(
    ("template", "key", "expected"),
    [
        ("aws:ResourceTag/${TagKey}", "aws:ResourceTag/ami-governance:protected", True),
        ("aws:ResourceTag/${TagKey}", "aws:resourcetag/team/app", True),
        ("aws:ResourceTag/${TagKey}", "aws:ResourceTag/", False),
        ("aws:ResourceTag/${TagKey}", "aws:RequestTag/x", False),
        ("ec2:ResourceTag/${TagKey}", "aws:ResourceTag/x", False),
        ("kms:EncryptionContext:${EncryptionContextKey}", "kms:EncryptionContext:aws:sns:topicArn", True),
        ("kms:EncryptionContextKeys", "kms:EncryptionContext:aws:sns:topicArn", False),
        ("ec2:Owner", "EC2:OWNER", True),
        ("ec2:Owner", "ec2:OwnerAlias", False),
    ],
)
def test_condition_key_matches(template: str, key: str, expected: bool) -> None:
    assert condition_key_matches(template, key) is expected


@pytest.mark.parametrize(
    ("pattern", "action", "expected"),
    [
        ("DeleteTags", "DeleteTags", True),
        ("deletetags", "DeleteTags", True),
        ("Describe*", "DescribeImages", True),
        ("GenerateDataKey*", "GenerateDataKey", True),
        ("GenerateDataKey*", "GenerateRandom", False),
        ("ReEncrypt?rom", "ReEncryptFrom", True),
        ("DeleteTag", "DeleteTags", False),
    ],
)
def test_action_matches(pattern: str, action: str, expected: bool) -> None:
    assert action_matches(pattern, action) is expected


@pytest.mark.parametrize(
    ("pattern", "action", "expected"),
    [
        ("ec2:DeleteTags", "ec2:DeleteTags", True),
        ("EC2:deletetags", "ec2:DeleteTags", True),
        ("kms:ReEncrypt*", "kms:ReEncryptFrom", True),
        ("kms:ReEncrypt", "kms:ReEncryptFrom", False),
        ("ec2:*", "ec2:CopyImage", True),
        ("ec2:*", "kms:CreateGrant", False),
        ("*", "kms:CreateGrant", True),
    ],
)
def test_granted_action_matches(pattern: str, action: str, expected: bool) -> None:
    assert granted_action_matches(pattern, action) is expected
