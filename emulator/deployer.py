"""Deploy synthesized CloudFormation templates into the emulator: a small translator of the resource types the
stacks use.

Why not moto's own CloudFormation? It would create the Lambda functions in moto's Lambda, which needs Docker to
invoke them, and it accepts resource types it does not implement. This translator creates every resource through
the emulator's AWS API (so a user sees them with any client), runs the functions itself (see functions.py), and
refuses a resource type it does not know, so a stack change that the emulator cannot honour fails loudly.
Event source mappings read SQS queues only; the router runs them (see event_sources.py).
IAM and resource policies are created where moto has them; moto does not evaluate IAM. The identity policies
attached to each role (AWS::IAM::Policy, a role's inline Policies) are resolved into a `PolicyRegistry`, which the
emulator's optional enforcement evaluates (emulator/iam/, `--enforce-iam`).
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from emulator.assembly import StackArtifact
from emulator.clients import EmulatorClients
from emulator.event_sources import SqsEventSourceMapping
from emulator.functions import FunctionRegistry, FunctionSpec
from emulator.iam.enforcement import PolicyRegistry

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import CreateTableInputTypeDef
    from mypy_boto3_events.type_defs import PutRuleRequestTypeDef
    from mypy_boto3_iam.type_defs import CreateRoleRequestTypeDef
    from mypy_boto3_kms.type_defs import CreateKeyRequestTypeDef
    from mypy_boto3_s3.type_defs import BucketLoggingStatusTypeDef, LifecycleRuleTypeDef
    from mypy_boto3_sqs.literals import QueueAttributeNameType
    from mypy_boto3_ssm.type_defs import PutParameterRequestTypeDef

logger = logging.getLogger(__name__)

PARTITION = "aws"
URL_SUFFIX = "amazonaws.com"
# A variable of Fn::Sub, `${Name}`, or the escape `${!Literal}` that CloudFormation renders as the text `${Literal}`
# ("Fn::Sub", CloudFormation Template Reference).
SUB_VARIABLE = re.compile(r"\$\{(!?)([^}]*)\}")
# Resource types whose only effect is access control, which the emulator does not enforce.
ACCESS_CONTROL_TYPES = frozenset(
    {
        "AWS::IAM::Policy",
        "AWS::SQS::QueuePolicy",
        "AWS::SNS::TopicPolicy",
        "AWS::Lambda::Permission",
        "AWS::CDK::Metadata",
    }
)


# Resource types moto does not implement and whose absence changes nothing the emulator can show.
NOT_EMULATED_TYPES: dict[str, str] = {}
# What AWS::Rbin::Rule passes to rbin:CreateRule (the resource's properties are the API's members, plus Status,
# which CreateRule does not take: a new rule is available).
RBIN_RULE_PROPERTIES = (
    "ResourceType", "RetentionPeriod", "Description", "ResourceTags", "ExcludeResourceTags", "LockConfiguration",
    "Tags",
)  # fmt: skip


# What an AWS::S3::Bucket may say; anything else (replication, notifications, CORS, websites...) would change what
# the bucket does, and the emulator refuses it rather than ignore it.
BUCKET_PROPERTIES = frozenset(
    {
        "BucketName", "BucketEncryption", "PublicAccessBlockConfiguration", "OwnershipControls",
        "LifecycleConfiguration", "LoggingConfiguration", "VersioningConfiguration", "Tags",
    }
)  # fmt: skip
# The lifecycle rule members the stacks use, in CloudFormation's spelling; others are refused.
LIFECYCLE_RULE_PROPERTIES = frozenset({"Id", "Status", "Prefix", "ExpirationInDays", "AbortIncompleteMultipartUpload"})


class DeployError(RuntimeError):
    pass


@dataclass
class Physical:
    """A created resource: what `Ref` returns and the attributes `Fn::GetAtt` can read."""

    ref: str
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass
class DeployedStack:
    name: str
    region: str
    resources: dict[str, Physical] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


# What an SQS event source mapping may say; a property outside these (FilterCriteria, a Kafka or stream setting)
# changes what the function receives, and the emulator refuses it rather than ignore it.
SQS_MAPPING_PROPERTIES = frozenset(
    {
        "EventSourceArn", "FunctionName", "BatchSize", "MaximumBatchingWindowInSeconds", "FunctionResponseTypes",
        "Enabled", "ScalingConfig", "MetricsConfig", "Tags",
    }
)  # fmt: skip


class StackDeployer:
    def __init__(
        self,
        endpoint_url: str,
        account_id: str,
        functions: FunctionRegistry,
        add_sqs_mapping: Callable[[SqsEventSourceMapping], None] | None = None,
        policies: PolicyRegistry | None = None,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.policies = policies if policies is not None else PolicyRegistry()
        self.account_id = account_id
        self.functions = functions
        self.add_sqs_mapping = add_sqs_mapping  # the router, which runs the mappings
        self.client = EmulatorClients(endpoint_url, "emulator-deployer").client
        # Server access logging waits for the log bucket's policy (see _bucket): (region, bucket) -> its logging.
        self._pending_logging: dict[tuple[str, str], BucketLoggingStatusTypeDef] = {}

    # ---- orchestration -----------------------------------------------------------------------

    def deploy(self, stack: StackArtifact) -> DeployedStack:
        deployed = DeployedStack(stack.name, stack.region)
        resources: dict[str, Any] = stack.template.get("Resources", {})
        for logical_id in _creation_order(resources):
            definition = resources[logical_id]
            resource_type = definition["Type"]
            if resource_type == "AWS::IAM::Policy":
                self._register_policy(stack, deployed, logical_id, definition.get("Properties", {}))
            if resource_type in ACCESS_CONTROL_TYPES or resource_type in NOT_EMULATED_TYPES:
                reason = NOT_EMULATED_TYPES.get(resource_type, "access control is not enforced by the emulator")
                deployed.skipped[logical_id] = f"{resource_type}: {reason}"
                deployed.resources[logical_id] = Physical(ref=logical_id, attributes={"Arn": logical_id})
                continue
            create = self._creators().get(resource_type)
            if create is None:
                raise DeployError(
                    f"{stack.name}/{logical_id}: resource type {resource_type} is not supported by the emulator"
                )
            properties = _Resolver(self, stack, deployed).resolve(definition.get("Properties", {}))
            try:
                deployed.resources[logical_id] = create(stack, deployed, logical_id, properties)
            except Exception as error:
                raise DeployError(f"{stack.name}/{logical_id} ({resource_type}): {error}") from error
        self._enable_pending_logging()
        return deployed

    def _creators(self) -> dict[str, Callable[[StackArtifact, DeployedStack, str, dict[str, Any]], Physical]]:
        return {
            "AWS::Events::EventBus": self._event_bus,
            "AWS::Events::Rule": self._rule,
            "AWS::SQS::Queue": self._queue,
            "AWS::SNS::Topic": self._topic,
            "AWS::KMS::Key": self._kms_key,
            "AWS::DynamoDB::Table": self._table,
            "AWS::SSM::Parameter": self._parameter,
            "AWS::Logs::LogGroup": self._log_group,
            "AWS::IAM::Role": self._role,
            "AWS::Lambda::Function": self._function,
            "AWS::Lambda::EventInvokeConfig": self._event_invoke_config,
            "AWS::Lambda::EventSourceMapping": self._event_source_mapping,
            "AWS::CloudWatch::Alarm": self._alarm,
            "AWS::CloudWatch::Dashboard": self._dashboard,
            "AWS::Rbin::Rule": self._rbin_rule,
            "AWS::S3::Bucket": self._bucket,
            "AWS::S3::BucketPolicy": self._bucket_policy,
        }

    def _name(self, stack: StackArtifact, logical_id: str, limit: int = 64) -> str:
        # CloudFormation names unnamed resources <stack>-<logical id>-<random>; the emulator drops the random part.
        return f"{stack.name}-{logical_id}"[:limit]

    def _arn(self, service: str, region: str, resource: str, account: str | None = None) -> str:
        return f"arn:{PARTITION}:{service}:{region}:{self.account_id if account is None else account}:{resource}"

    # ---- resource types ----------------------------------------------------------------------

    def _event_bus(self, stack: StackArtifact, _: DeployedStack, logical_id: str, props: dict[str, Any]) -> Physical:
        unknown = set(props) - {"Name", "Policy"}
        if unknown:
            raise DeployError(f"event bus properties not supported by the emulator: {sorted(unknown)}")
        name = props["Name"]
        events = self.client("events", stack.region)
        arn = events.create_event_bus(Name=name)["EventBusArn"]
        if "Policy" in props:
            # The bus's resource policy, as CloudFormation applies it (PutPermission with the whole document):
            # stored, readable with DescribeEventBus; moto does not evaluate it at PutEvents.
            policy = props["Policy"]
            events.put_permission(EventBusName=name, Policy=policy if isinstance(policy, str) else json.dumps(policy))
        return Physical(name, {"Arn": arn, "Name": name})

    def _rule(self, stack: StackArtifact, _: DeployedStack, logical_id: str, props: dict[str, Any]) -> Physical:
        events = self.client("events", stack.region)
        name = props.get("Name") or self._name(stack, logical_id)
        bus = props.get("EventBusName", "default")
        rule: PutRuleRequestTypeDef = {"Name": name, "EventBusName": bus, "State": props.get("State", "ENABLED")}
        if "EventPattern" in props:
            pattern = props["EventPattern"]
            rule["EventPattern"] = pattern if isinstance(pattern, str) else json.dumps(pattern)
        if "ScheduleExpression" in props:
            rule["ScheduleExpression"] = props["ScheduleExpression"]
        if "Description" in props:
            rule["Description"] = props["Description"]
        arn = events.put_rule(**rule)["RuleArn"]
        targets = props.get("Targets", [])
        if targets:
            events.put_targets(Rule=name, EventBusName=bus, Targets=targets)
        return Physical(name if bus == "default" else f"{bus}|{name}", {"Arn": arn})

    def _queue(self, stack: StackArtifact, _: DeployedStack, logical_id: str, props: dict[str, Any]) -> Physical:
        name = props.get("QueueName") or self._name(stack, logical_id, 80)
        if props.get("FifoQueue") and not name.endswith(".fifo"):
            name = f"{name[:75]}.fifo"
        attributes: dict[QueueAttributeNameType, str] = {
            key: str(props[key])
            for key in (
                "MessageRetentionPeriod", "VisibilityTimeout", "DelaySeconds", "ReceiveMessageWaitTimeSeconds",
                "MaximumMessageSize",
            )
            if key in props
        }  # fmt: skip
        for key in ("FifoQueue", "ContentBasedDeduplication"):
            if key in props:
                attributes[key] = str(props[key]).lower()
        # The dead-letter queue is created first (the policy references its Arn); moto redrives on receive.
        policies: tuple[QueueAttributeNameType, ...] = ("RedrivePolicy", "RedriveAllowPolicy")
        for policy in policies:
            if policy in props:
                attributes[policy] = props[policy] if isinstance(props[policy], str) else json.dumps(props[policy])
        sqs = self.client("sqs", stack.region)
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = self._arn("sqs", stack.region, name)
        return Physical(url, {"Arn": arn, "QueueName": name, "QueueUrl": url})

    def _topic(self, stack: StackArtifact, _: DeployedStack, logical_id: str, props: dict[str, Any]) -> Physical:
        name = props.get("TopicName") or self._name(stack, logical_id, 256)
        attributes: dict[str, str] = {key: str(props[key]) for key in ("DisplayName", "KmsMasterKeyId") if key in props}
        arn = self.client("sns", stack.region).create_topic(Name=name, Attributes=attributes)["TopicArn"]
        return Physical(arn, {"TopicArn": arn, "TopicName": name})

    def _kms_key(self, stack: StackArtifact, _: DeployedStack, logical_id: str, props: dict[str, Any]) -> Physical:
        kms = self.client("kms", stack.region)
        request: CreateKeyRequestTypeDef = {"Description": props.get("Description", logical_id)}
        if "KeyPolicy" in props:
            request["Policy"] = json.dumps(props["KeyPolicy"])
        metadata = kms.create_key(**request)["KeyMetadata"]
        if props.get("EnableKeyRotation"):
            kms.enable_key_rotation(KeyId=metadata["KeyId"])
        return Physical(metadata["KeyId"], {"Arn": metadata["Arn"], "KeyId": metadata["KeyId"]})

    def _table(self, stack: StackArtifact, _: DeployedStack, logical_id: str, props: dict[str, Any]) -> Physical:
        name = props.get("TableName") or self._name(stack, logical_id, 255)
        request: CreateTableInputTypeDef = {
            "TableName": name,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": props.get("BillingMode", "PROVISIONED"),
        }
        if "ProvisionedThroughput" in props:
            request["ProvisionedThroughput"] = props["ProvisionedThroughput"]
        if "DeletionProtectionEnabled" in props:
            request["DeletionProtectionEnabled"] = bool(props["DeletionProtectionEnabled"])
        dynamodb = self.client("dynamodb", stack.region)
        description = dynamodb.create_table(**request)["TableDescription"]
        ttl = props.get("TimeToLiveSpecification")
        if ttl is not None:
            # CloudFormation applies the TTL after the table exists (UpdateTimeToLive), as here.
            dynamodb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": bool(ttl["Enabled"]), "AttributeName": ttl["AttributeName"]},
            )
        return Physical(name, {"Arn": description["TableArn"]})

    def _parameter(self, stack: StackArtifact, _: DeployedStack, logical_id: str, props: dict[str, Any]) -> Physical:
        name = props.get("Name") or f"CFN-{self._name(stack, logical_id)}"
        request: PutParameterRequestTypeDef = {
            "Name": name,
            "Value": props["Value"],
            "Type": props["Type"],
            "Overwrite": True,
        }
        if "Description" in props:
            request["Description"] = props["Description"]
        if "Tier" in props:
            request["Tier"] = props["Tier"]
        self.client("ssm", stack.region).put_parameter(**request)
        return Physical(name, {"Type": props["Type"], "Value": props["Value"]})

    def _log_group(self, stack: StackArtifact, _: DeployedStack, logical_id: str, props: dict[str, Any]) -> Physical:
        name = props.get("LogGroupName") or self._name(stack, logical_id, 512)
        logs = self.client("logs", stack.region)
        logs.create_log_group(logGroupName=name)
        if "RetentionInDays" in props:
            logs.put_retention_policy(logGroupName=name, retentionInDays=int(props["RetentionInDays"]))
        return Physical(name, {"Arn": self._arn("logs", stack.region, f"log-group:{name}:*")})

    def _register_policy(
        self, stack: StackArtifact, deployed: DeployedStack, logical_id: str, properties: dict[str, Any]
    ) -> None:
        # The roles it names are created before it (each is a Ref of the policy, see _creation_order).
        resolved = _Resolver(self, stack, deployed).resolve(properties)
        name = str(resolved.get("PolicyName") or logical_id)
        for role in resolved.get("Roles", []):
            self.policies.attach(str(role), f"{stack.name}/{name}", resolved["PolicyDocument"])

    def _role(self, stack: StackArtifact, _: DeployedStack, logical_id: str, props: dict[str, Any]) -> Physical:
        name = props.get("RoleName") or self._name(stack, logical_id)
        for inline in props.get("Policies", []):
            self.policies.attach(name, f"{stack.name}/{inline['PolicyName']}", inline["PolicyDocument"])
        if props.get("ManagedPolicyArns"):
            # The documents of managed policies (AWS's own among them) are not in the template: IAM enforcement
            # cannot evaluate them, and refuses what only they would allow.
            logger.warning("%s/%s: ManagedPolicyArns are not evaluated by --enforce-iam", stack.name, logical_id)
        request: CreateRoleRequestTypeDef = {
            "RoleName": name,
            "AssumeRolePolicyDocument": json.dumps(props["AssumeRolePolicyDocument"]),
        }
        if "Description" in props:
            request["Description"] = props["Description"]
        arn = self.client("iam", stack.region).create_role(**request)["Role"]["Arn"]
        return Physical(name, {"Arn": arn, "RoleId": name})

    def _function(self, stack: StackArtifact, _: DeployedStack, logical_id: str, props: dict[str, Any]) -> Physical:
        name = props.get("FunctionName") or self._name(stack, logical_id)
        code_key = props.get("Code", {}).get("S3Key")
        code_dir = stack.assets.get(str(code_key))
        if code_dir is None:
            raise DeployError(f"code asset {code_key!r} is not in the cloud assembly")
        arn = self._arn("lambda", stack.region, f"function:{name}")
        self.functions.register(
            FunctionSpec(
                name=name,
                arn=arn,
                region=stack.region,
                handler=props["Handler"],
                code_dir=code_dir,
                environment={k: str(v) for k, v in props.get("Environment", {}).get("Variables", {}).items()},
                role_arn=str(props.get("Role", "")),
                timeout_seconds=int(props.get("Timeout", 3)),
                dead_letter_arn=props.get("DeadLetterConfig", {}).get("TargetArn"),
                runtime=str(props.get("Runtime", "")),
            )
        )
        return Physical(name, {"Arn": arn})

    def _event_invoke_config(
        self, stack: StackArtifact, _: DeployedStack, logical_id: str, props: dict[str, Any]
    ) -> Physical:
        function = self.functions.get(str(props["FunctionName"]))
        if "MaximumRetryAttempts" in props:
            function.retry_attempts = int(props["MaximumRetryAttempts"])
        return Physical(f"{function.name}-config")

    def _event_source_mapping(
        self, stack: StackArtifact, _: DeployedStack, logical_id: str, props: dict[str, Any]
    ) -> Physical:
        source = str(props.get("EventSourceArn", ""))
        if source.split(":")[2:3] != ["sqs"]:
            raise DeployError(f"event source {source or '(none)'}: the emulator maps SQS queues only")
        if source.endswith(".fifo"):
            raise DeployError(f"event source {source}: the emulator does not map FIFO queues")
        unknown = sorted(set(props) - SQS_MAPPING_PROPERTIES)
        if unknown:
            raise DeployError(f"property {', '.join(unknown)} is not supported by the emulator")
        if self.add_sqs_mapping is None:
            raise DeployError("this deployer has no router to run event source mappings")
        function = self.functions.get(str(props["FunctionName"]))
        batch_size = int(props.get("BatchSize", 10))
        window = int(props.get("MaximumBatchingWindowInSeconds", 0))
        # CreateEventSourceMapping's own checks, which fail the deployment in AWS.
        if not 1 <= batch_size <= 10000:
            raise DeployError(f"BatchSize {batch_size} is not between 1 and 10000")
        if batch_size > 10 and window < 1:
            raise DeployError("MaximumBatchingWindowInSeconds must be at least 1 when BatchSize is greater than 10")
        region, queue_name = source.split(":")[3], source.rsplit(":", 1)[-1]
        if region != function.region:
            raise DeployError(f"event source {source} is not in the function's region {function.region}")
        sqs = self.client("sqs", region)
        url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])["Attributes"]
        visibility = int(attributes["VisibilityTimeout"])
        if visibility < function.timeout_seconds:
            raise DeployError(
                f"queue visibility timeout {visibility} s is less than function timeout {function.timeout_seconds} s"
            )
        mapping_id = str(uuid.uuid4())
        mapping = SqsEventSourceMapping(
            uuid=mapping_id,
            arn=self._arn("lambda", stack.region, f"event-source-mapping:{mapping_id}"),
            queue_arn=source,
            function=function,
            batch_size=batch_size,
            maximum_batching_window_seconds=window,
            report_batch_item_failures="ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
            enabled=str(props.get("Enabled", True)).lower() != "false",
        )
        self.add_sqs_mapping(mapping)
        return Physical(mapping_id, {"Id": mapping_id, "EventSourceMappingArn": mapping.arn})

    def _alarm(self, stack: StackArtifact, _: DeployedStack, logical_id: str, props: dict[str, Any]) -> Physical:
        name = props.get("AlarmName") or self._name(stack, logical_id, 255)
        keys = (
            "AlarmDescription", "ComparisonOperator", "EvaluationPeriods", "MetricName", "Namespace", "Period",
            "Statistic", "Threshold", "Dimensions", "AlarmActions", "TreatMissingData", "DatapointsToAlarm",
        )  # fmt: skip
        request = {key: props[key] for key in keys if key in props}
        for key in ("EvaluationPeriods", "Period", "DatapointsToAlarm"):
            if key in request:
                request[key] = int(request[key])
        if "Threshold" in request:
            request["Threshold"] = float(request["Threshold"])
        self.client("cloudwatch", stack.region).put_metric_alarm(AlarmName=name, **request)
        return Physical(name, {"Arn": self._arn("cloudwatch", stack.region, f"alarm:{name}")})

    def _dashboard(self, stack: StackArtifact, _: DeployedStack, logical_id: str, props: dict[str, Any]) -> Physical:
        name = props.get("DashboardName") or self._name(stack, logical_id, 255)
        body = props["DashboardBody"]
        self.client("cloudwatch", stack.region).put_dashboard(
            DashboardName=name, DashboardBody=body if isinstance(body, str) else json.dumps(body)
        )
        return Physical(name)

    def _bucket(self, stack: StackArtifact, _: DeployedStack, logical_id: str, props: dict[str, Any]) -> Physical:
        unknown = sorted(set(props) - BUCKET_PROPERTIES)
        if unknown:
            raise DeployError(f"property {', '.join(unknown)} is not supported by the emulator")
        # CloudFormation names an unnamed bucket <stack>-<logical id>-<random>, in lowercase as S3 requires.
        name = props.get("BucketName") or self._name(stack, logical_id, 63).lower()
        s3 = self.client("s3", stack.region)
        if stack.region == "us-east-1":
            s3.create_bucket(Bucket=name)
        else:
            s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": stack.region})  # type: ignore[typeddict-item]
        if "BucketEncryption" in props:
            rules = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
            s3.put_bucket_encryption(
                Bucket=name,
                ServerSideEncryptionConfiguration={
                    "Rules": [
                        {
                            "ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"],
                            **(
                                {"BucketKeyEnabled": bool(rule["BucketKeyEnabled"])}
                                if "BucketKeyEnabled" in rule
                                else {}
                            ),
                        }
                        for rule in rules
                    ]
                },
            )
        if "PublicAccessBlockConfiguration" in props:
            block = {
                key: str(value).lower() == "true" for key, value in props["PublicAccessBlockConfiguration"].items()
            }
            s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=block)  # type: ignore[arg-type]
        if "OwnershipControls" in props:
            s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=props["OwnershipControls"])
        if "VersioningConfiguration" in props:
            s3.put_bucket_versioning(
                Bucket=name, VersioningConfiguration={"Status": props["VersioningConfiguration"]["Status"]}
            )
        if "LifecycleConfiguration" in props:
            s3.put_bucket_lifecycle_configuration(
                Bucket=name,
                LifecycleConfiguration={
                    "Rules": [_lifecycle_rule(r) for r in props["LifecycleConfiguration"]["Rules"]]
                },
            )
        if "LoggingConfiguration" in props:
            logging = props["LoggingConfiguration"]
            enabled = {
                "TargetBucket": logging["DestinationBucketName"],
                "TargetPrefix": logging.get("LogFilePrefix", ""),
            }
            # S3 (moto as AWS) checks that the log bucket lets the logging service write, and that policy is a
            # resource of its own that names this bucket: CloudFormation creates it after this bucket. Logging is
            # turned on once it exists (or at the end of the stack, where a refusal fails the deployment).
            self._pending_logging[(stack.region, name)] = {"LoggingEnabled": enabled}  # type: ignore[typeddict-item]
        arn = f"arn:{PARTITION}:s3:::{name}"
        return Physical(
            name,
            {
                "Arn": arn,
                "DomainName": f"{name}.s3.{URL_SUFFIX}",
                "RegionalDomainName": f"{name}.s3.{stack.region}.{URL_SUFFIX}",
            },
        )

    def _bucket_policy(
        self, stack: StackArtifact, _: DeployedStack, logical_id: str, props: dict[str, Any]
    ) -> Physical:
        # Its log-delivery statement is what S3 checks before it turns on a bucket's access logging. moto evaluates
        # a bucket policy's actions and resources on every request but not its conditions: the TLS-only Deny
        # (aws:SecureTransport false) would refuse every call on the emulator's plain-HTTP endpoint, which stands
        # for AWS's HTTPS one. A Deny with conditions is therefore left out; what is left is stored.
        bucket = str(props["Bucket"])
        document = dict(props["PolicyDocument"])
        kept = [s for s in document.get("Statement", []) if not (s.get("Effect") == "Deny" and s.get("Condition"))]
        if kept:
            policy = json.dumps({**document, "Statement": kept})
            self.client("s3", stack.region).put_bucket_policy(Bucket=bucket, Policy=policy)
        self._enable_pending_logging(target=bucket)
        return Physical(f"{bucket}-policy")

    def _enable_pending_logging(self, target: str | None = None) -> None:
        for (region, bucket), status in list(self._pending_logging.items()):
            if target is not None and status["LoggingEnabled"]["TargetBucket"] != target:
                continue
            del self._pending_logging[(region, bucket)]
            try:
                self.client("s3", region).put_bucket_logging(Bucket=bucket, BucketLoggingStatus=status)
            except Exception as error:
                raise DeployError(f"bucket {bucket}: server access logging refused: {error}") from error

    def _rbin_rule(self, stack: StackArtifact, _: DeployedStack, logical_id: str, props: dict[str, Any]) -> Physical:
        # The emulator's Recycle Bin (emulator/moto_additions/rbin_service.py): deleted snapshots and AMIs the rule
        # matches stay restorable, as on AWS.
        unknown = sorted(set(props) - {*RBIN_RULE_PROPERTIES, "Status"})
        if unknown:
            raise DeployError(f"property {', '.join(unknown)} is not supported by the emulator")
        request = {key: props[key] for key in RBIN_RULE_PROPERTIES if key in props}
        period = request.get("RetentionPeriod") or {}
        if "RetentionPeriodValue" in period:
            request["RetentionPeriod"] = {**period, "RetentionPeriodValue": int(period["RetentionPeriodValue"])}
        rule = self.client("rbin", stack.region).create_rule(**request)
        # Ref returns the rule's ID; GetAtt gives Arn and Identifier (CloudFormation's AWS::Rbin::Rule reference).
        return Physical(rule["Identifier"], {"Arn": rule["RuleArn"], "Identifier": rule["Identifier"]})


class _Resolver:
    """CloudFormation intrinsic functions over the resources deployed so far."""

    def __init__(self, deployer: StackDeployer, stack: StackArtifact, deployed: DeployedStack) -> None:
        self.deployer = deployer
        self.stack = stack
        self.deployed = deployed

    def pseudo(self, name: str) -> str:
        values = {
            "AWS::AccountId": self.deployer.account_id,
            "AWS::Region": self.stack.region,
            "AWS::Partition": PARTITION,
            "AWS::URLSuffix": URL_SUFFIX,
            "AWS::StackName": self.stack.name,
        }
        if name not in values:
            raise DeployError(f"{self.stack.name}: unsupported reference {name}")
        return values[name]

    def resolve(self, node: Any) -> Any:  # noqa: PLR0911 - one return per intrinsic function
        if isinstance(node, list):
            return [self.resolve(item) for item in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, value),) = node.items()
            if key == "Ref":
                return self._ref(value)
            if key == "Fn::GetAtt":
                logical_id, attribute = value if isinstance(value, list) else value.split(".", 1)
                return self._resource(logical_id).attributes[attribute]
            if key == "Fn::Join":
                separator, parts = value
                return separator.join(str(self.resolve(part)) for part in parts)
            if key == "Fn::Sub":
                return self._sub(value)
            if key == "Fn::Select":
                index, items = value
                return self.resolve(items)[int(index)]
            if key == "Fn::Split":
                separator, text = value
                return str(self.resolve(text)).split(separator)
            if key.startswith("Fn::"):
                raise DeployError(f"{self.stack.name}: intrinsic {key} is not supported by the emulator")
        return {key: self.resolve(value) for key, value in node.items()}

    def _ref(self, name: str) -> str:
        if name.startswith("AWS::"):
            return self.pseudo(name)
        return self._resource(name).ref

    def _resource(self, logical_id: str) -> Physical:
        if logical_id not in self.deployed.resources:
            raise DeployError(f"{self.stack.name}: {logical_id} is referenced before it exists")
        return self.deployed.resources[logical_id]

    def _sub(self, value: Any) -> str:
        text, variables = (value, {}) if isinstance(value, str) else (value[0], self.resolve(value[1]))

        def replace(match: re.Match[str]) -> str:
            literal, name = match.groups()
            if literal:
                return f"${{{name}}}"
            if name in variables:
                return str(variables[name])
            if "." in name:
                logical_id, attribute = name.split(".", 1)
                return self._resource(logical_id).attributes[attribute]
            return self._ref(name)

        return SUB_VARIABLE.sub(replace, text)


def _lifecycle_rule(rule: dict[str, Any]) -> LifecycleRuleTypeDef:
    """A lifecycle rule in CloudFormation's spelling as PutBucketLifecycleConfiguration takes it."""
    unknown = sorted(set(rule) - LIFECYCLE_RULE_PROPERTIES)
    if unknown:
        raise DeployError(f"lifecycle rule property {', '.join(unknown)} is not supported by the emulator")
    translated: LifecycleRuleTypeDef = {"Status": rule["Status"], "Filter": {"Prefix": rule.get("Prefix", "")}}
    if "Id" in rule:
        translated["ID"] = rule["Id"]
    if "ExpirationInDays" in rule:
        translated["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "AbortIncompleteMultipartUpload" in rule:
        days = int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        translated["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": days}
    return translated


def _references(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str) and not value.startswith("AWS::"):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value[0] if isinstance(value, list) else value.split(".", 1)[0])
            elif key == "Fn::Sub":
                text, variables = (value, {}) if isinstance(value, str) else value
                found.update(
                    name.split(".", 1)[0]
                    for literal, name in SUB_VARIABLE.findall(text)
                    if not literal and name not in variables and not name.startswith("AWS::")
                )
                found.update(_references(variables))
            else:
                found.update(_references(value))
    elif isinstance(node, list):
        for item in node:
            found.update(_references(item))
    return found


def _creation_order(resources: dict[str, Any]) -> list[str]:
    """Logical ids so that every resource comes after what it references or depends on."""
    ordered: list[str] = []
    done: set[str] = set()

    def visit(logical_id: str, trail: tuple[str, ...]) -> None:
        if logical_id in done:
            return
        if logical_id in trail:
            raise DeployError(f"dependency cycle: {' -> '.join((*trail, logical_id))}")
        definition = resources[logical_id]
        depends = definition.get("DependsOn", [])
        needs = _references(definition.get("Properties", {})) | set([depends] if isinstance(depends, str) else depends)
        for dependency in sorted(needs & resources.keys()):
            visit(dependency, (*trail, logical_id))
        done.add(logical_id)
        ordered.append(logical_id)

    for logical_id in resources:
        visit(logical_id, ())
    return ordered
