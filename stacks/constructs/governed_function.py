"""The Lambda factory: every function of AMI governance is built here, the same way."""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, Duration, ILocalBundling, RemovalPolicy, Stack, Token
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.context_options import powertools_layer_version
from stacks.nag import acknowledge, wildcard_resource_finding
from stacks.resource_names import partition_of

LAMBDAS_DIR = Path(__file__).resolve().parents[2] / "lambdas"
# What the functions import that neither the Lambda runtime (boto3) nor the Powertools layer (pydantic, the X-Ray
# SDK) brings: the report's HTML is rendered with Jinja2, which needs MarkupSafe. Pure Python, so copied from the
# synthesizing interpreter's site-packages (the versions requirements.txt pins; a test holds them together)
# rather than installed by pip in Docker for the Lambda's platform.
BUNDLED_PACKAGES = ("jinja2", "markupsafe")
# MarkupSafe's C accelerator is built for the synthesizing interpreter (CPython 3.11 on x86_64 here), not for the
# Lambda's (3.14, arm64): left out, MarkupSafe falls back to its pure-Python `_native` module, as its __init__ does
# on ImportError. The .c source and the stub go with it.
BUNDLE_EXCLUDED_NAMES = ("__pycache__", "*.pyc", "tests", ".mypy_cache", ".pytest_cache", "_speedups*")
# The operator CLI (and its session adapter) runs on laptops, never in a Lambda (paths under lambdas/); the editable
# install (`make setup`) leaves an egg-info directory there.
OPERATOR_ONLY = ("ami_governance/cli", "ami_governance/adapters/session.py")
OPERATOR_ONLY_NAMES = ("*.egg-info",)

SERVICE_NAME = "ami-governance"
METRICS_NAMESPACE = "AmiGovernance"

# Powertools for AWS Lambda (Python) public layer. Version 36 is Powertools 3.31.1, the version requirements.txt
# pins (a test holds them together); override with `cdk synth -c powertools_layer_version=N`.
POWERTOOLS_LAYER_NAME = "AWSLambdaPowertoolsPythonV3-python314-arm64"
DEFAULT_POWERTOOLS_LAYER_VERSION = 36
POWERTOOLS_VERSION = "3.31.1"
COMMERCIAL_PARTITION = "aws"

# Where the publisher puts the layer, per partition: region -> the account that owns it there. From the
# Powertools for AWS Lambda (Python) documentation, "Installation" > "Lambda Layer": the table of regional ARNs
# (commercial partition, account 017000801446), "AWS China regions" and "AWS GovCloud regions". A region that is
# not listed fails the synth: the deployment would fail later on a layer version that does not exist. A region the
# publisher adds later is one line here.
_COMMERCIAL_LAYER_ACCOUNT = "017000801446"
_COMMERCIAL_LAYER_REGIONS = (
    "af-south-1", "ap-east-1", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ap-south-1", "ap-south-2",
    "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4", "ap-southeast-5", "ap-southeast-7",
    "ca-central-1", "eu-central-1", "eu-central-2", "eu-north-1", "eu-south-1", "eu-south-2", "eu-west-1",
    "eu-west-2", "eu-west-3", "il-central-1", "me-central-1", "me-south-1", "mx-central-1", "sa-east-1",
    "us-east-1", "us-east-2", "us-west-1", "us-west-2",
)  # fmt: skip
POWERTOOLS_LAYER_ACCOUNTS: Final[Mapping[str, Mapping[str, str]]] = {
    COMMERCIAL_PARTITION: dict.fromkeys(_COMMERCIAL_LAYER_REGIONS, _COMMERCIAL_LAYER_ACCOUNT),
    "aws-cn": {"cn-north-1": "498634801083"},
    "aws-us-gov": {"us-gov-east-1": "165087284144", "us-gov-west-1": "165093116878"},
}

DEFAULT_TIMEOUT = Duration.seconds(60)
DEFAULT_MEMORY_MB = 256


class PowertoolsLayerError(ValueError):
    """The Lambdas cannot get the Powertools layer in this region (or with these options); says where they can."""


