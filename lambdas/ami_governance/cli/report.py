"""`ami-governance report`: prepare the service, run it with a progress display, write the files, summarize, exit.

The pieces that touch AWS are behind `Prepare` (cli/service.py builds the real ReportService from the caller's
session), and the writer behind `WriteReports` (outputs/local.py), so that the exit codes and the summary are
tested without AWS.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ami_governance.cli import EXIT_ERROR, EXIT_FINDINGS, EXIT_INCOMPLETE, EXIT_OK, ReportOptions

if TYPE_CHECKING:
    from ami_governance.models.findings import RegionStatus, Report


class ProgressSinkLike(Protocol):
    """services/report.py's ProgressSink (spelled here so the CLI can be tested without the service)."""

    def region_started(self, region: str) -> None: ...
    def region_step(self, region: str, step: str) -> None: ...
    def region_done(self, region: str, status: RegionStatus) -> None: ...


class ReportRunner(Protocol):
    """What the CLI calls on services/report.py's ReportService."""

    def run(
        self, regions: Sequence[str] | None = None, *, progress: Any = None, run_id: str | None = None
    ) -> Report: ...


@dataclass(frozen=True)
class Prepared:
    service: ReportRunner
    regions: tuple[str, ...]
    account_id: str
    notes: tuple[str, ...] = ()  # said in the summary: what this run could not see, and why


class SetupError(Exception):
    """The run cannot start (credentials, region, policy): one line on stderr, exit 3."""


Prepare = Callable[[ReportOptions], Prepared]
WriteReports = Callable[["Report", Path], Mapping[str, Path]]


def exit_code(report: Report, fail_on: frozenset[str], allow_incomplete: bool) -> int:
    if any(finding.kind.value in fail_on for finding in report.findings):
        return EXIT_FINDINGS
    if not report.complete and not allow_incomplete:
        return EXIT_INCOMPLETE
    return EXIT_OK


def run_report(
    options: ReportOptions,
    *,
    prepare: Prepare | None = None,
    write_reports: WriteReports | None = None,
    stdout: Callable[[str], object] | None = None,
) -> int:
    from ami_governance.cli.console import ReportConsole

    if prepare is None:
        from ami_governance.cli.service import prepare_report

        prepare = prepare_report
    try:
        prepared = prepare(options)
    except SetupError as error:
        return _fail(str(error))
    # Before the scan, which may take minutes: a directory that cannot be written fails now.
    try:
        options.output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return _fail(f"cannot create the output directory {options.output_dir}: {error.strerror or error}")

    console = ReportConsole()
    with _service_logs_to_stderr(), console.progress(prepared.regions) as sink:
        report = prepared.service.run(prepared.regions, progress=sink)

    if write_reports is None:
        from ami_governance.outputs.local import write_reports as write_local

        write_reports = write_local
    try:
        # Absolute: the operator opens the page from wherever the summary is read.
        files = {kind: path.resolve() for kind, path in write_reports(report, options.output_dir).items()}
    except OSError as error:
        return _fail(f"cannot write the report to {options.output_dir}: {error.strerror or error}")

    code = exit_code(report, options.fail_on, options.allow_incomplete)
    if options.json:
        summary = json_summary(report, files, prepared, options, code)
        (stdout or _print_stdout)(json.dumps(summary, indent=2, sort_keys=True))
    else:
        console.summary(report, files, prepared.notes)
        console.verdict(report, options.fail_on, options.allow_incomplete, code)
    return code


def json_summary(
    report: Report, files: Mapping[str, Path], prepared: Prepared, options: ReportOptions, code: int
) -> dict[str, Any]:
    by_kind: dict[str, dict[str, Any]] = {}
    for finding in report.findings:
        entry = by_kind.setdefault(finding.kind.value, {"count": 0, "monthly_cost": 0.0})
        entry["count"] += 1
        entry["monthly_cost"] = round(entry["monthly_cost"] + finding.monthly_cost, 2)
    return {
        "run_id": report.run_id,
        "generated_at": report.generated_at.isoformat().replace("+00:00", "Z"),
        "account_id": prepared.account_id,
        "complete": report.complete,
        "findings": len(report.findings),
        "monthly_cost": report.monthly_cost,
        "by_kind": by_kind,
        "regions": [
            {
                "account_id": status.account_id,
                "region": status.region,
                "complete": status.complete,
                "errors": dict(status.errors),
                "images": status.images,
                "snapshots": status.snapshots,
                "instances": status.instances,
                "verified_by": dict(status.verified_by),
                "api_calls": status.api_calls,
            }
            for status in report.regions
        ],
        "notes": list(prepared.notes),
        "files": {kind: str(path) for kind, path in sorted(files.items())},
        "fail_on": sorted(options.fail_on),
        "exit_code": code,
    }


@contextmanager
def _service_logs_to_stderr() -> Iterator[None]:
    """The service logs as a Lambda does: JSON lines on stdout, which would break --json and the tables. During an
    operator's run only errors are logged, on stderr (what failed is in the summary and the report anyway)."""
    import logging

    from ami_governance.observability import logger

    handler = logger.registered_handler
    level = handler.level
    stream = handler.stream if isinstance(handler, logging.StreamHandler) else None
    if isinstance(handler, logging.StreamHandler):
        handler.setStream(_CurrentStderr())
    # On the handler: the services' child loggers propagate to it whatever the parent logger's level.
    handler.setLevel(logging.ERROR)
    try:
        yield
    finally:
        handler.setLevel(level)
        if isinstance(handler, logging.StreamHandler) and stream is not None:
            handler.setStream(stream)


class _CurrentStderr:
    """Whatever sys.stderr is when a line is logged (the service logs from its worker threads)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def _fail(message: str) -> int:
    print(f"ami-governance report: {message}", file=sys.stderr)
    return EXIT_ERROR


def _print_stdout(text: str) -> None:
    print(text)
