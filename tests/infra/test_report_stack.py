"""The report in the home stack: its bucket and access-log bucket, its Lambda and schedule, the one code asset
(with Jinja2) every function runs from, and the product's dashboard."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk.assertions import Template

from stacks.constructs.governed_function import BUNDLED_PACKAGES
from stacks.constructs.reports_bucket import ReportsBucket
from tests.infra.support import function_by_handler

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

REPORT_HANDLER = "handlers.report.handler"
REPO_ROOT = Path(__file__).resolve().parents[2]
HANDLERS = ("handlers.enforce.handler", "handlers.cleanup.handler", "handlers.replicate.handler",
            "handlers.copy.handler", REPORT_HANDLER)  # fmt: skip


def _resources(template: Template, resource_type: str) -> dict[str, dict[str, Any]]:
    return {logical_id: dict(resource) for logical_id, resource in template.find_resources(resource_type).items()}


def _buckets(template: Template) -> tuple[str, dict[str, Any], str, dict[str, Any]]:
    """The reports bucket and the access-log bucket: logical ids and properties."""
    buckets = _resources(template, "AWS::S3::Bucket")
    assert len(buckets) == 2
    [(reports_id, reports)] = [(i, b) for i, b in buckets.items() if "LoggingConfiguration" in b["Properties"]]
    [(logs_id, logs)] = [(i, b) for i, b in buckets.items() if i != reports_id]
    return reports_id, reports, logs_id, logs


def _bucket_policy(template: Template, bucket_id: str) -> list[dict[str, Any]]:
    [policy] = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in _resources(template, "AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": bucket_id}
    ]
    return list(policy)


def _tls_only(bucket_id: str) -> dict[str, Any]:
    arn = {"Fn::GetAtt": [bucket_id, "Arn"]}
    return {
        "Action": "s3:*", "Effect": "Deny", "Principal": {"AWS": "*"},
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        "Resource": [arn, {"Fn::Join": ["", [arn, "/*"]]}],
    }  # fmt: skip


PRIVATE = {
    "BucketEncryption": {
        "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
    },
    "PublicAccessBlockConfiguration": {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True,
    },
    "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
}  # fmt: skip


def test_reports_bucket_is_encrypted_private_tls_only_logged_retained_and_expires_only_the_runs(
    home_template: Template, audit_app: Any
) -> None:
    # Given the reports bucket and its access-log bucket
    reports_id, reports, logs_id, logs = _buckets(home_template)

    # Then both are SSE-S3 encrypted, block every public access, have ACLs off and are kept with the stack gone
    for bucket in (reports, logs):
        assert {key: bucket["Properties"][key] for key in PRIVATE} == PRIVATE
        assert (bucket["DeletionPolicy"], bucket["UpdateReplacePolicy"]) == ("Retain", "Retain")
        # not versioned: every run writes new keys (ReportsBucket's docstring)
        assert "VersioningConfiguration" not in bucket["Properties"]
    # the reports expire under reports/ after the policy's days; latest/ is never expired
    assert reports["Properties"]["LifecycleConfiguration"] == {"Rules": [{
        "Id": "ExpireReports", "Status": "Enabled", "Prefix": "reports/",
        "ExpirationInDays": audit_app.policy.report.expire_reports_after_days,
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
    }]}  # fmt: skip
    assert logs["Properties"]["LifecycleConfiguration"] == {"Rules": [{
        "Id": "ExpireAccessLogs", "Status": "Enabled", "ExpirationInDays": 365,
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
    }]}  # fmt: skip
    # the reports bucket's access is logged to the other, which logs nowhere itself
    assert reports["Properties"]["LoggingConfiguration"] == {
        "DestinationBucketName": {"Ref": logs_id}, "LogFilePrefix": "reports-bucket/"
    }  # fmt: skip
    assert "LoggingConfiguration" not in logs["Properties"]
    # both refuse plain HTTP; the log bucket lets only S3's logging of the reports bucket write, under its prefix
    assert _bucket_policy(home_template, reports_id) == [_tls_only(reports_id)]
    assert _bucket_policy(home_template, logs_id) == [
        _tls_only(logs_id),
        {
            "Action": "s3:PutObject", "Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"},
            "Condition": {
                "ArnLike": {"aws:SourceArn": {"Fn::GetAtt": [reports_id, "Arn"]}},
                "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
            },
            "Resource": {"Fn::Join": ["", [{"Fn::GetAtt": [logs_id, "Arn"]}, "/reports-bucket/*"]]},
        },
    ]  # fmt: skip


def test_expiry_follows_the_policy() -> None:
    # Given the reports bucket of a policy that keeps reports 30 days
    stack = Stack(App(), "Probe")
    ReportsBucket(stack, "Reports", expire_after_days=30)

    # Then its rule expires them after 30 days
    _, reports, _, _ = _buckets(Template.from_stack(stack))
    assert reports["Properties"]["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] == 30


def test_report_function_runs_for_up_to_15_minutes_with_512_mb_and_knows_its_bucket(home_template: Template) -> None:
    # Given the report function
    _, function = function_by_handler(home_template, REPORT_HANDLER)
    reports_id, _, _, _ = _buckets(home_template)

    # Then it has Lambda's maximum timeout, 512 MB, and the reports bucket's name beside the common settings
    assert (function["Timeout"], function["MemorySize"]) == (900, 512)
    variables = function["Environment"]["Variables"]
    assert variables["REPORTS_BUCKET_NAME"] == {"Ref": reports_id}
    assert {"POLICY_PARAMETER_NAME", "INVENTORY_TABLE_NAME", "NOTIFICATION_TOPIC_ARN"} <= set(variables)
    assert function["DeadLetterConfig"]["TargetArn"]["Fn::GetAtt"][0].startswith("AsyncInvokeDeadLetters")


def test_report_runs_on_the_policys_schedule_from_a_rule_on_the_default_bus(
    home_template: Template, audit_app: Any
) -> None:
    # Given the rules with a schedule
    function_id, _ = function_by_handler(home_template, REPORT_HANDLER)
    scheduled = {i: r for i, r in _resources(home_template, "AWS::Events::Rule").items()
                 if "ScheduleExpression" in r["Properties"]}  # fmt: skip

    # Then exactly one, on the default bus (no EventBusName), fires the policy's schedule at the report function,
    # with the retry policy and dead-letter queue every rule target has
    [(rule_id, rule)] = scheduled.items()
    properties = rule["Properties"]
    assert properties["ScheduleExpression"] == audit_app.policy.report.schedule == "cron(0 6 * * ? *)"
    assert "EventBusName" not in properties
    assert "EventPattern" not in properties
    [target] = properties["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 4, "MaximumEventAgeInSeconds": 7200}
    assert target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0].startswith("RuleTargetDeadLetters")
    # and EventBridge may invoke the function for that rule only
    [permission] = [p["Properties"] for p in _resources(home_template, "AWS::Lambda::Permission").values()
                    if p["Properties"].get("SourceArn") == {"Fn::GetAtt": [rule_id, "Arn"]}]  # fmt: skip
    assert (permission["Principal"], permission["FunctionName"]) == (
        "events.amazonaws.com", {"Fn::GetAtt": [function_id, "Arn"]}
    )  # fmt: skip


def test_the_report_is_alarmed_on_errors_like_every_function(home_template: Template) -> None:
    # Given the error alarms, then one watches the report function
    function_id, _ = function_by_handler(home_template, REPORT_HANDLER)
    alarms = [a["Properties"] for a in _resources(home_template, "AWS::CloudWatch::Alarm").values()]
    alarmed = [a["Dimensions"][0]["Value"] for a in alarms if a["MetricName"] == "Errors"]
    assert alarmed.count({"Ref": function_id}) == 1


def _asset_dir(built: Any, template: Template) -> Path:
    keys = {function_by_handler(template, h)[1]["Code"]["S3Key"] for h in HANDLERS}
    # Every function runs from the one asset
    assert len(keys) == 1
    [key] = keys
    return Path(built.outdir) / f"asset.{str(key).removesuffix('.zip')}"


def _pinned(package: str) -> str:
    for line in (REPO_ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        name, _, version = line.partition("==")
        if name.strip().lower() == package:
            return version.strip()
    raise AssertionError(f"{package} is not pinned in requirements.txt")


def test_every_function_runs_from_one_asset_with_jinja2_and_pure_python_markupsafe(
    audit_app: Any, home_template: Template
) -> None:
    # Given the code asset of the functions
    asset = _asset_dir(audit_app, home_template)

    # Then it holds the domain package, the handlers, and the bundled packages, copied from the synthesizing
    # interpreter's installation, which has the versions requirements.txt pins
    assert sorted(p.name for p in asset.iterdir()) == sorted(["ami_governance", "handlers", *BUNDLED_PACKAGES])
    assert BUNDLED_PACKAGES == ("jinja2", "markupsafe")
    for distribution in BUNDLED_PACKAGES:
        assert metadata.version(distribution) == _pinned(distribution)
    jinja2_source = (asset / "jinja2" / "__init__.py").read_text(encoding="utf-8")
    assert f'__version__ = "{_pinned("jinja2")}"' in jinja2_source
    # without compiled code (built for this interpreter, not the Lambda's) or caches
    assert not [p for p in asset.rglob("*") if p.suffix in (".so", ".pyc", ".c") or p.name == "__pycache__"]
    assert not list(asset.rglob("_speedups*"))
    assert (asset / "handlers" / "report.py").is_file()


def test_jinja2_imports_from_the_asset_alone_and_markupsafe_escapes_in_pure_python(
    audit_app: Any, home_template: Template
) -> None:
    # Given an interpreter without site-packages (-S, -I), whose only import root besides the standard library is
    # the asset, as the Lambda runtime's code directory is
    asset = _asset_dir(audit_app, home_template)
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); import jinja2, markupsafe; "
        "template = jinja2.Environment(autoescape=True).from_string('<p>{{ name }}</p>'); "
        "print(jinja2.__file__.startswith(sys.argv[1]), markupsafe._escape_inner.__module__, "
        "template.render(name='<script>'))"
    )

    # When it renders an autoescaped template
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", probe, str(asset)], capture_output=True, text=True, check=True
    )

    # Then Jinja2 came from the asset, MarkupSafe escaped with its pure-Python module
    assert result.stdout.split(" ", 2) == ["True", "markupsafe._native", "<p>&lt;script&gt;</p>\n"]


def _dashboard_widgets(properties: dict[str, Any]) -> dict[str, list[list[Any]]]:
    """Widget title -> its metrics, from the dashboard body with each reference replaced by the logical id (or
    pseudo parameter) it names."""

    def text(part: Any) -> str:
        if isinstance(part, str):
            return part
        return str(part["Ref"] if "Ref" in part else part["Fn::GetAtt"][0])

    body = json.loads("".join(text(part) for part in properties["DashboardBody"]["Fn::Join"][1]))
    return {w["properties"]["title"]: w["properties"]["metrics"] for w in body["widgets"]}


def test_the_dashboard_shows_the_products_metrics_dead_letters_and_every_functions_errors(
    home_template: Template, audit_app: Any
) -> None:
    # Given the dashboard
    [dashboard] = _resources(home_template, "AWS::CloudWatch::Dashboard").values()
    assert dashboard["Properties"]["DashboardName"] == f"AmiGovernance-{audit_app.policy.home_region}"
    widgets = _dashboard_widgets(dashboard["Properties"])

    # Then it graphs what the event path judged and did, by the names (and the service dimension) the code emits
    def plain(title: str) -> list[str]:
        assert all(m[0] == "AmiGovernance" and m[2:4] == ["service", "ami-governance"] for m in widgets[title])
        return [m[1] for m in widgets[title]]

    assert plain("Events judged") == [
        "ImagesEvaluated", "NonCompliantImages", "ImagesGone", "MalformedEvents", "UnsupportedEvents"
    ]  # fmt: skip
    assert plain("Snapshot clean-ups") == [
        "SnapshotsDeleted",
        "SnapshotsWouldDelete",
        "SnapshotsKept",
        "SnapshotsFailed",
    ]
    assert plain("Copies") == ["CopiesQueued", "CopiesStarted", "ReplicasAdopted", "ApprovalsWithdrawn"]

    # the dimensioned ones (violations by kind, the report's findings and cost by kind and region...) by search,
    # the report's over a day (it runs daily), as the latest level rather than a sum
    def searched(title: str) -> list[tuple[str, str, int]]:
        found = []
        for [metric] in widgets[title]:
            match = re.fullmatch(
                r"SEARCH\('Namespace=\"AmiGovernance\" MetricName=\"(\w+)\"', '(\w+)', (\d+)\)", metric["expression"]
            )
            assert match, metric
            found.append((match[1], match[2], int(match[3])))
        return found

    assert searched("Violations (by kind) and remediations (by action)") == [
        ("Violations", "Sum", 3600), ("RemediationActions", "Sum", 3600)
    ]  # fmt: skip
    assert searched("Report findings (by kind and region)") == [("FindingsCount", "Maximum", 86400)]
    assert searched("Report findings: monthly cost, USD (by kind and region)") == [
        ("FindingsMonthlyCost", "Maximum", 86400)
    ]
    assert searched("Report: incomplete regions, sweep actions (by status)") == [
        ("RegionsIncomplete", "Maximum", 86400), ("SweepActions", "Maximum", 86400)
    ]  # fmt: skip
    # each dead-letter queue's depth and each function's errors
    queues = {
        i for i, q in _resources(home_template, "AWS::SQS::Queue").items() if "RedrivePolicy" not in q["Properties"]
    }
    depth = widgets["Dead-letter queues: messages waiting"]
    assert {m[3] for m in depth} == queues
    assert {(m[0], m[1], m[2]) for m in depth} == {("AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName")}
    errors = widgets["Lambda errors"]
    assert {m[3] for m in errors} == {function_by_handler(home_template, h)[0] for h in HANDLERS}
    assert {(m[0], m[1], m[2]) for m in errors} == {("AWS/Lambda", "Errors", "FunctionName")}
