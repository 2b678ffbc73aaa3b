"""The report as JSON, CSV and a self-contained HTML page.

JSON follows outputs/report.schema.json (its `schema_version` is the report's); keys come in a fixed order and
every map is sorted, so two runs over the same estate give the same bytes. CSV is one row per finding with fixed
columns. HTML is built with Jinja2 (autoescape on: names, tags and AWS error messages are attacker-controlled
text), with its CSS and script inline and a Content-Security-Policy that allows nothing else, so the page opens
from S3, a laptop or a mail attachment without fetching anything.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ami_governance.models.findings import Finding, FindingKind, RegionStatus, Report, SweepAction
from ami_governance.outputs.summary import Tally, Totals, place, totals

if TYPE_CHECKING:
    from jinja2 import Environment

TEMPLATES = Path(__file__).parent / "templates"
SCHEMA_FILE = Path(__file__).parent / "report.schema.json"

CSV_COLUMNS = (
    "kind",
    "detail",
    "account",
    "region",
    "resource_type",
    "resource_id",
    "name",
    "age_days",
    "size_gib",
    "monthly_cost_usd",
    "owner_tags",
    "reason",
    "fix",
    "actionable",
    "related_ids",
)
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection): AMI names, tags and
# descriptions are chosen by whoever made the resource, so such a cell is prefixed with a quote.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Findings the page lays out before "Show all": a browser takes seconds over ten thousand table rows.
HTML_ROW_LIMIT = 500


# ---- JSON ----


def report_document(report: Report) -> dict[str, Any]:
    """The report as plain data, in the shape of report.schema.json."""
    total = totals(report)
    return {
        "schema_version": report.schema_version,
        "run_id": report.run_id,
        "generated_at": _iso(report.generated_at),
        "mode": report.mode,
        "sweep": report.sweep,
        "complete": report.complete,
        "summary": {
            "findings": total.findings,
            "actionable": total.actionable,
            "monthly_cost": total.monthly_cost,
            "regions": len(total.regions),
            "regions_complete": total.regions_complete,
            "regions_incomplete": len(total.incomplete),
            "by_kind": _tallies(total.by_kind),
            "by_region": _tallies(total.by_region),
            "by_account": _tallies(total.by_account),
            "actions": dict(total.actions),
        },
        "regions": [_region(region) for region in report.regions],
        "findings": [_finding(finding) for finding in report.findings],
        "actions": [_action(action) for action in report.actions],
    }


def render_json(report: Report) -> str:
    # allow_nan=False: NaN is not JSON; a NaN cost is a bug to surface, not a document to publish.
    return json.dumps(report_document(report), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _tallies(groups: dict[str, Tally]) -> dict[str, dict[str, Any]]:
    return {group: {"count": tally.count, "monthly_cost": tally.monthly_cost} for group, tally in groups.items()}


def _region(region: RegionStatus) -> dict[str, Any]:
    return {
        "account_id": region.account_id,
        "region": region.region,
        "complete": region.complete,
        "errors": dict(sorted(region.errors.items())),
        "images": region.images,
        "snapshots": region.snapshots,
        "instances": region.instances,
        "verified_by": dict(sorted(region.verified_by.items())),
        "api_calls": region.api_calls,
    }


def _finding(finding: Finding) -> dict[str, Any]:
    return {
        "kind": finding.kind.value,
        "detail": finding.detail,
        "account_id": finding.account_id,
        "region": finding.region,
        "resource_type": finding.resource_type.value,
        "resource_id": finding.resource_id,
        "name": finding.name,
        "owner_tags": dict(sorted(finding.owner_tags.items())),
        "age_days": finding.age_days,
        "size_gib": finding.size_gib,
        "monthly_cost": finding.monthly_cost,
        "actionable": finding.actionable,
        "reason": finding.reason,
        "fix": finding.fix,
        "related_ids": list(finding.related_ids),
    }


def _action(action: SweepAction) -> dict[str, Any]:
    return {
        "kind": action.kind.value,
        "account_id": action.account_id,
        "region": action.region,
        "resource_id": action.resource_id,
        "status": action.status.value,
        "reason": action.reason,
        "finding_kind": action.finding_kind.value if action.finding_kind else None,
    }


# ---- CSV ----


def render_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out)  # RFC 4180: CRLF line ends, quotes doubled
    writer.writerow(CSV_COLUMNS)
    for finding in report.findings:
        writer.writerow(
            [
                finding.kind.value,
                _cell(finding.detail),
                _cell(finding.account_id),
                _cell(finding.region),
                finding.resource_type.value,
                _cell(finding.resource_id),
                _cell(finding.name),
                "" if finding.age_days is None else str(finding.age_days),
                str(finding.size_gib),
                _cost(finding.monthly_cost),
                _cell(";".join(f"{key}={value}" for key, value in sorted(finding.owner_tags.items()))),
                _cell(finding.reason),
                _cell(finding.fix),
                "true" if finding.actionable else "false",
                _cell(";".join(finding.related_ids)),
            ]
        )
    return out.getvalue()


def _cell(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _cost(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".") if value else "0"


# ---- HTML ----


def render_html(report: Report) -> str:
    environment = _environment()
    style = (TEMPLATES / "report.css").read_text(encoding="utf-8")
    script = (TEMPLATES / "report.js").read_text(encoding="utf-8")
    from markupsafe import Markup

    return environment.get_template("report.html.j2").render(
        page=_page(report),
        # Trusted files of this package, not data: inserted as they are, and allowed by their hash alone.
        style=Markup(style),
        script=Markup(script),
        csp=(
            "default-src 'none'; img-src data:; "
            f"style-src '{_sha256(style)}'; script-src '{_sha256(script)}'; base-uri 'none'; form-action 'none'"
        ),
    )


@cache
def _environment() -> Environment:
    # Imported here, not at module level: only the report Lambda renders HTML, the others keep their import time.
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,  # every template here is HTML (select_autoescape would miss the .html.j2 name)
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


@dataclass(frozen=True)
class Bar:
    label: str
    count: int
    monthly_cost: float
    width: float  # of the bar area, 0..100 (share of the largest cost, or of the largest count when nothing costs)


@dataclass(frozen=True)
class Chart:
    title: str
    key: str  # "kind" | "region": the data attribute the bars carry
    bars: tuple[Bar, ...]
    by_cost: bool


def _chart(title: str, key: str, groups: dict[str, Tally]) -> Chart:
    shown = [(label, tally) for label, tally in groups.items() if tally.count]
    by_cost = any(tally.monthly_cost for _label, tally in shown)
    shown.sort(key=lambda item: (-(item[1].monthly_cost if by_cost else item[1].count), item[0]))
    largest = max((tally.monthly_cost if by_cost else tally.count for _label, tally in shown), default=0) or 1
    bars = tuple(
        Bar(
            label=label,
            count=tally.count,
            monthly_cost=tally.monthly_cost,
            width=round(100 * (tally.monthly_cost if by_cost else tally.count) / largest, 2),
        )
        for label, tally in shown
    )
    return Chart(title=title, key=key, bars=bars, by_cost=by_cost)


def _money(value: float) -> str:
    return f"${value:,.2f}"


def _page(report: Report) -> dict[str, Any]:
    total: Totals = totals(report)
    kinds = [kind.value for kind in FindingKind if total.by_kind[kind.value].count]
    return {
        "report": report,
        "generated_at": report.generated_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "total": total,
        "money": _money,
        "place": lambda region: place(region, report),
        "kinds": kinds,
        "charts": (
            _chart("Monthly cost by region", "region", total.by_region),
            _chart("Monthly cost by kind", "kind", total.by_kind),
        ),
        "findings": [_finding_row(finding) for finding in report.findings],
        "several_accounts": len(total.by_account) > 1,
        "row_limit": HTML_ROW_LIMIT,
    }


def _finding_row(finding: Finding) -> dict[str, Any]:
    tags = ", ".join(f"{key}={value}" for key, value in sorted(finding.owner_tags.items()))
    return {"finding": finding, "tags": tags, "cost": _money(finding.monthly_cost)}
