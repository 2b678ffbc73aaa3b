"""`ami-governance report`: argument parsing, exit codes, the JSON summary and the progress lines, with a fake
service; the real preparation's errors (unknown region, unreadable policy, no or refused credentials) as one line
on stderr and exit 3."""

from __future__ import annotations

import json
import sys
import tomllib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber

from ami_governance.adapters.session import OperatorSession, SessionError
from ami_governance.cli import (
    EXIT_ERROR,
    EXIT_FINDINGS,
    EXIT_INCOMPLETE,
    EXIT_OK,
    FINDING_KINDS,
    ReportOptions,
    main,
    parse_report_options,
)
from ami_governance.cli.report import Prepared, SetupError
from ami_governance.cli.service import NO_INVENTORY_NOTE, ReadOnlyInventory
from ami_governance.models.findings import (
    Finding,
    FindingKind,
    InventoryRecord,
    LaunchPermissions,
    RegionStatus,
    Report,
    ResourceType,
    VerifiedBy,
)
from stacks.constructs.governed_function import bundle_function_code
from tests.conftest import POLICY_FILE, REPO_ROOT

NOW = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
ACCOUNT = "111122223333"


def status(region: str, complete: bool = True) -> RegionStatus:
    return RegionStatus(
        account_id=ACCOUNT,
        region=region,
        complete=complete,
        errors={} if complete else {"snapshots": "RequestLimitExceeded: Request limit exceeded."},
        images=12,
        snapshots=30,
        instances=4,
        verified_by={"describe": 2, "inventory": 10},
        api_calls=17,
    )


def finding(kind: FindingKind, resource_id: str, cost: float = 0.0) -> Finding:
    return Finding(
        kind=kind,
        account_id=ACCOUNT,
        region="us-east-1",
        resource_type=ResourceType.SNAPSHOT if kind is FindingKind.ORPHANED_SNAPSHOT else ResourceType.IMAGE,
        resource_id=resource_id,
        reason="because",
        fix="fix it",
        monthly_cost=cost,
    )


def report(findings: Sequence[Finding] = (), incomplete: Sequence[str] = ()) -> Report:
    return Report(
        run_id="run-1",
        generated_at=NOW,
        mode="audit",
        sweep="off",
        regions=tuple(status(region, region not in incomplete) for region in ("us-east-1", "eu-west-1")),
        findings=tuple(findings),
    )


class FakeService:
    """Runs like ReportService: tells the progress sink about each region, then answers the report it was given."""

    def __init__(self, answer: Report) -> None:
        self.answer = answer
        self.calls: list[tuple[tuple[str, ...], Any]] = []

    def run(self, regions: Sequence[str] | None = None, *, progress: Any = None, run_id: str | None = None) -> Report:
        self.calls.append((tuple(regions or ()), progress))
        for region_status in self.answer.regions:
            progress.region_started(region_status.region)
            progress.region_step(region_status.region, "scan")
            progress.region_done(region_status.region, region_status)
        return self.answer


class Run:
    def __init__(self, answer: Report, tmp_path: Path) -> None:
        self.service = FakeService(answer)
        self.tmp_path = tmp_path
        self.options: list[ReportOptions] = []
        self.written: list[tuple[Report, Path]] = []
        self.stdout: list[str] = []

    def prepare(self, options: ReportOptions) -> Prepared:
        self.options.append(options)
        return Prepared(self.service, ("us-east-1", "eu-west-1"), ACCOUNT, notes=("a note",))

    def write(self, written: Report, directory: Path) -> Mapping[str, Path]:
        self.written.append((written, directory))
        return {kind: directory / f"report.{kind}" for kind in ("json", "csv", "html")}

    def __call__(self, *argv: str) -> int:
        return main(
            ["report", "--output-dir", str(self.tmp_path / "out"), *argv],
            prepare=self.prepare,
            write_reports=self.write,
            stdout=self.stdout.append,
        )


