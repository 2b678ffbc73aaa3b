"""Every IAM statement of a synthesized CloudFormation template, with its intrinsics resolved to placeholders.

Identity policies (`AWS::IAM::Policy`, `AWS::IAM::ManagedPolicy`, a role's inline `Policies`) and resource
policies: role trust policies, KMS key policies, SNS topic, SQS queue, EventBridge bus and S3 bucket policies, and
Lambda permissions (a resource policy statement in CloudFormation's own shape). In a resource policy, `*` as the
resource means the resource the policy is attached to, and becomes that resource's ARN.

`Ref`, `Fn::GetAtt`, `Fn::Join`, `Fn::Sub`, `Fn::Select`, `Fn::Split` and the pseudo parameters resolve to plausible
values: the stack's region and partition, a placeholder account, and resource names from the template (or the
logical id where the template leaves the name to CloudFormation). A value that cannot be resolved is kept as
`unresolved` so the check reports it instead of guessing.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from stacks.resource_names import partition_of

PLACEHOLDER_ACCOUNT = "123456789012"


class PolicyKind(StrEnum):
    IDENTITY = "identity policy"
    TRUST = "trust policy"
    KEY = "key policy"
    TOPIC = "topic policy"
    QUEUE = "queue policy"
    BUS = "event bus policy"
    BUCKET = "bucket policy"
    FUNCTION = "function permission"


@dataclass(frozen=True)
class Statement:
    where: str
    kind: PolicyKind
    sid: str | None
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    conditions: Mapping[str, Mapping[str, Any]]
    principals: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # NotAction / NotResource statements: their actions are checked to exist, nothing else.
    negated: bool = False
    # Key policies only: the key encrypts an SNS topic of the same template.
    key_encrypts_topic: bool = False
    # Identity policies: the logical ids of the roles the policy is attached to.
    roles: tuple[str, ...] = ()
    unresolved: tuple[str, ...] = ()

    @property
    def service_principals(self) -> tuple[str, ...]:
        return self.principals.get("Service", ())


class Unresolvable(ValueError):
    """A CloudFormation value the placeholders cannot stand for."""


def _as_tuple(value: Any) -> tuple[Any, ...]:
    if value is None:
        return ()
    return tuple(value) if isinstance(value, list) else (value,)


class Resolver:
    """Resolves CloudFormation values of one template to strings."""

    def __init__(self, template: Mapping[str, Any], *, stack_name: str, region: str) -> None:
        self.resources: Mapping[str, Any] = template.get("Resources", {})
        self.stack_name = stack_name
        self.region = region
        self.partition = partition_of(region)
        self.account = PLACEHOLDER_ACCOUNT
        self.pseudo = {
            "AWS::Partition": self.partition,
            "AWS::Region": region,
            "AWS::AccountId": self.account,
            "AWS::URLSuffix": "amazonaws.com.cn" if self.partition == "aws-cn" else "amazonaws.com",
            "AWS::StackName": stack_name,
            "AWS::StackId": f"arn:{self.partition}:cloudformation:{region}:{self.account}:stack/{stack_name}/"
            f"{uuid.uuid5(uuid.NAMESPACE_URL, stack_name)}",
        }

    def resolve(self, value: Any) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, dict) and len(value) == 1:
            [(function, argument)] = value.items()
            if function == "Ref":
                return self.ref(argument)
            if function == "Fn::GetAtt":
                logical_id, attribute = argument.split(".", 1) if isinstance(argument, str) else argument
                return self.get_att(logical_id, attribute)
            if function == "Fn::Join":
                separator, parts = argument
                return str(separator).join(self.resolve(part) for part in parts)
            if function == "Fn::Sub":
                return self._sub(argument)
            if function == "Fn::Select":
                index, items = argument
                return self.resolve_list(items)[int(self.resolve(index))]
        raise Unresolvable(f"cannot resolve {value!r}")

    def resolve_list(self, value: Any) -> list[str]:
        if isinstance(value, dict) and list(value) == ["Fn::Split"]:
            separator, text = value["Fn::Split"]
            return self.resolve(text).split(separator)
        return [self.resolve(item) for item in _as_tuple(value)]

    def _sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return self.resolve(variables[name])
            if "." in name and name not in self.pseudo:
                logical_id, attribute = name.split(".", 1)
                return self.get_att(logical_id, attribute)
            return self.ref(name)

        return re.sub(r"\$\{([^}]+)\}", replace, str(text))

    def _resource(self, logical_id: str) -> tuple[str, Mapping[str, Any]]:
        resource = self.resources.get(logical_id)
        if resource is None:
            raise Unresolvable(f"no resource {logical_id!r} in the template")
        return str(resource["Type"]), resource.get("Properties", {})

    def _name(self, logical_id: str, name_property: str) -> str:
        _, properties = self._resource(logical_id)
        if name_property in properties:
            return self.resolve(properties[name_property])
        return logical_id  # CloudFormation generates one; the logical id stands for it

    def ref(self, name: str) -> str:
        if name in self.pseudo:
            return self.pseudo[name]
        resource_type, _ = self._resource(name)
        if resource_type == "AWS::SNS::Topic":
            return self.arn("sns", self._name(name, "TopicName"))
        if resource_type == "AWS::SQS::Queue":
            return f"https://sqs.{self.region}.{self.pseudo['AWS::URLSuffix']}/{self.account}/" + self._name(
                name, "QueueName"
            )
        if resource_type == "AWS::KMS::Key":
            return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.stack_name}/{name}"))
        name_properties = {
            "AWS::SSM::Parameter": "Name",
            "AWS::Lambda::Function": "FunctionName",
            "AWS::IAM::Role": "RoleName",
            "AWS::Events::EventBus": "Name",
            "AWS::Events::Rule": "Name",
            "AWS::Logs::LogGroup": "LogGroupName",
            "AWS::DynamoDB::Table": "TableName",
            "AWS::S3::Bucket": "BucketName",
        }
        if resource_type in name_properties:
            return self._name(name, name_properties[resource_type])
        raise Unresolvable(f"no placeholder for Ref of {resource_type} {name}")

    def arn(self, service: str, resource: str, *, region: str | None = None, account: str | None = None) -> str:
        region = self.region if region is None else region
        account = self.account if account is None else account
        return f"arn:{self.partition}:{service}:{region}:{account}:{resource}"

    def get_att(self, logical_id: str, attribute: str) -> str:  # noqa: PLR0911 - one return per resource type's ARN format
        resource_type, properties = self._resource(logical_id)
        if (resource_type, attribute) in {("AWS::SNS::Topic", "TopicArn"), ("AWS::SQS::Queue", "QueueUrl")}:
            return self.ref(logical_id)
        if attribute != "Arn":
            raise Unresolvable(f"no placeholder for {resource_type} {logical_id}.{attribute}")
        if resource_type == "AWS::SQS::Queue":
            return self.arn("sqs", self._name(logical_id, "QueueName"))
        if resource_type == "AWS::KMS::Key":
            return self.arn("kms", f"key/{self.ref(logical_id)}")
        if resource_type == "AWS::DynamoDB::Table":
            return self.arn("dynamodb", f"table/{self.ref(logical_id)}")
        if resource_type == "AWS::Logs::LogGroup":
            # What CloudFormation returns for a log group: its streams' prefix.
            return self.arn("logs", f"log-group:{self.ref(logical_id)}:*")
        if resource_type == "AWS::Lambda::Function":
            return self.arn("lambda", f"function:{self.ref(logical_id)}")
        if resource_type == "AWS::IAM::Role":
            return self.arn("iam", f"role/{self.ref(logical_id)}", region="")
        if resource_type == "AWS::Events::EventBus":
            return self.arn("events", f"event-bus/{self.ref(logical_id)}")
        if resource_type == "AWS::Events::Rule":
            bus = self.resolve(properties.get("EventBusName", "default")).rsplit("/", 1)[-1]
            rule = self._name(logical_id, "Name")
            return self.arn("events", f"rule/{rule}" if bus == "default" else f"rule/{bus}/{rule}")
        if resource_type == "AWS::SSM::Parameter":
            return self.arn("ssm", "parameter/" + self.ref(logical_id).lstrip("/"))
        if resource_type == "AWS::S3::Bucket":
            return self.arn("s3", self.ref(logical_id), region="", account="")
        raise Unresolvable(f"no placeholder for {resource_type} {logical_id}.Arn")

    def queue_arn_of_url(self, url: str) -> str:
        *_, account, name = url.rstrip("/").split("/")
        return self.arn("sqs", name, account=account)


def _principals(value: Any, resolver: Resolver) -> dict[str, tuple[str, ...]]:
    if value is None:
        return {}
    if value == "*":
        return {"AWS": ("*",)}

    def resolved(principal: Any) -> str:
        try:
            return resolver.resolve(principal)
        except Unresolvable:
            return str(principal)

    return {kind: tuple(resolved(p) for p in _as_tuple(names)) for kind, names in value.items()}


def _statements(
    document: Mapping[str, Any],
    resolver: Resolver,
    *,
    where: str,
    kind: PolicyKind,
    own_resources: Sequence[str] = (),
    key_encrypts_topic: bool = False,
    roles: Sequence[str] = (),
) -> list[Statement]:
    statements = []
    for raw in _as_tuple(document.get("Statement")):
        resources: list[str] = []
        unresolved: list[str] = []
        for value in _as_tuple(raw.get("Resource", raw.get("NotResource"))):
            try:
                resolved = resolver.resolve(value)
            except Unresolvable as error:
                unresolved.append(str(error))
                continue
            # In a resource policy, '*' is the resource the policy is attached to.
            resources += list(own_resources) if resolved == "*" and own_resources else [resolved]
        if not resources and kind is not PolicyKind.IDENTITY and "Resource" not in raw:
            resources = list(own_resources)  # trust policies and key policies may leave the resource out
        statements.append(
            Statement(
                where=where,
                kind=kind,
                sid=raw.get("Sid"),
                effect=str(raw.get("Effect")),
                actions=tuple(str(a) for a in _as_tuple(raw.get("Action", raw.get("NotAction")))),
                resources=tuple(resources),
                conditions=raw.get("Condition", {}),
                principals=_principals(raw.get("Principal"), resolver),
                negated="NotAction" in raw or "NotResource" in raw,
                key_encrypts_topic=key_encrypts_topic,
                roles=tuple(roles),
                unresolved=tuple(unresolved),
            )
        )
    return statements


def _keys_encrypting_topics(resources: Mapping[str, Any]) -> set[str]:
    keys = set()
    for resource in resources.values():
        if resource["Type"] == "AWS::SNS::Topic":
            key = resource.get("Properties", {}).get("KmsMasterKeyId")
            if isinstance(key, dict):
                reference = key.get("Ref") or key.get("Fn::GetAtt", [None])[0]
                keys.add(str(reference))
    return keys


def _function_permission(logical_id: str, properties: Mapping[str, Any], resolver: Resolver) -> dict[str, Any]:
    """A Lambda permission as the statement Lambda adds to the function's resource policy."""
    function = resolver.resolve(properties["FunctionName"])
    if not function.startswith("arn:"):
        function = resolver.arn("lambda", f"function:{function}")
    principal = resolver.resolve(properties["Principal"])
    principal_kind = "Service" if principal.endswith((".amazonaws.com", ".amazonaws.com.cn")) else "AWS"
    conditions: dict[str, dict[str, Any]] = {}
    if "SourceArn" in properties:
        conditions.setdefault("ArnLike", {})["aws:SourceArn"] = properties["SourceArn"]
    for property_name, key in (("SourceAccount", "aws:SourceAccount"), ("PrincipalOrgID", "aws:PrincipalOrgID")):
        if property_name in properties:
            conditions.setdefault("StringEquals", {})[key] = properties[property_name]
    if "FunctionUrlAuthType" in properties:
        conditions.setdefault("StringEquals", {})["lambda:FunctionUrlAuthType"] = properties["FunctionUrlAuthType"]
    return {
        "Sid": logical_id,
        "Effect": "Allow",
        "Principal": {principal_kind: principal},
        "Action": properties["Action"],
        "Resource": function,
        "Condition": conditions,
    }


