"""The report's outputs from hand-built reports: JSON valid against its schema with exact totals, CSV rows and its
formula guard, the HTML page's escaping, totals and self-containment, the SNS summary, the metrics, local files."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from ami_governance.models.findings import ActionKind, ActionStatus, FindingKind, ResourceType, VerifiedBy
from ami_governance.outputs.local import write_reports
from ami_governance.outputs.render import (
    CSV_COLUMNS,
    HTML_ROW_LIMIT,
    SCHEMA_FILE,
    render_csv,
    render_html,
    render_json,
)
from ami_governance.outputs.summary import report_metrics, summary_notice
from tests.conftest import REPO_ROOT
from tests.report_samples import ACCOUNT, FINDINGS, RUN_ID, complete_report, empty_report, sample_report

KEYS = {
    "json": f"reports/2026-12-01/{RUN_ID}/report.json",
    "csv": f"reports/2026-12-01/{RUN_ID}/report.csv",
    "html": f"reports/2026-12-01/{RUN_ID}/report.html",
}


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def errors_of(validator: jsonschema.Draft202012Validator, document: Any) -> list[str]:
    return sorted(error.message for error in validator.iter_errors(document))


# ---- JSON ----


@pytest.mark.parametrize("make", [sample_report, complete_report, empty_report])
def test_json_is_valid_against_the_schema(validator: jsonschema.Draft202012Validator, make: Any) -> None:
    assert errors_of(validator, json.loads(render_json(make()))) == []


def test_json_summary_totals_are_exact() -> None:
    document = json.loads(render_json(sample_report()))

    assert list(document) == [
        "schema_version",
        "run_id",
        "generated_at",
        "mode",
        "sweep",
        "complete",
        "summary",
        "regions",
        "findings",
        "actions",
    ]
    assert document["schema_version"] == 1
    assert document["generated_at"] == "2026-12-01T06:00:12Z"
    assert document["complete"] is False
    summary = document["summary"]
    assert {key: summary[key] for key in list(summary)[:6]} == {
        "findings": 10,
        "actionable": 9,
        "monthly_cost": 17.6,
        "regions": 3,
        "regions_complete": 2,
        "regions_incomplete": 1,
    }
    assert summary["by_kind"] == {
        "orphaned-snapshot": {"count": 2, "monthly_cost": 12.5},
        "non-compliant": {"count": 1, "monthly_cost": 0.4},
        "unjudged": {"count": 0, "monthly_cost": 0.0},
        "unused": {"count": 1, "monthly_cost": 0.8},
        "stale": {"count": 1, "monthly_cost": 1.5},
        "drift": {"count": 1, "monthly_cost": 0.0},
        "exposure": {"count": 2, "monthly_cost": 0.4},
        "untrusted-source": {"count": 1, "monthly_cost": 0.0},
        "overdue": {"count": 1, "monthly_cost": 2.0},
    }
    assert summary["by_region"] == {
        "ap-southeast-2": {"count": 1, "monthly_cost": 0.0},
        "eu-west-1": {"count": 4, "monthly_cost": 2.9},
        "us-east-1": {"count": 5, "monthly_cost": 14.7},
    }
    assert summary["by_account"] == {ACCOUNT: {"count": 10, "monthly_cost": 17.6}}
    assert summary["actions"] == {"done": 0, "failed": 0, "would-do": 2, "capped": 1, "skipped": 0}


def test_json_regions_findings_and_actions_carry_every_field() -> None:
    document = json.loads(render_json(sample_report()))

    assert document["regions"][2] == {
        "account_id": ACCOUNT,
        "region": "ap-southeast-2",
        "complete": False,
        "errors": {
            "images": "UnauthorizedOperation: You are not authorized to perform this operation.",
            "snapshots": "RequestLimitExceeded: Request limit exceeded.",
        },
        "images": 0,
        "snapshots": 0,
        "instances": 3,
        "verified_by": {},
        "api_calls": 9,
    }
    assert document["findings"][0] == {
        "kind": "orphaned-snapshot",
        "detail": "create-image",
        "account_id": ACCOUNT,
        "region": "us-east-1",
        "resource_type": "snapshot",
        "resource_id": "snap-0a1b2c3d4e5f60718",
        "name": "",
        "owner_tags": {"Owner": "alice@example.com", "team": "payments"},
        "age_days": 143,
        "size_gib": 200,
        "monthly_cost": 10.0,
        "actionable": True,
        "reason": FINDINGS[0].reason,
        "fix": FINDINGS[0].fix,
        "related_ids": ["ami-0f00dfeedcafe0001"],
    }
    assert [f["resource_id"] for f in document["findings"]] == [f.resource_id for f in FINDINGS]
    assert document["actions"][2] == {
        "kind": "delete-orphaned-snapshot",
        "account_id": ACCOUNT,
        "region": "eu-west-1",
        "resource_id": "snap-0ffee11223344aabb",
        "status": "capped",
        "reason": "over the run's cap of 1 action",
        "finding_kind": "orphaned-snapshot",
    }


def test_json_is_byte_stable_whatever_the_order_of_maps() -> None:
    report = sample_report()
    reordered = replace(
        report,
        findings=tuple(replace(f, owner_tags=dict(reversed(list(f.owner_tags.items())))) for f in report.findings),
        regions=tuple(replace(r, errors=dict(reversed(list(r.errors.items())))) for r in report.regions),
    )

    assert render_json(reordered) == render_json(report)


def test_the_schema_rejects_what_a_reader_could_not_read(validator: jsonschema.Draft202012Validator) -> None:
    document = json.loads(render_json(sample_report()))
    document["findings"][0]["kind"] = "cheap"
    del document["findings"][1]["fix"]
    document["summary"]["by_kind"].pop("drift")
    document["schema_version"] = 2

    assert errors_of(validator, document) == [
        "'cheap' is not one of ['orphaned-snapshot', 'non-compliant', 'unjudged', 'unused', 'stale', 'drift', "
        "'exposure', 'untrusted-source', 'overdue']",
        "'drift' is a required property",
        "'fix' is a required property",
        "1 was expected",
    ]


def test_the_schema_names_exactly_the_models_enums() -> None:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    definitions = schema["$defs"]

    assert definitions["finding"]["properties"]["kind"]["enum"] == [k.value for k in FindingKind]
    assert definitions["finding"]["properties"]["resource_type"]["enum"] == [r.value for r in ResourceType]
    assert definitions["action"]["properties"]["kind"]["enum"] == [k.value for k in ActionKind]
    assert definitions["action"]["properties"]["status"]["enum"] == [s.value for s in ActionStatus]
    assert definitions["region"]["properties"]["verified_by"]["propertyNames"]["enum"] == [v.value for v in VerifiedBy]


def test_a_nan_cost_fails_rendering_rather_than_publishing_invalid_json() -> None:
    report = sample_report()
    broken = replace(report, findings=(replace(report.findings[0], monthly_cost=float("nan")),))

    with pytest.raises(ValueError, match="not JSON compliant"):
        render_json(broken)


# ---- CSV ----


def csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def test_csv_has_one_row_per_finding_in_fixed_columns() -> None:
    text = render_csv(sample_report())
    rows = csv_rows(text)

    assert rows[0] == list(CSV_COLUMNS)
    assert rows[0] == [
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
    ]
    assert len(rows) == 1 + len(FINDINGS)
    assert rows[1] == [
        "orphaned-snapshot",
        "create-image",
        ACCOUNT,
        "us-east-1",
        "snapshot",
        "snap-0a1b2c3d4e5f60718",
        "",
        "143",
        "200",
        "10",
        "Owner=alice@example.com;team=payments",
        FINDINGS[0].reason,
        FINDINGS[0].fix,
        "true",
        "ami-0f00dfeedcafe0001",
    ]
    assert rows[6][7:10] == ["", "0", "0"]  # drift: no age, no size, no cost
    assert rows[9][13] == "false"  # the untrusted source in the incomplete region
    assert rows[10][14] == "snap-0ccc111122223333c;snap-0ddd111122223333d"
    assert text.endswith("\r\n")


def test_csv_cells_that_a_spreadsheet_would_run_are_quoted() -> None:
    rows = csv_rows(render_csv(sample_report()))
    exposure = rows[7]

    assert exposure[6] == '\'=HYPERLINK("http://evil.example","click")'
    assert exposure[10] == "team=-ops"  # only a cell's first character matters
    hostile = replace(FINDINGS[0], name="+cmd|' /C calc'!A0", detail="@SUM(1)", owner_tags={}, reason="-2+3", fix="\tx")
    row = csv_rows(render_csv(replace(sample_report(), findings=(hostile,))))[1]
    assert (row[1], row[6], row[11], row[12]) == ("'@SUM(1)", "'+cmd|' /C calc'!A0", "'-2+3", "'\tx")


def test_csv_of_a_report_without_findings_is_the_header() -> None:
    assert csv_rows(render_csv(empty_report())) == [list(CSV_COLUMNS)]


# ---- HTML ----


def data_value(html: str, total: str) -> str:
    match = re.search(rf'data-total="{total}" data-value="([^"]*)"', html)
    assert match, f"no data-total={total} on the page"
    return match.group(1)


def test_html_totals_are_the_jsons() -> None:
    report = sample_report()
    html = render_html(report)
    summary = json.loads(render_json(report))["summary"]

    assert int(data_value(html, "findings")) == summary["findings"] == 10
    assert float(data_value(html, "monthly-cost")) == summary["monthly_cost"] == 17.6
    assert int(data_value(html, "regions-complete")) == summary["regions_complete"] == 2
    assert int(data_value(html, "regions-incomplete")) == summary["regions_incomplete"] == 1
    assert int(data_value(html, "actions")) == 3
    bars = dict(re.findall(r'<g data-kind="([^"]+)" data-count="(\d+)"', html))
    assert {kind: int(count) for kind, count in bars.items()} == {
        kind: tally["count"] for kind, tally in summary["by_kind"].items() if tally["count"]
    }


def test_html_escapes_what_resources_are_named_and_tagged() -> None:
    html = render_html(sample_report())

    assert "<script>alert('x')</script>" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert html.count("<script>") == 1  # the page's own


def test_html_is_self_contained_and_allows_only_its_own_style_and_script() -> None:
    html = render_html(sample_report())

    assert not re.search(r"""(?:src|href)\s*=|url\(|@import|<link""", html, re.IGNORECASE)
    (style,) = re.findall(r"<style>(.*?)</style>", html, re.DOTALL)
    (script,) = re.findall(r"<script>(.*?)</script>", html, re.DOTALL)
    (csp,) = re.findall(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html)

    def digest(text: str) -> str:
        return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()

    assert csp == (
        f"default-src &#39;none&#39;; img-src data:; style-src &#39;{digest(style)}&#39;; "
        f"script-src &#39;{digest(script)}&#39;; base-uri &#39;none&#39;; form-action &#39;none&#39;"
    )


def test_html_names_incomplete_regions_and_their_errors_loudly() -> None:
    html = render_html(sample_report())
    alert = re.search(r'<section class="alert" id="incomplete"[^>]*>(.*?)</section>', html, re.DOTALL)

    assert alert, "no incomplete-regions alert"
    text = re.sub(r"<[^>]+>|\s+", " ", alert.group(1))
    assert "Incomplete: 1 of 3 regions could not be fully scanned" in text
    assert "ap-southeast-2" in text
    assert "UnauthorizedOperation: You are not authorized to perform this operation." in text
    assert "RequestLimitExceeded: Request limit exceeded." in text
    assert 'id="incomplete"' not in render_html(complete_report())


def test_html_of_an_empty_report_says_so() -> None:
    html = render_html(empty_report())

    assert data_value(html, "findings") == "0"
    assert "No findings." in html
    assert "No sweep actions (sweep off)." in html


def test_importing_the_outputs_does_not_import_jinja2() -> None:
    code = (
        "import sys, ami_governance.outputs.render, ami_governance.outputs.summary, "
        "ami_governance.adapters.report_store; print(sorted(m for m in ('jinja2', 'markupsafe') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT / "lambdas",
        capture_output=True,
        text=True,
        check=True,
    )

    assert result.stdout.strip() == "[]"


# ---- SNS summary and metrics ----


def test_summary_notice_names_incomplete_regions_first() -> None:
    notice = summary_notice(sample_report(), KEYS)

    assert notice.subject == "AMI report 2026-12-01 INCOMPLETE in ap-southeast-2: 10 findings, up to $17.60/month"
    assert notice.body["summary"][:3] == [
        "INCOMPLETE: ap-southeast-2: images: UnauthorizedOperation: You are not authorized to perform this "
        "operation.; snapshots: RequestLimitExceeded: Request limit exceeded.",
        "Findings in incomplete regions are not acted on, and a finding missing there may still exist.",
        "10 findings, up to $17.60/month in 2 of 3 regions complete.",
    ]
    assert notice.body["summary"][-4:] == [
        "Sweep: 2 would-do, 1 capped",
        f"json: {KEYS['json']}",
        f"csv: {KEYS['csv']}",
        f"html: {KEYS['html']}",
    ]
    assert notice.body["incomplete_regions"] == [
        {
            "account": ACCOUNT,
            "region": "ap-southeast-2",
            "errors": {
                "images": "UnauthorizedOperation: You are not authorized to perform this operation.",
                "snapshots": "RequestLimitExceeded: Request limit exceeded.",
            },
        }
    ]
    assert notice.body["reports"] == KEYS
    assert notice.body["kind"] == "ami-report"
    assert notice.body["complete"] is False
    assert notice.body["estimated_monthly_cost_usd_upper_bound"] == 17.6
    assert notice.body["sweep_actions"] == {"would-do": 2, "capped": 1}


def test_summary_notice_lists_the_costliest_items() -> None:
    notice = summary_notice(sample_report(), KEYS)

    assert [(item["resource_id"], item["monthly_cost"]) for item in notice.body["top_items"]] == [
        ("snap-0a1b2c3d4e5f60718", 10.0),
        ("snap-0ffee11223344aabb", 2.5),
        ("ami-0dead1ine0000f00d", 2.0),
        ("ami-0123456789abcdef0", 1.5),
        ("ami-0fedcba9876543210", 0.8),
    ]


def test_summary_notice_of_a_complete_report_and_its_subject_limit() -> None:
    assert summary_notice(complete_report(), KEYS).subject == "AMI report 2026-12-01: 9 findings, up to $17.60/month"
    assert summary_notice(empty_report(), {}).subject == "AMI report 2026-12-01: 0 findings, up to $0.00/month"
    report = sample_report()
    many = tuple(replace(report.regions[2], region=f"region-number-{n}-of-many") for n in range(8))
    subject = summary_notice(replace(report, regions=many), KEYS).subject
    assert len(subject) == 100
    assert subject.startswith("AMI report 2026-12-01 INCOMPLETE in region-number-0-of-many, ")
    assert subject.endswith("...")


def test_report_metrics_by_kind_and_by_region() -> None:
    metrics = report_metrics(sample_report())

    assert metrics[:2] == [("FindingsCount", {}, 10.0), ("FindingsMonthlyCost", {}, 17.6)]
    by_kind = {dims["kind"]: value for name, dims, value in metrics if name == "FindingsCount" and "kind" in dims}
    assert by_kind == {
        "orphaned-snapshot": 2.0,
        "non-compliant": 1.0,
        "unjudged": 0.0,
        "unused": 1.0,
        "stale": 1.0,
        "drift": 1.0,
        "exposure": 2.0,
        "untrusted-source": 1.0,
        "overdue": 1.0,
    }
    assert [(dims, value) for name, dims, value in metrics if name == "FindingsMonthlyCost" and "region" in dims] == [
        ({"region": "ap-southeast-2"}, 0.0),
        ({"region": "eu-west-1"}, 2.9),
        ({"region": "us-east-1"}, 14.7),
    ]
    assert ("RegionsIncomplete", {}, 1.0) in metrics
    assert [(dims["status"], value) for name, dims, value in metrics if name == "SweepActions"] == [
        ("done", 0.0),
        ("failed", 0.0),
        ("would-do", 2.0),
        ("capped", 1.0),
        ("skipped", 0.0),
    ]
    assert len(metrics) == 2 + 2 * len(FindingKind) + 2 * 3 + 1 + 5
    assert {name for name, _dims, _value in metrics} == {
        "FindingsCount",
        "FindingsMonthlyCost",
        "RegionsIncomplete",
        "SweepActions",
    }


def test_metrics_of_an_empty_report_are_zeros_for_every_kind() -> None:
    metrics = report_metrics(empty_report())

    assert [value for name, dims, value in metrics if name == "FindingsCount" and "kind" in dims] == [0.0] * len(
        FindingKind
    )
    assert ("FindingsCount", {"region": "us-east-1"}, 0.0) in metrics
    assert ("RegionsIncomplete", {}, 0.0) in metrics


# ---- local files ----


def test_write_reports_writes_the_three_documents(tmp_path: Path) -> None:
    report = sample_report()

    paths = write_reports(report, tmp_path / "out")

    assert paths == {
        "json": tmp_path / "out" / "report.json",
        "csv": tmp_path / "out" / "report.csv",
        "html": tmp_path / "out" / "report.html",
    }
    assert paths["json"].read_text(encoding="utf-8") == render_json(report)
    assert paths["csv"].read_bytes() == render_csv(report).encode("utf-8")  # CRLF kept as it is
    assert paths["html"].read_text(encoding="utf-8") == render_html(report)


def test_a_report_over_several_accounts_names_each_regions_account() -> None:
    report = sample_report()
    other = "210987654321"
    regions = (*report.regions, replace(report.regions[0], account_id=other))
    findings = (*report.findings, replace(FINDINGS[0], account_id=other, resource_id="snap-0e0e0e0e0e0e0e0e0"))
    several = replace(report, regions=regions, findings=findings)

    summary = json.loads(render_json(several))["summary"]
    html = render_html(several)
    notice = summary_notice(several, KEYS)

    assert summary["by_account"] == {
        ACCOUNT: {"count": 10, "monthly_cost": 17.6},
        other: {"count": 1, "monthly_cost": 10.0},
    }
    assert summary["by_region"]["us-east-1"] == {"count": 6, "monthly_cost": 24.7}
    assert '<button type="button">Account</button>' in html.split('id="regions"')[0]  # the findings table's column
    assert notice.subject.startswith(f"AMI report 2026-12-01 INCOMPLETE in {ACCOUNT}/ap-southeast-2: 11 findings")


def test_html_lays_out_only_the_first_rows_of_a_large_report_before_its_script_runs() -> None:
    many = tuple(replace(FINDINGS[0], resource_id=f"snap-{n:017x}") for n in range(HTML_ROW_LIMIT + 3))
    html = render_html(replace(sample_report(), findings=many))

    rows = re.findall(r'<tr data-kind="orphaned-snapshot" data-id="(snap-[0-9a-f]+)"( hidden)?>', html)
    assert [hidden for _id, hidden in rows] == [""] * HTML_ROW_LIMIT + [" hidden"] * 3
    assert f"Show all {HTML_ROW_LIMIT + 3} (the first {HTML_ROW_LIMIT} are shown)" in html
    assert 'id="show-all"' not in render_html(sample_report())