# ---- parsing ----------------------------------------------------------------------------------------------------


def test_regions_comma_separated_and_repeated_are_one_ordered_list_without_duplicates() -> None:
    options = parse_report_options(["report", "--regions", "us-east-1,eu-west-1", "--regions", "us-east-1, ap-south-1"])

    assert options.regions == ("us-east-1", "eu-west-1", "ap-south-1")


def test_defaults() -> None:
    options = parse_report_options(["report"], today=NOW)

    assert options == ReportOptions(
        profile=None,
        regions=None,
        policy_file=Path("governance-policy.yaml"),
        policy_parameter=None,
        home_region=None,
        endpoint_url=None,
        output_dir=Path("report-2026-12-01"),
        fail_on=frozenset(),
        allow_incomplete=False,
        inventory_table=None,
        json=False,
    )


def test_every_option() -> None:
    options = parse_report_options(
        [
            "report",
            "--profile=audit",
            "--policy-parameter=/ami-governance/policy",
            "--home-region=eu-west-1",
            "--endpoint-url=http://127.0.0.1:4566",
            "--output-dir=/tmp/r",
            "--fail-on=exposure",
            "--fail-on=unused",
            "--allow-incomplete",
            "--inventory-table=inventory",
            "--json",
        ]
    )

    assert options == ReportOptions(
        profile="audit",
        regions=None,
        policy_file=Path("governance-policy.yaml"),
        policy_parameter="/ami-governance/policy",
        home_region="eu-west-1",
        endpoint_url="http://127.0.0.1:4566",
        output_dir=Path("/tmp/r"),
        fail_on=frozenset({"exposure", "unused"}),
        allow_incomplete=True,
        inventory_table="inventory",
        json=True,
    )


def test_the_fail_on_choices_are_the_finding_kinds() -> None:
    assert tuple(kind.value for kind in FindingKind) == FINDING_KINDS


@pytest.mark.parametrize(
    "argv",
    [
        ["report", "--fail-on", "everything"],
        ["report", "--policy", "p.yaml", "--policy-parameter", "/p"],
        ["report", "--regions", " , "],
        ["report", "--no-such-option"],
        [],
    ],
)
def test_a_usage_error_exits_3_with_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv, prepare=_never, write_reports=_never) == EXIT_ERROR

    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("ami-governance")
    assert "Traceback" not in err


def test_help_exits_0_and_documents_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--help"], prepare=_never, write_reports=_never) == EXIT_OK

    out = capsys.readouterr().out
    assert "exit codes:" in out
    assert "--fail-on KIND" in out


def test_help_imports_neither_boto3_nor_rich() -> None:
    import subprocess

    code = (
        "import sys; from ami_governance.cli import build_parser; build_parser().format_help(); "
        "print(sorted(m for m in ('boto3', 'botocore', 'rich', 'pydantic') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT / "lambdas"
    ).stdout

    assert out.strip() == "[]"


# ---- exit codes -------------------------------------------------------------------------------------------------


def test_a_complete_report_without_fail_on_findings_exits_0_and_writes_there(tmp_path: Path) -> None:
    run = Run(report([finding(FindingKind.UNUSED, "ami-1")]), tmp_path)

    assert run("--fail-on", "exposure", "--regions", "us-east-1,eu-west-1") == EXIT_OK

    assert run.written == [(run.service.answer, tmp_path / "out")]
    assert (tmp_path / "out").is_dir()
    assert run.service.calls[0][0] == ("us-east-1", "eu-west-1")
    assert run.options[0].regions == ("us-east-1", "eu-west-1")


def test_an_incomplete_region_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = Run(report(incomplete=["eu-west-1"]), tmp_path)

    assert run() == EXIT_INCOMPLETE

    assert "exit 1: incomplete regions: eu-west-1" in capsys.readouterr().err