def _bus_policy_statement(properties: Mapping[str, Any]) -> dict[str, Any]:
    """The legacy shape of AWS::Events::EventBusPolicy (Action, Principal, Condition{Type, Key, Value})."""
    statement: dict[str, Any] = {
        "Sid": properties.get("StatementId"),
        "Effect": "Allow",
        "Action": properties["Action"],
        "Principal": {"AWS": properties["Principal"]},
    }
    condition = properties.get("Condition")
    if condition:
        statement["Condition"] = {condition["Type"]: {condition["Key"]: condition["Value"]}}
    return statement


def template_statements(  # noqa: PLR0912 - one branch per kind of policy-bearing resource
    template: Mapping[str, Any], *, stack_name: str, region: str
) -> list[Statement]:
    """Every statement of every identity and resource policy in `template`."""
    resolver = Resolver(template, stack_name=stack_name, region=region)
    resources: Mapping[str, Any] = template.get("Resources", {})
    topic_keys = _keys_encrypting_topics(resources)
    statements: list[Statement] = []
    for logical_id, resource in resources.items():
        resource_type = resource["Type"]
        properties = resource.get("Properties", {})
        where = f"{stack_name}: {resource_type} {logical_id}"

        def add(
            document: Mapping[str, Any],
            kind: PolicyKind,
            own: Sequence[str] = (),
            *,
            label: str = where,
            logical_id: str = logical_id,
            roles: Sequence[str] = (),
        ) -> None:
            statements.extend(
                _statements(
                    document,
                    resolver,
                    where=label,
                    kind=kind,
                    own_resources=own,
                    key_encrypts_topic=kind is PolicyKind.KEY and logical_id in topic_keys,
                    roles=roles,
                )
            )

        if resource_type in {"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"}:
            roles = [role["Ref"] for role in properties.get("Roles", []) if isinstance(role, dict) and "Ref" in role]
            roles += [
                role_id
                for role_id, role in resources.items()
                if role["Type"] == "AWS::IAM::Role"
                and {"Ref": logical_id} in role.get("Properties", {}).get("ManagedPolicyArns", [])
            ]
            add(properties["PolicyDocument"], PolicyKind.IDENTITY, roles=roles)
        elif resource_type == "AWS::IAM::Role":
            role_arn = resolver.get_att(logical_id, "Arn")
            add(properties["AssumeRolePolicyDocument"], PolicyKind.TRUST, [role_arn], label=f"{where} (trust)")
            for inline in properties.get("Policies", []):
                label = f"{where} ({inline.get('PolicyName')})"
                add(inline["PolicyDocument"], PolicyKind.IDENTITY, label=label, roles=[logical_id])
        elif resource_type == "AWS::KMS::Key":
            add(properties["KeyPolicy"], PolicyKind.KEY, [resolver.get_att(logical_id, "Arn")])
        elif resource_type == "AWS::SNS::TopicPolicy":
            add(properties["PolicyDocument"], PolicyKind.TOPIC, resolver.resolve_list(properties["Topics"]))
        elif resource_type == "AWS::SQS::QueuePolicy":
            queues = [resolver.queue_arn_of_url(url) for url in resolver.resolve_list(properties["Queues"])]
            add(properties["PolicyDocument"], PolicyKind.QUEUE, queues)
        elif resource_type == "AWS::S3::BucketPolicy":
            bucket = resolver.resolve(properties["Bucket"])
            own = [resolver.arn("s3", bucket, region="", account="")]
            add(properties["PolicyDocument"], PolicyKind.BUCKET, own)
        elif resource_type in {"AWS::Events::EventBusPolicy", "AWS::Events::EventBus"}:
            bus_name = resolver.resolve(properties.get("EventBusName", properties.get("Name", "default")))
            own = [resolver.arn("events", f"event-bus/{bus_name.rsplit('/', 1)[-1]}")]
            if "Policy" in properties:
                add(properties["Policy"], PolicyKind.BUS, own)
            elif "Statement" in properties:
                add({"Statement": [properties["Statement"]]}, PolicyKind.BUS, own)
            elif resource_type == "AWS::Events::EventBusPolicy":
                add({"Statement": [_bus_policy_statement(properties)]}, PolicyKind.BUS, own)
        elif resource_type == "AWS::Lambda::Permission":
            add({"Statement": [_function_permission(logical_id, properties, resolver)]}, PolicyKind.FUNCTION)
    return statements
