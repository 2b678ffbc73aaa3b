"""The totals every output shows, the one SNS summary per run, and the run's metrics.

Totals are computed once here so that the JSON, the HTML page, the notice and the metrics cannot disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC

from ami_governance.models.findings import ActionStatus, Finding, FindingKind, RegionStatus, Report
from ami_governance.models.notices import Notice
from ami_governance.rules.notices import _subject as sns_subject  # the SNS subject rules every notice follows

TOP_ITEMS = 5


@dataclass(frozen=True)
class Tally:
    count: int = 0
    monthly_cost: float = 0.0  # USD per month, rounded to cents; an upper bound (snapshot storage)


@dataclass(frozen=True)
class Totals:
    findings: int
    actionable: int
    monthly_cost: float
    regions: tuple[RegionStatus, ...]
    by_kind: dict[str, Tally]  # every FindingKind, in the enum's order, zeros included
    by_region: dict[str, Tally]  # every scanned region (and any region a finding names), sorted; across accounts
    by_account: dict[str, Tally]  # every scanned account (and any a finding names), sorted
    actions: dict[str, int]  # every ActionStatus, in the enum's order, zeros included

    @property
    def incomplete(self) -> tuple[RegionStatus, ...]:
        return tuple(region for region in self.regions if not region.complete)

    @property
    def regions_complete(self) -> int:
        return len(self.regions) - len(self.incomplete)


def totals(report: Report) -> Totals:
    by_kind = _tally(report.findings, lambda f: f.kind.value, [kind.value for kind in FindingKind])
    by_region = _tally(report.findings, lambda f: f.region, sorted({r.region for r in report.regions}))
    by_account = _tally(report.findings, lambda f: f.account_id, sorted({r.account_id for r in report.regions}))
    return Totals(
        findings=len(report.findings),
        actionable=sum(1 for finding in report.findings if finding.actionable),
        monthly_cost=report.monthly_cost,
        regions=report.regions,
        by_kind=by_kind,
        by_region=dict(sorted(by_region.items())),
        by_account=dict(sorted(by_account.items())),
        actions={
            status.value: sum(1 for action in report.actions if action.status is status) for status in ActionStatus
        },
    )


def _tally(findings: Iterable[Finding], key: Callable[[Finding], str], known: Iterable[str]) -> dict[str, Tally]:
    counts: dict[str, int] = dict.fromkeys(known, 0)
    costs: dict[str, float] = dict.fromkeys(known, 0.0)
    for finding in findings:
        group = key(finding)
        counts[group] = counts.get(group, 0) + 1
        costs[group] = costs.get(group, 0.0) + finding.monthly_cost
    return {group: Tally(count=counts[group], monthly_cost=round(costs[group], 2)) for group in counts}


def place(region: RegionStatus, report: Report) -> str:
    """How a region is named to people: with its account only when the report covers several accounts."""
    several = len({r.account_id for r in report.regions}) > 1
    return f"{region.account_id}/{region.region}" if several else region.region


def top_items(report: Report, limit: int = TOP_ITEMS) -> list[Finding]:
    """The costliest findings; ties (and findings that cost nothing) in the report's order."""
    ranked = sorted(enumerate(report.findings), key=lambda item: (-item[1].monthly_cost, item[0]))
    return [finding for _index, finding in ranked[:limit]]


def summary_notice(report: Report, keys: Mapping[str, str]) -> Notice:
    """One SNS notice per run: the totals, the incomplete regions first (a finding missing there is not "none"),
    the costliest items, and where the three documents are (`keys`: format -> S3 key, as ReportStore.publish
    returns them)."""
    total = totals(report)
    day = f"{report.generated_at.astimezone(UTC):%Y-%m-%d}"
    headline = f"{total.findings} finding{'' if total.findings == 1 else 's'}, up to ${total.monthly_cost:,.2f}/month"
    incomplete = [place(region, report) for region in total.incomplete]
    if incomplete:
        subject = f"AMI report {day} INCOMPLETE in {', '.join(incomplete)}: {headline}"
    else:
        subject = f"AMI report {day}: {headline}"
    lines = [
        f"INCOMPLETE: {place(region, report)}: "
        + "; ".join(f"{listing}: {error}" for listing, error in sorted(region.errors.items()))
        for region in total.incomplete
    ]
    if incomplete:
        lines.append("Findings in incomplete regions are not acted on, and a finding missing there may still exist.")
    lines.append(f"{headline} in {total.regions_complete} of {len(total.regions)} regions complete.")
    lines.extend(
        f"{kind}: {tally.count}, up to ${tally.monthly_cost:,.2f}/month"
        for kind, tally in total.by_kind.items()
        if tally.count
    )
    acted = {status: count for status, count in total.actions.items() if count}
    if acted:
        lines.append("Sweep: " + ", ".join(f"{count} {status}" for status, count in acted.items()))
    lines.extend(f"{fmt}: {key}" for fmt, key in keys.items())
    return Notice(
        subject=sns_subject(subject),
        body={
            "kind": "ami-report",
            "run_id": report.run_id,
            "generated_at": report.generated_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "mode": report.mode,
            "sweep": report.sweep,
            "complete": report.complete,
            "incomplete_regions": [
                {"account": region.account_id, "region": region.region, "errors": dict(sorted(region.errors.items()))}
                for region in total.incomplete
            ],
            "summary": lines,
            "findings": total.findings,
            "actionable": total.actionable,
            "estimated_monthly_cost_usd_upper_bound": total.monthly_cost,
            "by_kind": {
                kind: {"count": tally.count, "monthly_cost": tally.monthly_cost}
                for kind, tally in total.by_kind.items()
                if tally.count
            },
            "by_region": {
                region: {"count": tally.count, "monthly_cost": tally.monthly_cost}
                for region, tally in total.by_region.items()
            },
            "top_items": [
                {
                    "kind": finding.kind.value,
                    "account": finding.account_id,
                    "region": finding.region,
                    "resource_id": finding.resource_id,
                    "name": finding.name,
                    "monthly_cost": finding.monthly_cost,
                    "reason": finding.reason,
                }
                for finding in top_items(report)
            ],
            "sweep_actions": acted,
            "reports": dict(keys),
        },
    )


Metric = tuple[str, dict[str, str], float]


def report_metrics(report: Report) -> list[Metric]:
    """(name, dimensions, value) of the run's metrics, in a stable order.

    Findings and cost by kind (every kind, zeros included, so a kind that goes away drops to 0 on the dashboard
    rather than leaving a gap) and by scanned region, each on its own dimension: CloudWatch bills every distinct
    dimension combination as a custom metric, and kind x region would multiply them; the JSON has the cross-tab."""
    total = totals(report)
    metrics: list[Metric] = [
        ("FindingsCount", {}, float(total.findings)),
        ("FindingsMonthlyCost", {}, total.monthly_cost),
    ]
    for dimension, groups in (("kind", total.by_kind), ("region", total.by_region)):
        for group, tally in groups.items():
            metrics.append(("FindingsCount", {dimension: group}, float(tally.count)))
            metrics.append(("FindingsMonthlyCost", {dimension: group}, tally.monthly_cost))
    metrics.append(("RegionsIncomplete", {}, float(len(total.incomplete))))
    metrics.extend(("SweepActions", {"status": status}, float(count)) for status, count in total.actions.items())
    return metrics
