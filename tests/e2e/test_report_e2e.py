"""The scheduled report end to end on the emulator: the schedule fires -> the report is in S3 (the run's folder and
latest/) -> the SNS summary names its keys."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from emulator.assembly import synthesize
from tests.e2e.conftest import HOME, REPO_ROOT, start_emulator, stop_emulator

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

REPORT_HANDLER = "handlers.report.handler"
FORMATS = ("json", "csv", "html")


def _report_function(emulator: Any) -> dict[str, Any]:
    [function] = [f for f in emulator.functions() if f["handler"] == REPORT_HANDLER]
    return function


def _orphaned_snapshot(emulator: Any) -> str:
    """A snapshot whose AMI was deregistered (the clean-up is a dry run by default, so it stays)."""
    ec2 = emulator.client("ec2")
    image_id = ec2.create_image(InstanceId=emulator.launch_instance(), Name="payments-api-al2023-1.0.0")["ImageId"]
    emulator.drain()
    [mapping] = ec2.describe_images(ImageIds=[image_id])["Images"][0]["BlockDeviceMappings"]
    ec2.deregister_image(ImageId=image_id)
    emulator.drain()
    return str(mapping["Ebs"]["SnapshotId"])


def _body(s3: Any, bucket: str, key: str) -> str:
    return str(s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8"))


def test_the_schedule_fires_the_report_into_s3_and_the_summary_names_its_keys(emulator: Any, inbox: Any) -> None:
    # Given an estate with a snapshot left behind by a deregistered AMI, and the report function deployed
    snapshot_id = _orphaned_snapshot(emulator)
    function = _report_function(emulator)
    bucket = function["environment"]["REPORTS_BUCKET_NAME"]
    inbox()  # what the estate's own events announced

    # When the scheduled rules fire (EventBridge's `Scheduled Event` on the default bus)
    fired = emulator.control("POST", "schedule")["fired"]
    ran = emulator.drain()

    # Then the report's rule fired, and the function ran once and succeeded, every governed region complete
    runs = [i for i in ran if i["target"] == function["name"]]
    assert [(r["outcome"], r["error"]) for r in runs] == [("success", None)]
    [run] = runs
    assert run["detail_type"] == "Scheduled Event"
    assert run["rule"] in fired
    result = run["result"]
    assert set(result) == {"run_id", "keys", "complete", "findings", "monthly_cost"}
    assert result["complete"] is True
    assert result["findings"] >= 1

    # the run's three files are under reports/<date>/<run-id>/, and latest/ holds the same files (other runs of the
    # session, if any, have folders of their own)
    s3 = emulator.client("s3", HOME)
    listed = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    run_id = result["run_id"]
    [folder] = {key.rsplit("/", 1)[0] for key in listed if key.startswith("reports/") and f"/{run_id}/" in key}
    assert re.fullmatch(rf"reports/\d{{4}}-\d{{2}}-\d{{2}}/{re.escape(run_id)}", folder)
    run_files = {f"{folder}/report.{f}" for f in FORMATS}
    latest_files = {f"latest/report.{f}" for f in FORMATS}
    assert {key for key in listed if key.startswith(f"{folder}/")} == run_files
    assert latest_files <= listed
    assert set(result["keys"].values()) == run_files | latest_files
    for extension in FORMATS:
        assert _body(s3, bucket, f"latest/report.{extension}") == _body(s3, bucket, f"{folder}/report.{extension}")

    # the JSON names the run and the orphaned snapshot, the CSV has a row for it, the HTML page is rendered (by
    # Jinja2 from the function's own asset: the worker's import root, as Lambda's code directory is)
    report_json = _body(s3, bucket, f"{folder}/report.json")
    assert json.loads(report_json)["run_id"] == run_id
    assert snapshot_id in report_json
    rows = list(csv.DictReader(io.StringIO(_body(s3, bucket, f"{folder}/report.csv"))))
    assert [row for row in rows if snapshot_id in row.values()]
    html = _body(s3, bucket, f"{folder}/report.html")
    assert html.lstrip().lower().startswith("<!doctype html>")
    assert snapshot_id in html

    # and one summary on the topic names every key
    summaries = [n for n in inbox() if run_id in json.dumps(n)]
    assert len(summaries) == 1
    [summary] = summaries
    for key in result["keys"].values():
        assert key in json.dumps(summary["body"])


@pytest.fixture(scope="module")
def sweeping_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The stacks of a policy whose sweep acts (not a dry run) and deletes orphaned snapshots of any age."""
    policy = yaml.safe_load((REPO_ROOT / "governance-policy.yaml").read_text())
    policy["report"]["sweep"] = {"enabled": True, "dry_run": False, "delete_orphaned_snapshots_after_days": 0}
    workdir = tmp_path_factory.mktemp("sweeping")
    policy_file = workdir / "policy.yaml"
    policy_file.write_text(yaml.safe_dump(policy))
    running = start_emulator(synthesize(workdir / "cdk.out", policy_file), workdir / "emulator")
    yield running
    stop_emulator(running)


def test_with_the_sweep_on_the_scheduled_report_deletes_the_orphaned_snapshot_once(sweeping_emulator: Any) -> None:
    # Given an orphaned snapshot, and a policy whose sweep deletes orphaned snapshots
    emulator = sweeping_emulator
    snapshot_id = _orphaned_snapshot(emulator)
    function = _report_function(emulator)

    # When the schedule fires
    emulator.control("POST", "schedule")
    runs = [i for i in emulator.drain() if i["target"] == function["name"]]

    # Then the report ran once, and the snapshot is gone, reported done in the report's actions
    assert [(r["outcome"], r["error"]) for r in runs] == [("success", None)]
    described = emulator.client("ec2").describe_snapshots(Filters=[{"Name": "snapshot-id", "Values": [snapshot_id]}])
    assert described["Snapshots"] == []
    s3 = emulator.client("s3", HOME)
    bucket = function["environment"]["REPORTS_BUCKET_NAME"]
    report = json.loads(_body(s3, bucket, runs[0]["result"]["keys"]["json"]))
    assert [(a["resource_id"], a["status"]) for a in report["actions"] if a["resource_id"] == snapshot_id] == [
        (snapshot_id, "done")
    ]

    # and a second run right after changes nothing: nothing is left to do
    emulator.control("POST", "schedule")
    [again] = [i for i in emulator.drain() if i["target"] == function["name"]]
    second = json.loads(_body(s3, bucket, again["result"]["keys"]["json"]))
    assert [a for a in second["actions"] if a["status"] == "done"] == []
