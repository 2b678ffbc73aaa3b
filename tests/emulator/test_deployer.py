"""The deployer's CloudFormation intrinsics, as the CloudFormation Template Reference defines them (`Fn::Sub`).

A function's environment shows what a property resolved to: registering a function calls no AWS API, so these
tests need no endpoint.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from emulator.assembly import StackArtifact
from emulator.deployer import DeployError, StackDeployer
from emulator.functions import FunctionRegistry

ACCOUNT = "123456789012"
REGION = "eu-west-1"


def function(environment: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    properties: dict[str, Any] = {"Handler": "h.handler", "Code": {"S3Key": "code.zip"}}
    if name is not None:
        properties["FunctionName"] = name
    return {"Type": "AWS::Lambda::Function", "Properties": {**properties, "Environment": {"Variables": environment}}}


def deploy(tmp_path: Path, resources: dict[str, Any]) -> FunctionRegistry:
    registry = FunctionRegistry("http://127.0.0.1:9", tmp_path / "logs", lambda spec: "key")
    deployer = StackDeployer("http://127.0.0.1:9", ACCOUNT, registry)
    deployer.deploy(StackArtifact("Home", REGION, {"Resources": resources}, assets={"code.zip": tmp_path}))
    return registry


def resolved(tmp_path: Path, sub: Any, **others: Any) -> str:
    """What `{"Fn::Sub": sub}` resolves to in a function deployed after `others`."""
    registry = deploy(tmp_path, {**others, "Subject": function({"VALUE": {"Fn::Sub": sub}}, name="subject")})
    return registry.get("subject").environment["VALUE"]


def test_an_escaped_variable_is_the_literal_text(tmp_path):
    # Given a Fn::Sub string that writes `${!Literal}` (CloudFormation: "resolves this text as ${Literal}")
    sub = "echo ${!Literal} in ${AWS::Region} and ${!Other.Attr}"

    # When it is resolved, then the escapes are the text `${Literal}` and the variable is substituted
    assert resolved(tmp_path, sub) == f"echo ${{Literal}} in {REGION} and ${{Other.Attr}}"


def test_an_escaped_variable_is_not_a_variable_of_the_map(tmp_path):
    # Given a variable map that names `Literal`, and a string that escapes it once and uses it once
    sub = ["${!Literal}=${Literal}", {"Literal": "value"}]

    # When it is resolved, then only the unescaped one is substituted
    assert resolved(tmp_path, sub) == "${Literal}=value"


def test_every_variable_form_resolves(tmp_path):
    # Given a string with a pseudo parameter, a resource (Ref), a resource attribute (GetAtt) and map variables,
    # one of them resolved from an intrinsic and one named like a resource (the map comes first)
    other = function({}, name="other")
    sub = [
        "${AWS::AccountId}:${AWS::Partition}:${Other}:${Other.Arn}:${Mapped}:${Other.Name}",
        {"Mapped": {"Ref": "Other"}, "Other.Name": "from-the-map"},
    ]

    # When it is resolved, then each form has its value
    assert resolved(tmp_path, sub, Other=other) == (
        f"{ACCOUNT}:aws:other:arn:aws:lambda:{REGION}:{ACCOUNT}:function:other:other:from-the-map"
    )


def test_a_variable_of_the_map_is_no_dependency_on_a_resource_of_that_name(tmp_path):
    # Given a resource whose Fn::Sub map defines `Later`, and a resource Later that references the first
    resources = {
        "First": function({"VALUE": {"Fn::Sub": ["${Later}", {"Later": "from-the-map"}]}}, name="first"),
        "Later": function({"FIRST": {"Ref": "First"}}, name="later"),
    }

    # When the stack is deployed, then there is no cycle: the map variable is not the resource
    registry = deploy(tmp_path, resources)
    assert registry.get("first").environment["VALUE"] == "from-the-map"
    assert registry.get("later").environment["FIRST"] == "first"


def test_a_variable_naming_nothing_fails_the_deployment(tmp_path):
    # Given a string with a variable that is neither in the map nor a resource, when it is resolved, then the
    # deployment fails naming it, as CloudFormation refuses the template
    with pytest.raises(DeployError, match="Missing is referenced before it exists"):
        resolved(tmp_path, "${Missing}")


# ---- S3 buckets and dashboards, deployed into moto's server ----------------------------------------------------


@pytest.fixture
def endpoint() -> Iterator[str]:
    """moto's server application, the one the emulator puts behind its endpoint."""
    server = make_server(
        "127.0.0.1", 0, DomainDispatcherApplication(create_backend_app), threaded=True,
        request_handler=MotoRequestHandler,
    )  # fmt: skip
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    # moto's backends live in the process, across servers: each test starts from none.
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10).close()
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()


