"""`ami-governance`: the operator's command line (console script, pyproject.toml).

`ami-governance report` runs the scheduled report's scan and findings (the same ReportService the report Lambda
runs) from a laptop, with the caller's credentials, writes report.json/csv/html locally and prints a summary. It is
read-only: the sweep is the Lambda's, never the CLI's.

This module imports only the standard library: `--help` and argument errors answer without loading boto3, pydantic
or rich. The command itself is in `cli/report.py`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from ami_governance.cli.report import Prepare, WriteReports

# Exit codes, for pipelines (also in `ami-governance report --help`).
EXIT_OK = 0  # the report is written, every region complete, no finding of a --fail-on kind
EXIT_INCOMPLETE = 1  # the report is written, but a region's evidence is incomplete (unless --allow-incomplete)
EXIT_FINDINGS = 2  # the report is written and holds findings of a --fail-on kind (wins over EXIT_INCOMPLETE)
EXIT_ERROR = 3  # no report: bad arguments, credentials, region, policy, or an output directory that cannot be written
EXIT_INTERRUPTED = 130

DEFAULT_POLICY = Path("governance-policy.yaml")

# FindingKind's values (models/findings.py), spelled here so that --help does not import the models; a unit test
# holds the two together.
FINDING_KINDS = (
    "orphaned-snapshot",
    "non-compliant",
    "unjudged",
    "unused",
    "stale",
    "drift",
    "exposure",
    "untrusted-source",
    "overdue",
)

EXIT_CODES_HELP = f"""\
exit codes:
  {EXIT_OK}  the report is written: every region complete, no finding of a --fail-on kind
  {EXIT_INCOMPLETE}  the report is written, but some region is incomplete (a listing failed): see its errors
     in the summary and the report (--allow-incomplete turns this into {EXIT_OK})
  {EXIT_FINDINGS}  the report is written and has findings of a --fail-on kind (wins over {EXIT_INCOMPLETE})
  {EXIT_ERROR}  no report: bad arguments, no or refused credentials, an unknown region, a policy that cannot be
     read or is invalid, or an output directory that cannot be written (one line on stderr)
"""


@dataclass(frozen=True)
class ReportOptions:
    profile: str | None
    regions: tuple[str, ...] | None  # None: the policy's governed regions
    policy_file: Path
    policy_parameter: str | None
    home_region: str | None
    endpoint_url: str | None
    output_dir: Path
    fail_on: frozenset[str]
    allow_incomplete: bool
    inventory_table: str | None
    json: bool


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    # argparse exits 2 on a usage error, which would read as "findings" in a pipeline: raise instead.
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ami-governance", description="AMI governance, from the operator's side.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    report = commands.add_parser(
        "report",
        help="scan the governed regions and write the report (JSON, CSV, HTML) locally",
        description=(
            "Scan every governed region with your credentials, compute the report's findings exactly as the "
            "scheduled report Lambda does, write report.json, report.csv and report.html, and print a summary. "
            "Read-only: nothing is changed (the sweep runs only in the Lambda)."
        ),
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    report.add_argument("--profile", help="AWS profile of the credentials to use (default: boto3's usual chain)")
    report.add_argument(
        "--regions",
        action="append",
        metavar="REGION[,REGION...]",
        help="regions to scan, comma-separated or repeated (default: the policy's governed_regions)",
    )
    source = report.add_mutually_exclusive_group()
    source.add_argument(
        "--policy",
        type=Path,
        default=DEFAULT_POLICY,
        metavar="FILE",
        help=f"the governance policy, a YAML file (default: ./{DEFAULT_POLICY})",
    )
    source.add_argument(
        "--policy-parameter",
        metavar="NAME",
        help="read the deployed policy from this SSM parameter instead (e.g. /ami-governance/policy)",
    )
    report.add_argument(
        "--home-region",
        metavar="REGION",
        help=(
            "region of the policy parameter and the inventory table (default: the policy's home_region; "
            "with --policy-parameter: the profile's region)"
        ),
    )
    report.add_argument("--endpoint-url", metavar="URL", help="AWS endpoint of every call, e.g. the local emulator")
    report.add_argument(
        "--output-dir",
        type=Path,
        metavar="DIR",
        help="where to write report.json, report.csv and report.html (default: ./report-<YYYY-MM-DD>)",
    )
    report.add_argument(
        "--fail-on",
        action="append",
        default=[],
        choices=FINDING_KINDS,
        metavar="KIND",
        help=f"exit {EXIT_FINDINGS} when the report has a finding of this kind (repeatable): "
        + ", ".join(FINDING_KINDS),
    )
    report.add_argument(
        "--allow-incomplete",
        action="store_true",
        help=f"exit {EXIT_OK} (not {EXIT_INCOMPLETE}) when a region's evidence is incomplete",
    )
    report.add_argument(
        "--inventory-table",
        metavar="NAME",
        help=(
            "the governance inventory table (DynamoDB), in the home region: recorded launch permissions and "
            "lineage. Without it the inventory part is empty, every AMI's launch permissions are read from EC2, "
            "and the summary says so"
        ),
    )
    report.add_argument("--json", action="store_true", help="print the summary as JSON on stdout (no table)")
    return parser


def parse_report_options(argv: Sequence[str], today: datetime | None = None) -> ReportOptions:
    arguments = build_parser().parse_args(list(argv))
    regions: tuple[str, ...] | None = None
    if arguments.regions:
        regions = tuple(
            dict.fromkeys(name.strip() for value in arguments.regions for name in value.split(",") if name.strip())
        )
        if not regions:
            raise UsageError("ami-governance report: --regions names no region")
    day = (today or datetime.now(UTC)).strftime("%Y-%m-%d")
    return ReportOptions(
        profile=arguments.profile,
        regions=regions,
        policy_file=arguments.policy,
        policy_parameter=arguments.policy_parameter,
        home_region=arguments.home_region,
        endpoint_url=arguments.endpoint_url,
        output_dir=arguments.output_dir or Path(f"report-{day}"),
        fail_on=frozenset(arguments.fail_on),
        allow_incomplete=arguments.allow_incomplete,
        inventory_table=arguments.inventory_table,
        json=arguments.json,
    )


def main(
    argv: Sequence[str] | None = None,
    *,
    prepare: Prepare | None = None,
    write_reports: WriteReports | None = None,
    stdout: Callable[[str], object] | None = None,
) -> int:
    """The console script. `prepare` and `write_reports` replace the real service and writer in tests."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        options = parse_report_options(args)
    except UsageError as error:
        print(error, file=sys.stderr)
        return EXIT_ERROR
    except SystemExit as done:  # --help and --version
        return int(done.code or 0)
    from ami_governance.cli.report import run_report

    try:
        return run_report(options, prepare=prepare, write_reports=write_reports, stdout=stdout)
    except KeyboardInterrupt:
        print("ami-governance: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
