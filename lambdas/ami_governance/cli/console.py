"""What the operator sees: a progress bar per region while the report runs (stderr), then summary tables (stdout).

The service calls the progress sink from its worker threads; rich's Progress serializes its own updates. When stderr
is not a terminal (CI logs) there are no bars, one line per finished region instead.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from ami_governance.cli import EXIT_FINDINGS, EXIT_INCOMPLETE, EXIT_OK

if TYPE_CHECKING:
    from ami_governance.models.findings import RegionStatus, Report


class BarsProgress:
    """One bar per region: indeterminate while its steps run (the service does not say how many), full when done."""

    def __init__(self, progress: Progress, regions: Sequence[str]) -> None:
        self._progress = progress
        self._steps: dict[str, int] = {}
        self._tasks: dict[str, TaskID] = {
            region: progress.add_task("waiting", total=None, start=False, region=region) for region in regions
        }
        self._lock = threading.Lock()

    def _task(self, region: str) -> TaskID:
        with self._lock:
            if region not in self._tasks:
                self._tasks[region] = self._progress.add_task("waiting", total=None, start=False, region=region)
            return self._tasks[region]

    def region_started(self, region: str) -> None:
        task = self._task(region)
        self._progress.start_task(task)
        self._progress.update(task, description="started")

    def region_step(self, region: str, step: str) -> None:
        task = self._task(region)
        with self._lock:
            self._steps[region] = self._steps.get(region, 0) + 1
        self._progress.update(task, description=step, completed=self._steps[region])

    def region_done(self, region: str, status: RegionStatus) -> None:
        task = self._task(region)
        steps = max(1, self._steps.get(region, 0))
        self._progress.update(task, total=steps, completed=steps, description=status_text(status))
        self._progress.stop_task(task)


class LinesProgress:
    """No terminal: one line per region done, for logs."""

    def __init__(self, console: Console) -> None:
        self._console = console

    def region_started(self, region: str) -> None:
        pass

    def region_step(self, region: str, step: str) -> None:
        pass

    def region_done(self, region: str, status: RegionStatus) -> None:
        self._console.print(f"{region}: {status_text(status)}", markup=False, highlight=False, soft_wrap=True)


def status_text(status: RegionStatus) -> str:
    counts = f"{status.images} AMIs, {status.snapshots} snapshots, {status.instances} instances"
    if status.complete:
        return f"complete ({counts})"
    return f"INCOMPLETE ({counts}; failed: {', '.join(sorted(status.errors))})"


class ReportConsole:
    def __init__(self, out: Console | None = None, err: Console | None = None) -> None:
        self.out = out or Console(file=sys.stdout)
        self.err = err or Console(file=sys.stderr)

    @contextmanager
    def progress(self, regions: Sequence[str]) -> Iterator[BarsProgress | LinesProgress]:
        if not self.err.is_terminal:
            yield LinesProgress(self.err)
            return
        bars = Progress(
            SpinnerColumn(finished_text="•"),
            TextColumn("[bold]{task.fields[region]:<16}"),
            BarColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=self.err,
        )
        with bars:
            yield BarsProgress(bars, regions)

    def summary(self, report: Report, files: Mapping[str, Path], notes: Sequence[str]) -> None:
        regions = Table(title=f"Report {report.run_id}: regions", title_justify="left")
        for column in ("account", "region", "status", "AMIs", "snapshots", "instances", "launch permissions"):
            regions.add_column(column, justify="right" if column in {"AMIs", "snapshots", "instances"} else "left")
        for status in report.regions:
            verified = ", ".join(f"{count} {how}" for how, count in sorted(status.verified_by.items())) or "-"
            state = "complete" if status.complete else "[red]INCOMPLETE[/red]"
            regions.add_row(
                status.account_id,
                status.region,
                state,
                str(status.images),
                str(status.snapshots),
                str(status.instances),
                verified,
            )
        self.out.print(regions)
        for status in report.regions:
            for listing, error in sorted(status.errors.items()):
                self.out.print(
                    f"  {status.region}: {listing} failed: {error}", markup=False, highlight=False, soft_wrap=True
                )

        kinds = Table(title="Findings", title_justify="left")
        kinds.add_column("kind")
        kinds.add_column("findings", justify="right")
        kinds.add_column("monthly cost (USD, up to)", justify="right")
        counts: dict[str, tuple[int, float]] = {}
        for finding in report.findings:
            count, cost = counts.get(finding.kind.value, (0, 0.0))
            counts[finding.kind.value] = (count + 1, cost + finding.monthly_cost)
        for kind, (count, cost) in sorted(counts.items()):
            kinds.add_row(kind, str(count), f"{cost:,.2f}")
        kinds.add_row("[bold]total", f"[bold]{len(report.findings)}", f"[bold]{report.monthly_cost:,.2f}")
        self.out.print(kinds)
        for note in notes:
            self.out.print(f"Note: {note}", markup=False, highlight=False, soft_wrap=True)
        for kind, path in sorted(files.items()):
            if kind != "html":
                self.out.print(f"{kind.upper()}: {path}", markup=False, highlight=False, soft_wrap=True)
        if "html" in files:
            self.out.print(f"HTML report: {files['html']}", markup=False, highlight=False, soft_wrap=True)

    def verdict(self, report: Report, fail_on: frozenset[str], allow_incomplete: bool, code: int) -> None:
        if code == EXIT_FINDINGS:
            hits = sorted({f.kind.value for f in report.findings if f.kind.value in fail_on})
            self.err.print(f"exit {code}: findings of --fail-on kinds: {', '.join(hits)}", markup=False, soft_wrap=True)
        elif code == EXIT_INCOMPLETE:
            incomplete = [status.region for status in report.regions if not status.complete]
            self.err.print(
                f"exit {code}: incomplete regions: {', '.join(incomplete)} (--allow-incomplete to accept)",
                markup=False,
                soft_wrap=True,
            )
        elif code == EXIT_OK and not report.complete and allow_incomplete:
            self.err.print("some regions are incomplete (accepted: --allow-incomplete)", markup=False, soft_wrap=True)