def _private(extra: dict[str, Any]) -> dict[str, Any]:
    # The settings stacks/constructs/reports_bucket.py gives both buckets, as CloudFormation properties.
    return {
        "BucketEncryption": {
            "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
        "PublicAccessBlockConfiguration": {
            "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True,
        },
        "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
        **extra,
    }  # fmt: skip


def _tls_only(bucket: str) -> dict[str, Any]:
    arn = {"Fn::GetAtt": [bucket, "Arn"]}
    return {
        "Action": "s3:*", "Effect": "Deny", "Principal": {"AWS": "*"},
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        "Resource": [arn, {"Fn::Join": ["", [arn, "/*"]]}],
    }  # fmt: skip


# The reports bucket and its access-log bucket as the home stack synthesizes them: the reports bucket logs to the
# log bucket, whose policy (created after both, since it names the reports bucket) lets the logging service write.
REPORTS_TEMPLATE: dict[str, Any] = {
    "Resources": {
        "Logs": {"Type": "AWS::S3::Bucket", "Properties": _private({
            "LifecycleConfiguration": {"Rules": [{
                "Id": "ExpireAccessLogs", "Status": "Enabled", "ExpirationInDays": 365,
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
            }]},
        })},
        "LogsPolicy": {"Type": "AWS::S3::BucketPolicy", "Properties": {
            "Bucket": {"Ref": "Logs"},
            "PolicyDocument": {"Version": "2012-10-17", "Statement": [_tls_only("Logs"), {
                "Action": "s3:PutObject", "Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"},
                "Condition": {
                    "ArnLike": {"aws:SourceArn": {"Fn::GetAtt": ["Reports", "Arn"]}},
                    "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
                },
                "Resource": {"Fn::Join": ["", [{"Fn::GetAtt": ["Logs", "Arn"]}, "/reports-bucket/*"]]},
            }]},
        }},
        "Reports": {"Type": "AWS::S3::Bucket", "Properties": _private({
            "LifecycleConfiguration": {"Rules": [{
                "Id": "ExpireReports", "Status": "Enabled", "Prefix": "reports/", "ExpirationInDays": 90,
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
            }]},
            "LoggingConfiguration": {"DestinationBucketName": {"Ref": "Logs"}, "LogFilePrefix": "reports-bucket/"},
        })},
        "ReportsPolicy": {"Type": "AWS::S3::BucketPolicy", "Properties": {
            "Bucket": {"Ref": "Reports"},
            "PolicyDocument": {"Version": "2012-10-17", "Statement": [_tls_only("Reports")]},
        }},
    }
}  # fmt: skip


def _deploy_into(endpoint: str, tmp_path: Path, template: dict[str, Any]) -> dict[str, str]:
    registry = FunctionRegistry(endpoint, tmp_path / "logs", lambda spec: "key")
    deployed = StackDeployer(endpoint, ACCOUNT, registry).deploy(StackArtifact("Home", REGION, template, assets={}))
    return {logical_id: physical.ref for logical_id, physical in deployed.resources.items()}


