"""End-to-end: `ami-governance report` against the emulator, as an operator runs it (a process of its own, the caller's
credentials, `--endpoint-url`), reading the deployed policy from its SSM parameter and the inventory table.

The CLI's report.json must hold the same findings and region figures as the deployed report Lambda writes to S3
when its schedule fires, and as the report service computes over the same estate with the CLI's adapters, run
directly; the exit codes follow the findings and the regions' completeness; setup errors are one line on stderr
with exit 3.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import HOME, REPO_ROOT, RunningEmulator

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

GOOD_TAGS = {"Owner": "payments-team", "Environment": "prod", "CostCenter": "CC-1042"}


@dataclass(frozen=True)
class Deployed:
    policy_parameter: str
    inventory_table: str
    compliant: str
    non_compliant: str
    public: str
    deregistered: str
    deregistered_snapshots: tuple[str, ...]


def tagged(tags: dict[str, str]) -> list[dict[str, Any]]:
    return [{"ResourceType": "image", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]


@pytest.fixture(scope="module")
def deployed(emulator: RunningEmulator) -> Deployed:
    """A few AMIs the event path has judged: compliant, non-compliant, public, and one deregistered (its snapshots
    left behind: the clean-up is dry-run by default)."""
    [enforce] = [f for f in emulator.functions() if f["handler"] == "handlers.enforce.handler"]
    environment = enforce["environment"]
    ec2 = emulator.client("ec2")
    instance = emulator.launch_instance()
    compliant = ec2.create_image(
        InstanceId=instance, Name="payments-api-al2023-3.0.0", TagSpecifications=tagged(GOOD_TAGS)
    )["ImageId"]
    non_compliant = ec2.create_image(InstanceId=instance, Name="cli e2e scratch")["ImageId"]
    public = ec2.create_image(
        InstanceId=instance, Name="payments-api-al2023-3.0.1", TagSpecifications=tagged(GOOD_TAGS)
    )["ImageId"]
    deregistered = ec2.create_image(
        InstanceId=instance, Name="payments-api-al2023-3.0.2", TagSpecifications=tagged(GOOD_TAGS)
    )["ImageId"]
    emulator.drain()
    [image] = ec2.describe_images(ImageIds=[deregistered])["Images"]
    snapshots = tuple(m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"] if "Ebs" in m)
    ec2.disable_image_block_public_access()
    ec2.modify_image_attribute(ImageId=public, LaunchPermission={"Add": [{"Group": "all"}]})
    ec2.deregister_image(ImageId=deregistered)
    emulator.drain()
    return Deployed(
        policy_parameter=environment["POLICY_PARAMETER_NAME"],
        inventory_table=environment["INVENTORY_TABLE_NAME"],
        compliant=compliant,
        non_compliant=non_compliant,
        public=public,
        deregistered=deregistered,
        deregistered_snapshots=snapshots,
    )


def operator_environment() -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    return {
        **environment,
        "AWS_ACCESS_KEY_ID": "operator",
        "AWS_SECRET_ACCESS_KEY": "any",
        "AWS_DEFAULT_REGION": HOME,
        "AWS_EC2_METADATA_DISABLED": "true",
        "PYTHONPATH": str(REPO_ROOT / "lambdas"),
    }


def run_cli(emulator: RunningEmulator, cwd: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ami_governance.cli", "report", "--endpoint-url", emulator.endpoint, *arguments],
        cwd=cwd,
        env=operator_environment(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture
def aws_as_operator(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in operator_environment().items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)


def direct_report(emulator: RunningEmulator, deployed: Deployed) -> dict[str, Any]:
    """The report service over the same estate, run here with the same adapters, as report.json's document."""
    from ami_governance.adapters.session import OperatorSession
    from ami_governance.cli.service import report_service
    from ami_governance.outputs.render import report_document

    session = OperatorSession(endpoint_url=emulator.endpoint)
    policy = session.policy_parameter(deployed.policy_parameter, HOME)
    account = session.account_id(HOME)
    report = report_service(session, policy, account, policy.home_region, deployed.inventory_table).run()
    return report_document(report)


def comparable(document: dict[str, Any]) -> dict[str, Any]:
    # A run's own id and time, and how many calls it made, differ between two runs over the same estate.
    regions = [{k: v for k, v in region.items() if k != "api_calls"} for region in document["regions"]]
    return {"findings": document["findings"], "regions": regions, "complete": document["complete"]}