def test_allow_incomplete_exits_0(tmp_path: Path) -> None:
    assert Run(report(incomplete=["eu-west-1"]), tmp_path)("--allow-incomplete") == EXIT_OK


def test_a_fail_on_finding_exits_2_also_when_a_region_is_incomplete(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    answer = report([finding(FindingKind.EXPOSURE, "ami-2"), finding(FindingKind.UNUSED, "ami-1")], ["eu-west-1"])

    assert Run(answer, tmp_path)("--fail-on", "unused", "--fail-on", "stale") == EXIT_FINDINGS

    assert "exit 2: findings of --fail-on kinds: unused" in capsys.readouterr().err


def test_a_setup_error_exits_3_with_one_line_and_no_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def refuse(options: ReportOptions) -> Prepared:
        raise SetupError("AWS refused the credentials: InvalidClientTokenId: The security token is invalid.")

    code = main(["report", "--output-dir", str(tmp_path / "out")], prepare=refuse, write_reports=_never)

    assert code == EXIT_ERROR
    assert capsys.readouterr().err == (
        "ami-governance report: AWS refused the credentials: InvalidClientTokenId: The security token is invalid.\n"
    )
    assert not (tmp_path / "out").exists()


def test_an_output_directory_that_cannot_be_created_exits_3_before_the_scan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("not a directory")
    run = Run(report(), tmp_path)

    code = main(
        ["report", "--output-dir", str(tmp_path / "file" / "out")], prepare=run.prepare, write_reports=run.write
    )

    assert code == EXIT_ERROR
    assert run.service.calls == []
    err = capsys.readouterr().err
    assert err.startswith(f"ami-governance report: cannot create the output directory {tmp_path / 'file' / 'out'}")
    assert err.count("\n") == 1


# ---- what is printed --------------------------------------------------------------------------------------------


def test_json_summary_on_stdout(tmp_path: Path) -> None:
    answer = report(
        [
            finding(FindingKind.ORPHANED_SNAPSHOT, "snap-1", 0.4),
            finding(FindingKind.ORPHANED_SNAPSHOT, "snap-2", 0.45),
            finding(FindingKind.EXPOSURE, "ami-2"),
        ],
        incomplete=["eu-west-1"],
    )
    run = Run(answer, tmp_path)

    assert run("--json", "--fail-on", "exposure") == EXIT_FINDINGS

    out = tmp_path / "out"
    assert json.loads(run.stdout[0]) == {
        "run_id": "run-1",
        "generated_at": "2026-12-01T06:00:00Z",
        "account_id": ACCOUNT,
        "complete": False,
        "findings": 3,
        "monthly_cost": 0.85,
        "by_kind": {
            "exposure": {"count": 1, "monthly_cost": 0.0},
            "orphaned-snapshot": {"count": 2, "monthly_cost": 0.85},
        },
        "regions": [
            {
                "account_id": ACCOUNT,
                "region": "us-east-1",
                "complete": True,
                "errors": {},
                "images": 12,
                "snapshots": 30,
                "instances": 4,
                "verified_by": {"describe": 2, "inventory": 10},
                "api_calls": 17,
            },
            {
                "account_id": ACCOUNT,
                "region": "eu-west-1",
                "complete": False,
                "errors": {"snapshots": "RequestLimitExceeded: Request limit exceeded."},
                "images": 12,
                "snapshots": 30,
                "instances": 4,
                "verified_by": {"describe": 2, "inventory": 10},
                "api_calls": 17,
            },
        ],
        "notes": ["a note"],
        "files": {"csv": str(out / "report.csv"), "html": str(out / "report.html"), "json": str(out / "report.json")},
        "fail_on": ["exposure"],
        "exit_code": EXIT_FINDINGS,
    }


def test_progress_lines_and_summary_tables(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    answer = report([finding(FindingKind.ORPHANED_SNAPSHOT, "snap-1", 1.25)], incomplete=["eu-west-1"])

    assert Run(answer, tmp_path)("--allow-incomplete") == EXIT_OK

    captured = capsys.readouterr()
    # stderr is not a terminal here: one line per region done instead of bars.
    assert captured.err.splitlines() == [
        "us-east-1: complete (12 AMIs, 30 snapshots, 4 instances)",
        "eu-west-1: INCOMPLETE (12 AMIs, 30 snapshots, 4 instances; failed: snapshots)",
        "some regions are incomplete (accepted: --allow-incomplete)",
    ]
    out = captured.out
    assert "eu-west-1: snapshots failed: RequestLimitExceeded: Request limit exceeded." in out
    assert "orphaned-snapshot" in out
    assert "1.25" in out
    assert "Note: a note" in out
    assert out.rstrip().endswith(f"HTML report: {tmp_path / 'out' / 'report.html'}")


# ---- the real preparation's errors --------------------------------------------------------------------------------


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    empty = tmp_path / "empty-aws-config"
    empty.write_text("")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


POLICY = str(POLICY_FILE)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--policy", POLICY, "--regions", "us-east-1,mars-north-1"],
            "unknown region: mars-north-1 (not an EC2 region botocore knows)",
        ),
        (["--policy", "missing.yaml"], "missing.yaml: cannot read the policy: [Errno 2] No such file or directory:"),
        (["--policy", POLICY, "--profile", "nobody"], "The config profile (nobody) could not be found"),
        (["--policy-parameter", "/p"], "--policy-parameter needs a region: give --home-region or a profile"),
    ],
)
def test_preparation_errors_exit_3_with_one_line(
    argv: list[str],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    no_credentials: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)

    code = main(["report", "--output-dir", str(tmp_path / "out"), *argv])

    assert code == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith(f"ami-governance report: {message}")
    assert err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_no_credentials_exit_3(tmp_path: Path, capsys: pytest.CaptureFixture[str], no_credentials: None) -> None:
    code = main(["report", "--policy", str(POLICY_FILE), "--output-dir", str(tmp_path / "out")])

    assert code == EXIT_ERROR
    assert capsys.readouterr().err == (
        "ami-governance report: no AWS credentials found (give --profile, or set AWS_ACCESS_KEY_ID / AWS_PROFILE)\n"
    )