def test_a_bucket_is_created_with_its_encryption_public_access_block_lifecycle_logging_and_policy(
    endpoint: str, tmp_path: Path
) -> None:
    # Given the reports bucket and its log bucket, as the home stack synthesizes them
    # When the deployer deploys them into the emulator's endpoint
    names = _deploy_into(endpoint, tmp_path, REPORTS_TEMPLATE)

    # Then both buckets exist in the stack's region, named as CloudFormation names them (lowercase)
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=endpoint)
    reports, logs = names["Reports"], names["Logs"]
    assert (reports, logs) == ("home-reports", "home-logs")
    assert s3.get_bucket_location(Bucket=reports)["LocationConstraint"] == REGION
    # each encrypted with SSE-S3, every public access blocked, ACLs off
    for bucket in (reports, logs):
        [rule] = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
        assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
        assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True,
        }  # fmt: skip
        assert s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"] == {
            "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]
        }
    # the reports expire under reports/ only, the logs after a year
    [expiry] = s3.get_bucket_lifecycle_configuration(Bucket=reports)["Rules"]
    assert (expiry["ID"], expiry["Filter"], expiry["Expiration"], expiry["Status"]) == (
        "ExpireReports", {"Prefix": "reports/"}, {"Days": 90}, "Enabled",
    )  # fmt: skip
    assert expiry["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    [log_expiry] = s3.get_bucket_lifecycle_configuration(Bucket=logs)["Rules"]
    assert log_expiry["Expiration"] == {"Days": 365}
    # the reports bucket's access is logged to the log bucket, whose policy let the logging service write
    assert s3.get_bucket_logging(Bucket=reports)["LoggingEnabled"] == {
        "TargetBucket": logs, "TargetPrefix": "reports-bucket/"
    }  # fmt: skip
    assert "LoggingEnabled" not in s3.get_bucket_logging(Bucket=logs)
    [log_delivery] = json.loads(s3.get_bucket_policy(Bucket=logs)["Policy"])["Statement"]
    assert (log_delivery["Effect"], log_delivery["Principal"]) == ("Allow", {"Service": "logging.s3.amazonaws.com"})
    assert log_delivery["Condition"]["ArnLike"]["aws:SourceArn"] == f"arn:aws:s3:::{reports}"
    # the TLS-only Deny is left out (moto would apply it without its condition, refusing the plain-HTTP endpoint),
    # so the reports bucket, whose policy has nothing else, has none, and objects can be put and read
    with pytest.raises(ClientError, match="NoSuchBucketPolicy"):
        s3.get_bucket_policy(Bucket=reports)
    s3.put_object(Bucket=reports, Key="latest/report.json", Body=b"{}")
    assert s3.get_object(Bucket=reports, Key="latest/report.json")["Body"].read() == b"{}"


def test_logging_to_a_bucket_that_does_not_let_the_logging_service_write_fails_the_deployment(
    endpoint: str, tmp_path: Path
) -> None:
    # Given the reports bucket logging to a log bucket whose policy has no log-delivery statement
    template = json.loads(json.dumps(REPORTS_TEMPLATE))
    template["Resources"]["LogsPolicy"]["Properties"]["PolicyDocument"]["Statement"] = [_tls_only("Logs")]

    # When it is deployed, then S3's refusal fails the deployment, naming the bucket
    with pytest.raises(DeployError, match="bucket home-reports: server access logging refused"):
        _deploy_into(endpoint, tmp_path, template)


@pytest.mark.parametrize(
    ("properties", "refused"),
    [
        ({"NotificationConfiguration": {}}, "property NotificationConfiguration"),
        (
            {"LifecycleConfiguration": {"Rules": [{"Status": "Enabled", "Transitions": []}]}},
            "lifecycle rule property Transitions",
        ),
    ],
)
def test_a_bucket_property_the_emulator_does_not_honour_fails_the_deployment(
    endpoint: str, tmp_path: Path, properties: dict[str, Any], refused: str
) -> None:
    # Given a bucket with a property the emulator would otherwise ignore
    template = {"Resources": {"Bucket": {"Type": "AWS::S3::Bucket", "Properties": properties}}}

    # When it is deployed, then the deployment fails, naming it
    with pytest.raises(DeployError, match=refused):
        _deploy_into(endpoint, tmp_path, template)


def test_a_dashboard_is_put_with_its_name_and_body(endpoint: str, tmp_path: Path) -> None:
    # Given a dashboard whose body is joined from the stack's region, as CDK synthesizes it
    widget = '{"type":"metric","properties":{"title":"Events judged","region":"'
    body = {"Fn::Join": ["", ['{"widgets":[', widget, {"Ref": "AWS::Region"}, '"}}]}']]}
    template = {"Resources": {"Dashboard": {"Type": "AWS::CloudWatch::Dashboard", "Properties": {
        "DashboardName": "AmiGovernance-eu-west-1", "DashboardBody": body,
    }}}}  # fmt: skip

    # When it is deployed
    names = _deploy_into(endpoint, tmp_path, template)

    # Then CloudWatch has it under its name, with the body resolved
    cloudwatch = boto3.client("cloudwatch", region_name=REGION, endpoint_url=endpoint)
    assert names["Dashboard"] == "AmiGovernance-eu-west-1"
    dashboard = cloudwatch.get_dashboard(DashboardName="AmiGovernance-eu-west-1")
    assert json.loads(dashboard["DashboardBody"]) == {
        "widgets": [{"type": "metric", "properties": {"title": "Events judged", "region": REGION}}]
    }
