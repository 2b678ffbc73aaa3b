"""From one AWS call a function made to the IAM requests AWS would authorize for it.

A call is (service, operation, region, parameters, caller); each `Authorization` is one request to the evaluator:
an action on a resource ARN with the context keys the emulator can compute. What the emulator can compute:
aws:RequestedRegion, aws:PrincipalAccount, aws:PrincipalArn, aws:ResourceTag/* and ec2:ResourceTag/* (moto's
current tags), aws:RequestTag/* and aws:TagKeys (the request's tags), ec2:Owner, ec2:Region, ec2:CreateAction,
kms:ViaService, kms:CallerAccount, kms:GrantIsForAWSResource, kms:ResourceAliases and the SNS encryption context.
aws:CalledVia is absent: every call here is the function's own. Keys that do not apply to an action are given
anyway; the evaluator drops them as AWS does (its strict mode knows each action's keys), so DeleteTags never sees
ec2:Owner.

An operation not modelled here raises `Unmodelled`: the emulator refuses it rather than let a call through
unchecked (fail closed). The knowledge of which operation IAM names otherwise and what AWS does on the caller's
behalf is the same as tests/iam/api_calls.py's (which emulator code may not import).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

ContextValue = str | list[str]

# IAM's name for an operation, where it is not `<prefix>:<Operation>` (SQS developer guide, "Amazon SQS batch
# actions"; the Lambda API's Invoke is lambda:InvokeFunction).
ACTION_BY_OPERATION = {
    ("sqs", "SendMessageBatch"): "sqs:SendMessage",
    ("sqs", "DeleteMessageBatch"): "sqs:DeleteMessage",
    ("sqs", "ChangeMessageVisibilityBatch"): "sqs:ChangeMessageVisibility",
    ("lambda", "Invoke"): "lambda:InvokeFunction",
}
# What EC2 does with the caller's permissions on a KMS key it encrypts a copy with (EBS user guide, "Requirements
# for Amazon EBS encryption").
EBS_KEY_ACTIONS = (
    "kms:CreateGrant",
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
)
# Publishing to a topic encrypted with a customer managed key (SNS developer guide, "Encryption at rest").
SNS_KEY_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")
# Sending to a queue encrypted with a KMS key (SQS developer guide, "Key management").
SQS_SEND_KEY_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")

# EC2 operations on one AMI (parameter ImageId) or one snapshot (SnapshotId).
EC2_IMAGE_OPERATIONS = frozenset(
    {
        "DeregisterImage", "DescribeImageAttribute", "ModifyImageAttribute", "ResetImageAttribute",
        "EnableImageDeprecation", "DisableImageDeprecation", "EnableImage", "DisableImage",
        "EnableImageDeregistrationProtection", "DisableImageDeregistrationProtection",
    }
)  # fmt: skip
EC2_SNAPSHOT_OPERATIONS = frozenset(
    {"DeleteSnapshot", "DescribeSnapshotAttribute", "ModifySnapshotAttribute", "ResetSnapshotAttribute"}
)
# EC2 reads that accept only '*' as their resource (the service authorization reference lists no resource type):
# the describes (not the per-resource *Attribute ones), the block public access state reads, Recycle Bin listings.
_EC2_STAR = re.compile(r"^(Describe(?!.*Attribute$).+|Get(Image|Snapshot)BlockPublicAccessState|List\w+InRecycleBin)$")
# The resource type of an EC2 id, by its prefix (ARN format: EC2 service authorization reference).
EC2_RESOURCE_TYPES = {
    "ami": "image", "snap": "snapshot", "i": "instance", "vol": "volume", "lt": "launch-template",
    "sg": "security-group", "subnet": "subnet", "vpc": "vpc", "eni": "network-interface",
}  # fmt: skip
ACCOUNTLESS_EC2_TYPES = frozenset({"image", "snapshot"})  # arn:aws:ec2:REGION::image/ami-…
# Operations that need no permission (STS GetCallerIdentity: "No permissions are required").
UNAUTHORIZED_OPERATIONS = frozenset({("sts", "GetCallerIdentity")})
AUTOSCALING_READS = frozenset({"DescribeAutoScalingGroups", "DescribeLaunchConfigurations"})


class Unmodelled(Exception):
    """The emulator does not know how AWS authorizes this operation: it is refused (fail closed)."""

    def __init__(self, service: str, operation: str, detail: str = "") -> None:
        self.service, self.operation = service, operation
        suffix = f": {detail}" if detail else ""
        super().__init__(
            f"the emulator's IAM enforcement does not model {service}:{operation}{suffix}; refused (add it to "
            "emulator/iam/requests.py)"
        )


@dataclass(frozen=True)
class Caller:
    """A function's session: `arn` is the assumed-role session ARN, `role_arn` the role's."""

    arn: str
    role_arn: str
    account: str


@dataclass(frozen=True)
class Call:
    service: str  # the SigV4 signing name
    operation: str
    region: str
    params: Mapping[str, Any]  # nested (query protocols, see cloudtrail.nest) or the JSON body
    caller: Caller


@dataclass(frozen=True)
class Authorization:
    action: str
    resource: str
    context: Mapping[str, ContextValue]
    resource_account: str
    resource_policy: Mapping[str, Any] | None = None  # a KMS key policy: KMS needs the key policy's consent too
    via: str | None = None  # the call that implies it, for an action AWS performs on the caller's behalf


@dataclass(frozen=True)
class Key:
    arn: str
    policy: Mapping[str, Any] | None
    aliases: tuple[str, ...] = ()


class State(Protocol):
    """What the request builder reads of the emulated account (moto's backends; a fake in tests)."""

    def ec2_tags(self, region: str, resource_id: str) -> dict[str, str]: ...

    def ec2_owner(self, region: str, resource_id: str) -> str | None:
        """An AMI's or snapshot's owner: an account id, or 'amazon' for Amazon's own; None if unknown."""

    def key(self, region: str, reference: str) -> Key | None: ...

    def topic_key(self, topic_arn: str) -> str | None: ...

    def queue_key(self, queue_arn: str) -> str | None: ...


@dataclass
class _Builder:
    call: Call
    state: State
    out: list[Authorization] = field(default_factory=list)

    @property
    def region(self) -> str:
        return self.call.region

    @property
    def account(self) -> str:
        return self.call.caller.account

    def base_context(self) -> dict[str, ContextValue]:
        return {
            "aws:RequestedRegion": self.region,
            "aws:PrincipalAccount": self.account,
            "aws:PrincipalArn": self.call.caller.role_arn,
        }

    def add(
        self,
        action: str,
        resource: str,
        extra: Mapping[str, ContextValue] | None = None,
        *,
        resource_account: str | None = None,
        resource_policy: Mapping[str, Any] | None = None,
        via: str | None = None,
    ) -> None:
        context = {**self.base_context(), **(extra or {})}
        self.out.append(
            Authorization(action, resource, context, resource_account or self.account, resource_policy, via)
        )


def authorizations(call: Call, state: State) -> list[Authorization]:
    """The IAM requests AWS authorizes for `call`, the call's own first, then those it implies."""
    if (call.service, call.operation) in UNAUTHORIZED_OPERATIONS:
        return []
    builder = _Builder(call, state)
    model = _MODELS.get(call.service)
    if model is None:
        raise Unmodelled(call.service, call.operation, "no model of this service")
    model(builder)
    return builder.out


def action_of(service: str, operation: str) -> str:
    return ACTION_BY_OPERATION.get((service, operation), f"{service}:{operation}")


# ---- EC2 ---------------------------------------------------------------------------------------------------------


def ec2_arn(region: str, account: str, resource_id: str) -> str:
    resource_type = EC2_RESOURCE_TYPES.get(resource_id.split("-", 1)[0])
    if resource_type is None:
        raise ValueError(f"unknown EC2 resource id {resource_id!r}")
    owner = "" if resource_type in ACCOUNTLESS_EC2_TYPES else account
    return f"arn:aws:ec2:{region}:{owner}:{resource_type}/{resource_id}"


def _items(values: Any) -> list[Any]:
    if isinstance(values, dict):  # a JSON-style member, or a query list nest() kept as a dict
        values = list(values.values())
    return [value for value in (values or []) if value is not None]


def _tags(tags: Iterable[Mapping[str, Any]], *, values: bool = True) -> dict[str, ContextValue]:
    """aws:RequestTag/<key> for each tag given with a value, and aws:TagKeys if any tag is named."""
    context: dict[str, ContextValue] = {}
    keys: list[str] = []
    for tag in tags:
        key = tag.get("Key")
        if key is None:
            continue
        keys.append(str(key))
        if values and tag.get("Value") is not None:
            context[f"aws:RequestTag/{key}"] = str(tag["Value"])
    if keys:
        context["aws:TagKeys"] = keys
    return context


def _resource_context(builder: _Builder, region: str, resource_id: str) -> dict[str, ContextValue]:
    context: dict[str, ContextValue] = {"ec2:Region": builder.region}
    for key, value in builder.state.ec2_tags(region, resource_id).items():
        context[f"aws:ResourceTag/{key}"] = value
        context[f"ec2:ResourceTag/{key}"] = value
    if resource_id.startswith(("ami-", "snap-")):
        owner = builder.state.ec2_owner(region, resource_id)
        if owner is not None:
            context["ec2:Owner"] = owner
    return context


def _ec2_on(builder: _Builder, action: str, resource_id: str, extra: Mapping[str, ContextValue] | None = None) -> None:
    try:
        arn = ec2_arn(builder.region, builder.account, resource_id)
    except ValueError as error:
        raise Unmodelled("ec2", builder.call.operation, str(error)) from error
    builder.add(action, arn, {**_resource_context(builder, builder.region, resource_id), **(extra or {})})


def _ec2(builder: _Builder) -> None:
    operation, params = builder.call.operation, builder.call.params
    action = f"ec2:{operation}"
    if _EC2_STAR.match(operation):
        builder.add(action, "*", {"ec2:Region": builder.region})
    elif operation in ("CreateTags", "DeleteTags"):
        tags = _tags(_items(params.get("Tag")))
        resources = [str(r) for r in _items(params.get("ResourceId"))]
        if not resources:
            raise Unmodelled("ec2", operation, "no ResourceId")
        for resource_id in resources:
            _ec2_on(builder, action, resource_id, tags)
    elif operation in EC2_IMAGE_OPERATIONS:
        _ec2_on(builder, action, str(params.get("ImageId", "")))
    elif operation in EC2_SNAPSHOT_OPERATIONS:
        _ec2_on(builder, action, str(params.get("SnapshotId", "")))
    elif operation == "CopyImage":
        _copy_image(builder)
    else:
        raise Unmodelled("ec2", operation)


def _copy_image(builder: _Builder) -> None:
    params, region = builder.call.params, builder.region
    source_region = str(params.get("SourceRegion") or region)
    source_id = str(params.get("SourceImageId", ""))
    image_tags: dict[str, ContextValue] = {}
    tagged: list[tuple[str, dict[str, ContextValue]]] = []
    for spec in _items(params.get("TagSpecification")):
        resource_type = str(spec.get("ResourceType", ""))
        tags = _tags(_items(spec.get("Tag")))
        if resource_type not in ACCOUNTLESS_EC2_TYPES:
            raise Unmodelled("ec2", "CopyImage", f"TagSpecification of resource type {resource_type!r}")
        tagged.append((resource_type, tags))
        if resource_type == "image":
            image_tags = tags
    # Since October 2024 CopyImage is authorized on the source image too, with the source's keys.
    source_context = _resource_context(builder, source_region, source_id)
    builder.add("ec2:CopyImage", f"arn:aws:ec2:{source_region}::image/{source_id}", source_context)
    # The new image, whose id is not known yet, with the tags it is created with.
    builder.add("ec2:CopyImage", f"arn:aws:ec2:{region}::image/*", {"ec2:Region": region, **image_tags})
    # Tags at creation are authorized as ec2:CreateTags with ec2:CreateAction (EC2 user guide, "Grant permission
    # to tag Amazon EC2 resources during creation").
    for resource_type, tags in tagged:
        builder.add(
            "ec2:CreateTags",
            f"arn:aws:ec2:{region}::{resource_type}/*",
            {"ec2:Region": region, "ec2:CreateAction": "CopyImage", **tags},
            via="ec2:CopyImage",
        )
    key_reference = params.get("KmsKeyId")
    if key_reference:
        _key_use(builder, str(key_reference), EBS_KEY_ACTIONS, f"ec2.{region}.amazonaws.com", "ec2:CopyImage")


def _key_use(
    builder: _Builder,
    reference: str,
    actions: Sequence[str],
    via_service: str,
    via: str,
    extra: Mapping[str, ContextValue] | None = None,
) -> None:
    """A service using a KMS key with the caller's permissions: the identity policy and the key policy."""
    region = reference.split(":")[3] if reference.startswith("arn:") else builder.region
    key = builder.state.key(region, reference)
    if key is None:
        arn = reference if reference.startswith("arn:") else f"arn:aws:kms:{region}:{builder.account}:key/{reference}"
        key = Key(arn, None)
    context: dict[str, ContextValue] = {
        "kms:ViaService": via_service,
        "kms:CallerAccount": builder.account,
        **(extra or {}),
    }
    if key.aliases:
        context["kms:ResourceAliases"] = list(key.aliases)
    for action in actions:
        action_context = dict(context)
        if action == "kms:CreateGrant":
            action_context["kms:GrantIsForAWSResource"] = "true"  # EC2 creates the grant for the EBS volumes
        builder.add(
            action,
            key.arn,
            action_context,
            resource_account=key.arn.split(":")[4],
            resource_policy=key.policy,
            via=via,
        )


# ---- the other services ------------------------------------------------------------------------------------------


def _sns(builder: _Builder) -> None:
    operation, params = builder.call.operation, builder.call.params
    if operation != "Publish":
        raise Unmodelled("sns", operation)
    topic = str(params.get("TopicArn") or params.get("TargetArn") or "")
    if not topic.startswith("arn:aws:sns:"):
        raise Unmodelled("sns", operation, "Publish to a phone number or without a topic")
    builder.add("sns:Publish", topic, resource_account=topic.split(":")[4])
    key = builder.state.topic_key(topic)
    if key:
        region = topic.split(":")[3]
        context = {"kms:EncryptionContext:aws:sns:topicArn": topic}
        _key_use(builder, key, SNS_KEY_ACTIONS, f"sns.{region}.amazonaws.com", "sns:Publish", context)


def _queue_arn(builder: _Builder) -> str:
    params = builder.call.params
    url = str(params.get("QueueUrl") or "")
    match = re.search(r"/(\d{12})/([^/?]+)$", url)
    if match:
        return f"arn:aws:sqs:{builder.region}:{match.group(1)}:{match.group(2)}"
    name = params.get("QueueName")
    if name:
        owner = str(params.get("QueueOwnerAWSAccountId") or builder.account)
        return f"arn:aws:sqs:{builder.region}:{owner}:{name}"
    raise Unmodelled("sqs", builder.call.operation, "no QueueUrl")


SQS_OPERATIONS = frozenset(
    {
        "SendMessage", "SendMessageBatch", "ReceiveMessage", "DeleteMessage", "DeleteMessageBatch",
        "ChangeMessageVisibility", "ChangeMessageVisibilityBatch", "GetQueueAttributes", "GetQueueUrl",
    }
)  # fmt: skip


def _sqs(builder: _Builder) -> None:
    operation = builder.call.operation
    if operation not in SQS_OPERATIONS:
        raise Unmodelled("sqs", operation)
    queue = _queue_arn(builder)
    action = action_of("sqs", operation)
    builder.add(action, queue, resource_account=queue.split(":")[4])
    key = builder.state.queue_key(queue) if action == "sqs:SendMessage" else None
    if key:
        _key_use(builder, key, SQS_SEND_KEY_ACTIONS, f"sqs.{builder.region}.amazonaws.com", action)


DYNAMODB_TABLE_OPERATIONS = frozenset(
    {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "DescribeTable", "ConditionCheckItem"}
)


def _table_arn(builder: _Builder, table: str) -> str:
    if table.startswith("arn:"):
        return table
    return f"arn:aws:dynamodb:{builder.region}:{builder.account}:table/{table}"


def _dynamodb(builder: _Builder) -> None:
    operation, params = builder.call.operation, builder.call.params
    if operation in DYNAMODB_TABLE_OPERATIONS:
        arn = _table_arn(builder, str(params.get("TableName", "")))
        if params.get("IndexName") and operation in ("Query", "Scan"):
            arn = f"{arn}/index/{params['IndexName']}"
        builder.add(f"dynamodb:{operation}", arn)
    elif operation in ("BatchGetItem", "BatchWriteItem"):
        for table in params.get("RequestItems") or {}:
            builder.add(f"dynamodb:{operation}", _table_arn(builder, str(table)))
    else:
        raise Unmodelled("dynamodb", operation)


def _parameter_arn(builder: _Builder, name: str) -> str:
    if name.startswith("arn:"):
        return name
    path = name if name.startswith("/") else f"/{name}"
    # AWS's public parameters (/aws/service/…) belong to no account: their ARNs have an empty account field.
    account = "" if path.startswith("/aws/") else builder.account
    return f"arn:aws:ssm:{builder.region}:{account}:parameter{path}"


def _ssm(builder: _Builder) -> None:
    operation, params = builder.call.operation, builder.call.params
    if operation == "GetParameter":
        builder.add("ssm:GetParameter", _parameter_arn(builder, str(params.get("Name", ""))))
    elif operation == "GetParameters":
        for name in params.get("Names") or []:
            builder.add("ssm:GetParameters", _parameter_arn(builder, str(name)))
    elif operation == "DescribeParameters":
        builder.add("ssm:DescribeParameters", "*")
    else:
        raise Unmodelled("ssm", operation)


def _autoscaling(builder: _Builder) -> None:
    if builder.call.operation not in AUTOSCALING_READS:
        raise Unmodelled("autoscaling", builder.call.operation)
    builder.add(f"autoscaling:{builder.call.operation}", "*")


def _s3(builder: _Builder) -> None:
    operation, params = builder.call.operation, builder.call.params
    if operation not in ("PutObject", "GetObject"):
        raise Unmodelled("s3", operation)
    builder.add(f"s3:{operation}", f"arn:aws:s3:::{params['Bucket']}/{params['Key']}")


_MODELS = {
    "ec2": _ec2,
    "sns": _sns,
    "sqs": _sqs,
    "dynamodb": _dynamodb,
    "ssm": _ssm,
    "autoscaling": _autoscaling,
    "s3": _s3,
}