def powertools_layer_arn(region: str, version: int | None) -> str:
    """The layer's ARN in `region`; `version` None means the default, which only the commercial partition has.

    The copies in the China and GovCloud partitions are published separately and their version numbers have not
    always followed the commercial ones (the publisher's page listed GovCloud at 27 when the commercial partition
    was at 37), so there the version must be given: the one that carries the Powertools version pinned here.
    """
    partition = partition_of(region)
    account = POWERTOOLS_LAYER_ACCOUNTS.get(partition, {}).get(region)
    if account is None:
        raise PowertoolsLayerError(
            f"region {region}: the Powertools layer {POWERTOOLS_LAYER_NAME} is not published there, so the "
            f"Lambdas cannot run there (choose another home_region); it is published in {_where_published()}"
        )
    if version is None:
        if partition != COMMERCIAL_PARTITION:
            raise PowertoolsLayerError(
                f"region {region}: {POWERTOOLS_LAYER_NAME} versions in the {partition} partition are numbered apart "
                f"from the commercial ones; give the one that carries Powertools {POWERTOOLS_VERSION} with "
                f"-c powertools_layer_version=N (see the layer in account {account})"
            )
        version = DEFAULT_POWERTOOLS_LAYER_VERSION
    return f"arn:{partition}:lambda:{region}:{account}:layer:{POWERTOOLS_LAYER_NAME}:{version}"


def _where_published() -> str:
    return "; ".join(
        f"{partition}: {', '.join(sorted(regions))}" for partition, regions in POWERTOOLS_LAYER_ACCOUNTS.items()
    )


@jsii.implements(ILocalBundling)
class _LocalPackage:
    """Builds the functions' code without Docker: lambdas/ plus BUNDLED_PACKAGES, less BUNDLE_EXCLUDED_NAMES."""

    # jsii passes the bundling options as one positional struct (the stubs declare them as keywords); none is used.
    def try_bundle(self, output_dir: str, *_options: Any, **_keywords: Any) -> bool:
        bundle_function_code(Path(output_dir))
        return True


def bundle_function_code(output: Path) -> None:
    """Write the functions' code into `output`: what the asset holds (the benchmark measures it the same way)."""
    ignore = shutil.ignore_patterns(*BUNDLE_EXCLUDED_NAMES)
    operator_names = shutil.ignore_patterns(*OPERATOR_ONLY_NAMES)

    def lambdas_ignore(directory: str, names: list[str]) -> set[str]:
        relative = Path(directory).relative_to(LAMBDAS_DIR)
        operator_only = {name for name in names if (relative / name).as_posix() in OPERATOR_ONLY}
        return set(ignore(directory, names)) | set(operator_names(directory, names)) | operator_only

    shutil.copytree(LAMBDAS_DIR, output, ignore=lambdas_ignore, dirs_exist_ok=True)
    for package in BUNDLED_PACKAGES:
        shutil.copytree(package_directory(package), output / package, ignore=ignore, dirs_exist_ok=True)


def package_directory(package: str) -> Path:
    """Where the synthesizing interpreter imports `package` from; a missing package fails the synth, naming it."""
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if len(locations) != 1:
        raise RuntimeError(f"{package} is not installed as one package directory (pip install -r requirements.txt)")
    return Path(locations[0])


def function_code() -> lambda_.Code:
    # One asset for every function (the same output, hence the same hash; CDK stages it once): the shared domain
    # package, the thin handlers and the bundled packages. The report alone imports Jinja2; the others carry it
    # (README "Measured": what it adds to the asset) rather than have a second asset to keep in step, and never
    # import it. The hash is of the output (the copied files): an upgraded package changes the asset too.
    return lambda_.Code.from_asset(
        str(LAMBDAS_DIR),
        asset_hash_type=AssetHashType.OUTPUT,
        bundling=BundlingOptions(
            # Never pulled: local bundling always succeeds, and CDK only falls back to the image when it does not.
            image=DockerImage.from_registry("local-bundling-only"),
            local=_LocalPackage(),
        ),
    )


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
        memory_size: int = DEFAULT_MEMORY_MB,
        timeout: Duration = DEFAULT_TIMEOUT,
        log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS,
    ) -> None:
        super().__init__(scope, construct_id)
        region = Stack.of(self).region
        if Token.is_unresolved(region):
            raise PowertoolsLayerError(f"{self.node.path}: the Powertools layer ARN needs the stack's region at synth")
        layer_arn = powertools_layer_arn(region, powertools_layer_version(self.node))
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
            code=function_code(),
            handler=handler,
            memory_size=memory_size,
            timeout=timeout,
            role=self.role,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            application_log_level_v2=lambda_.ApplicationLogLevel.INFO,
            system_log_level_v2=lambda_.SystemLogLevel.WARN,
            tracing=lambda_.Tracing.ACTIVE,
            layers=[lambda_.LayerVersion.from_layer_version_arn(self, "Powertools", layer_arn)],
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