def test_refused_credentials_are_one_session_error() -> None:
    session = OperatorSession(endpoint_url="http://127.0.0.1:1")
    with Stubber(session.client("sts", "us-east-1")) as sts:
        sts.add_client_error(
            "get_caller_identity", "InvalidClientTokenId", "The security token included in the request is invalid."
        )
        with pytest.raises(SessionError) as refused:
            session.account_id("us-east-1")

    assert str(refused.value) == (
        "AWS refused the credentials: InvalidClientTokenId: The security token included in the request is invalid."
    )


def test_an_unreadable_policy_parameter_is_a_policy_error() -> None:
    from ami_governance.models.policy import PolicyError

    session = OperatorSession(endpoint_url="http://127.0.0.1:1")
    with Stubber(session.client("ssm", "eu-west-1")) as ssm:
        ssm.add_client_error("get_parameter", "ParameterNotFound", "")
        with pytest.raises(PolicyError) as unreadable:
            session.policy_parameter("/ami-governance/policy", "eu-west-1")
        ssm.add_response("get_parameter", {"Parameter": {"Name": "/p", "Value": "{not json"}})
        with pytest.raises(PolicyError) as not_json:
            session.policy_parameter("/p", "eu-west-1")

    assert str(unreadable.value) == (
        "/ami-governance/policy (eu-west-1): cannot read the policy parameter: ParameterNotFound"
    )
    assert str(not_json.value).startswith("/p: the policy parameter is not JSON: ")


# ---- inventories and packaging ------------------------------------------------------------------------------------


