"""The Lambda factory: every function of AMI governance is built here, the same way."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.nag import acknowledge, wildcard_resource_finding

LAMBDAS_DIR = Path(__file__).resolve().parents[2] / "lambdas"
ASSET_EXCLUDES = ["**/__pycache__", "**/*.pyc", "tests", "**/.mypy_cache", "**/.pytest_cache"]

SERVICE_NAME = "ami-governance"
METRICS_NAMESPACE = "AmiGovernance"

# Powertools for AWS Lambda (Python) public layer. Version 36 is Powertools 3.31.1, the version
# requirements.txt pins; override with `cdk synth -c powertools_layer_version=N`.
POWERTOOLS_LAYER_ACCOUNT = "017000801446"
POWERTOOLS_LAYER_NAME = "AWSLambdaPowertoolsPythonV3-python314-arm64"
DEFAULT_POWERTOOLS_LAYER_VERSION = 36
POWERTOOLS_LAYER_VERSION_CONTEXT_KEY = "powertools_layer_version"

DEFAULT_TIMEOUT = Duration.seconds(60)


def powertools_layer_arn(region: str, version: int) -> str:
    # The layer is published in the commercial partition only (account 017000801446).
    return f"arn:aws:lambda:{region}:{POWERTOOLS_LAYER_ACCOUNT}:layer:{POWERTOOLS_LAYER_NAME}:{version}"


class GovernedFunction(Construct):
    """A Python 3.14 arm64 function with JSON logs, X-Ray, an explicit log group, the Powertools layer, an
    async-invoke dead-letter queue (for a function invoked asynchronously) and a role of its own that starts with
    nothing but logs and tracing."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: str,
        description: str,
        environment: Mapping[str, str],
        dead_letter_queue: sqs.IQueue | None,
        memory_size: int = 256,
        timeout: Duration = DEFAULT_TIMEOUT,
        log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS,
    ) -> None:
        super().__init__(scope, construct_id)
        region = Stack.of(self).region
        layer_version = int(
            self.node.try_get_context(POWERTOOLS_LAYER_VERSION_CONTEXT_KEY) or DEFAULT_POWERTOOLS_LAYER_VERSION
        )
        self.log_group = logs.LogGroup(self, "Logs", retention=log_retention, removal_policy=RemovalPolicy.RETAIN)
        # Our own role instead of the AWSLambdaBasicExecutionRole managed policy, whose logs permissions
        # cover every log group in the account.
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Execution role of: {description}",
        )
        self.function = lambda_.Function(
            self,
            "Function",
            description=description,
            runtime=lambda_.Runtime.PYTHON_3_14,
            # arm64 (Graviton): cheaper per GB-second than x86_64, and Powertools publishes arm64 layers.
            architecture=lambda_.Architecture.ARM_64,
            # One asset for every function: the shared domain package plus thin handlers. Pure Python with
            # no dependencies beyond boto3 (in the runtime) and Powertools (the layer), so no Docker bundling.
            code=lambda_.Code.from_asset(str(LAMBDAS_DIR), exclude=ASSET_EXCLUDES),
            handler=handler,
            memory_size=memory_size,
            timeout=timeout,
            role=self.role,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            application_log_level_v2=lambda_.ApplicationLogLevel.INFO,
            system_log_level_v2=lambda_.SystemLogLevel.WARN,
            tracing=lambda_.Tracing.ACTIVE,
            layers=[
                lambda_.LayerVersion.from_layer_version_arn(
                    self, "Powertools", powertools_layer_arn(region, layer_version)
                )
            ],
            dead_letter_queue=dead_letter_queue,
            retry_attempts=2,
            environment={
                "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                **environment,
            },
        )
        self.log_group.grant_write(self.role)
        default_policy = self.role.node.find_child("DefaultPolicy")
        acknowledge(
            default_policy,
            wildcard_resource_finding(self, "*"),
            "X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level permissions (resource must be "
            "'*'), and this policy holds no other statement on '*'.",
        )