def test_the_cli_writes_the_findings_the_report_service_finds(
    emulator: RunningEmulator, deployed: Deployed, tmp_path: Path, aws_as_operator: None
) -> None:
    out = tmp_path / "report"

    done = run_cli(
        emulator,
        tmp_path,
        "--policy-parameter",
        deployed.policy_parameter,
        "--inventory-table",
        deployed.inventory_table,
        "--output-dir",
        str(out),
        "--fail-on",
        "exposure",
        "--json",
    )

    summary = json.loads(done.stdout)
    assert done.returncode == summary["exit_code"], done.stderr
    assert sorted(path.name for path in out.iterdir()) == ["report.csv", "report.html", "report.json"]
    assert summary["files"] == {kind: str(out / f"report.{kind}") for kind in ("csv", "html", "json")}
    written = json.loads((out / "report.json").read_text())
    assert [region["region"] for region in written["regions"]] == ["us-east-1", "eu-west-1"]
    assert written["complete"] is True
    assert summary["complete"] is True
    assert summary["findings"] == len(written["findings"])
    kinds = {(f["kind"], f["resource_id"]) for f in written["findings"]}
    assert ("exposure", deployed.public) in kinds
    assert ("non-compliant", deployed.non_compliant) in kinds
    assert {kind for kind, resource in kinds if resource == deployed.compliant} & {"non-compliant", "exposure"} == set()
    orphaned = {f["resource_id"] for f in written["findings"] if f["kind"] == "orphaned-snapshot"}
    assert set(deployed.deregistered_snapshots) <= orphaned
    assert done.returncode == 2  # --fail-on exposure
    [home] = [region for region in written["regions"] if region["region"] == HOME]
    assert home["images"] >= 3

    assert comparable(written) == comparable(direct_report(emulator, deployed))


def test_the_summary_table_names_the_html_page(emulator: RunningEmulator, deployed: Deployed, tmp_path: Path) -> None:
    policy = REPO_ROOT / "governance-policy.yaml"

    done = run_cli(emulator, tmp_path, "--policy", str(policy), "--regions", HOME)

    assert done.returncode == 0, done.stderr
    default_dir = next(tmp_path.glob("report-*"))
    assert done.stdout.rstrip().splitlines()[-1] == f"HTML report: {default_dir / 'report.html'}"
    assert "no inventory table given" in done.stdout
    assert f"{HOME}: complete" in done.stderr
    written = json.loads((default_dir / "report.json").read_text())
    assert [region["region"] for region in written["regions"]] == [HOME]


def test_an_unreadable_inventory_makes_the_report_incomplete(
    emulator: RunningEmulator, deployed: Deployed, tmp_path: Path
) -> None:
    arguments = ["--policy-parameter", deployed.policy_parameter, "--inventory-table", "no-such-table"]

    incomplete = run_cli(emulator, tmp_path, *arguments, "--output-dir", str(tmp_path / "a"), "--json")
    accepted = run_cli(emulator, tmp_path, *arguments, "--output-dir", str(tmp_path / "b"), "--allow-incomplete")

    assert incomplete.returncode == 1, incomplete.stderr
    summary = json.loads(incomplete.stdout)
    assert summary["complete"] is False
    assert {region["region"]: sorted(region["errors"]) for region in summary["regions"]} == {
        "us-east-1": ["inventory"],
        "eu-west-1": ["inventory"],
    }
    assert accepted.returncode == 0, accepted.stderr
    assert (tmp_path / "b" / "report.html").is_file()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ["--policy", str(REPO_ROOT / "governance-policy.yaml"), "--regions", "us-east-1,mars-north-1"],
            "unknown region: mars-north-1 (not an EC2 region botocore knows)",
        ),
        (["--policy-parameter", "/no/such/policy"], "/no/such/policy (us-east-1): cannot read the policy parameter: "),
    ],
)
def test_setup_errors_are_one_line_and_exit_3(
    emulator: RunningEmulator, tmp_path: Path, arguments: list[str], message: str
) -> None:
    done = run_cli(emulator, tmp_path, "--output-dir", str(tmp_path / "out"), *arguments)

    assert done.returncode == 3
    assert done.stderr.startswith(f"ami-governance report: {message}")
    assert done.stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()


REPORT_HANDLER = "handlers.report.handler"


def test_the_cli_writes_the_findings_the_scheduled_report_lambda_writes(
    emulator: RunningEmulator, deployed: Deployed, tmp_path: Path
) -> None:
    # Given the deployed report function, run by its schedule
    [function] = [f for f in emulator.functions() if f["handler"] == REPORT_HANDLER]
    emulator.control("POST", "schedule")
    [run] = [i for i in emulator.drain() if i["target"] == function["name"]]
    assert run["outcome"] == "success", run["error"]
    s3 = emulator.client("s3", HOME)
    [key] = [k for k in run["result"]["keys"].values() if k.startswith("reports/") and k.endswith("/report.json")]
    lambda_report = json.loads(
        s3.get_object(Bucket=function["environment"]["REPORTS_BUCKET_NAME"], Key=key)["Body"].read()
    )

    # When the operator runs the CLI over the same estate, with the deployed policy and the inventory
    out = tmp_path / "report"
    done = run_cli(
        emulator,
        tmp_path,
        "--policy-parameter",
        deployed.policy_parameter,
        "--inventory-table",
        deployed.inventory_table,
        "--output-dir",
        str(out),
    )

    # Then its report.json holds the same findings, regions and listing errors as the Lambda's
    assert done.returncode == 0, done.stderr
    cli_report = json.loads((out / "report.json").read_text())

    def regions(document: dict[str, Any]) -> list[dict[str, Any]]:
        # verified_by: the Lambda records the launch permissions it read, so the CLI reads them from the inventory.
        return [{k: v for k, v in r.items() if k not in {"api_calls", "verified_by"}} for r in document["regions"]]

    assert cli_report["findings"] == lambda_report["findings"]
    assert regions(cli_report) == regions(lambda_report)
    assert cli_report["mode"] == lambda_report["mode"]