def test_the_inventory_table_is_read_but_never_written() -> None:
    record = InventoryRecord(image_id="ami-1", region="us-east-1")
    permissions = LaunchPermissions(image_id="ami-1", verified_by=VerifiedBy.DESCRIBE)

    class Table:
        def __init__(self) -> None:
            self.written: list[str] = []

        def records(self) -> dict[str, list[InventoryRecord]]:
            return {"us-east-1": [record]}

        def record_launch_permissions(self, image_id: str, region: str, permissions: LaunchPermissions) -> None:
            self.written.append(image_id)

    table = Table()
    read_only = ReadOnlyInventory(table)
    read_only.record_launch_permissions("ami-1", "us-east-1", permissions)

    assert read_only.records() == {"us-east-1": [record]}
    assert table.written == []
    assert "launch permissions were read from EC2" in NO_INVENTORY_NOTE


def test_the_console_script_is_declared_and_built_with_setuptools() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())

    assert project["project"]["scripts"] == {"ami-governance": "ami_governance.cli:main"}
    assert project["build-system"]["build-backend"] == "setuptools.build_meta"
    assert [r.split("==")[0] for r in project["build-system"]["requires"]] == ["setuptools"]
    assert project["tool"]["setuptools"]["package-dir"] == {"": "lambdas"}
    assert "-e ." in (REPO_ROOT / "requirements-dev.txt").read_text().splitlines()


def test_the_cli_is_not_in_the_lambda_asset(tmp_path: Path) -> None:
    bundle_function_code(tmp_path)

    assert (tmp_path / "ami_governance" / "services" / "report.py").is_file()
    assert (tmp_path / "ami_governance" / "adapters" / "clients.py").is_file()
    assert not (tmp_path / "ami_governance" / "cli").exists()
    assert not (tmp_path / "ami_governance" / "adapters" / "session.py").exists()
    assert not list(tmp_path.glob("*.egg-info"))


def _never(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("not called")


def test_on_a_terminal_each_region_gets_a_bar_that_ends_with_its_status() -> None:
    import io

    from rich.console import Console

    from ami_governance.cli.console import ReportConsole

    screen = io.StringIO()
    console = ReportConsole(
        out=Console(file=io.StringIO()), err=Console(file=screen, force_terminal=True, width=120, color_system=None)
    )
    with console.progress(["us-east-1", "eu-west-1"]) as sink:
        for region, complete in (("us-east-1", True), ("eu-west-1", False)):
            sink.region_started(region)
            sink.region_step(region, "listings")
            sink.region_step(region, "references")
            sink.region_done(region, status(region, complete))

    final = screen.getvalue().split("\x1b[?25h")[0].splitlines()  # the last frame before the cursor comes back
    bars = [line for line in final[-4:] if "us-east-1" in line or "eu-west-1" in line]
    assert any("us-east-1" in line and "complete (12 AMIs, 30 snapshots, 4 instances)" in line for line in bars)
    assert any(
        "eu-west-1" in line and "INCOMPLETE (12 AMIs, 30 snapshots, 4 instances; failed: snapshots)" in line
        for line in bars
    )


def test_the_services_logs_stay_off_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from aws_lambda_powertools import Logger

    class LoggingService(FakeService):
        def run(
            self, regions: Sequence[str] | None = None, *, progress: Any = None, run_id: str | None = None
        ) -> Report:
            service_logger = Logger(child=True)
            service_logger.warning("Inventory could not be read; the report is incomplete")
            service_logger.error("Region scan failed")
            return super().run(regions, progress=progress, run_id=run_id)

    run = Run(report(), tmp_path)
    run.service = LoggingService(report())

    assert run("--json") == EXIT_OK

    captured = capsys.readouterr()
    assert json.loads(run.stdout[0])["exit_code"] == EXIT_OK
    assert captured.out == ""
    assert "Region scan failed" in captured.err
    assert "Inventory could not be read" not in captured.err + captured.out
