"""The HTML report in headless Chromium (Debian's `chromium`, driven by Playwright without its own browser): it
loads nothing but itself, logs no console error, its totals are the JSON's, and its tables sort and filter.

Chromium is a prerequisite of `make test` (README, .ci/run): without it this module fails, it is not skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, sync_playwright

from ami_governance.models.findings import Report
from ami_governance.outputs.local import write_reports
from ami_governance.outputs.render import HTML_ROW_LIMIT
from tests.report_samples import FINDINGS, REGIONS, sample_report

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
INSTALL = "apt-get install -y --no-install-recommends chromium"
# The closed network refuses Chromium's background connections; as root it needs --no-sandbox.
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# A chart's bars as {label: [count, monthly cost]}, from their data attributes.
BARS = (
    "gs => Object.fromEntries(gs.map(g => [g.dataset.KEY, [Number(g.dataset.count), Number(g.dataset.monthlyCost)]]))"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: the HTML report's test needs Debian's chromium ({INSTALL})")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield launched
        launched.close()


class Opened:
    def __init__(self, page: Page, directory: Path) -> None:
        self.page = page
        self.screenshot = directory / "report.png"
        self.document: dict[str, Any] = {}
        self.console: list[str] = []
        self.requests: list[str] = []


@pytest.fixture
def report() -> Report:
    return sample_report()


@pytest.fixture
def opened(browser: Browser, tmp_path: Path, report: Report) -> Iterator[Opened]:
    paths = write_reports(report, tmp_path)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    result = Opened(page, tmp_path)
    result.document = json.loads(paths["json"].read_text(encoding="utf-8"))

    def on_console(message: ConsoleMessage) -> None:
        if message.type in {"error", "warning"}:
            result.console.append(f"{message.type}: {message.text}")

    def on_request(request: Request) -> None:
        result.requests.append(request.url)

    page.on("console", on_console)
    page.on("pageerror", lambda error: result.console.append(f"pageerror: {error}"))
    page.on("request", on_request)
    page.goto(paths["html"].as_uri())
    yield result
    page.close()


def row_ids(page: Page, table: str, attribute: str) -> list[str]:
    return [
        str(v)
        for v in page.eval_on_selector_all(
            f"#{table} tbody tr[{attribute}]", f"rows => rows.map(r => r.getAttribute('{attribute}'))"
        )
    ]


def visible_ids(page: Page) -> list[str]:
    return [
        str(v)
        for v in page.eval_on_selector_all(
            "#findings tbody tr[data-kind]", "rows => rows.filter(r => !r.hidden).map(r => r.dataset.id)"
        )
    ]


def test_the_page_loads_only_itself_without_console_errors(opened: Opened) -> None:
    opened.page.screenshot(path=str(opened.screenshot), full_page=True)

    assert opened.screenshot.stat().st_size > 10_000, f"screenshot: {opened.screenshot}"
    assert opened.console == [], f"console errors (screenshot: {opened.screenshot})"
    assert opened.requests == [opened.page.url], f"requests beyond the page (screenshot: {opened.screenshot})"
    assert opened.page.title() == "AMI governance report 2026-12-01 06:00 UTC"


def test_the_totals_on_the_page_are_the_jsons(opened: Opened) -> None:
    page, summary = opened.page, opened.document["summary"]
    shot = f"screenshot: {opened.screenshot}"
    page.screenshot(path=str(opened.screenshot), full_page=True)

    def total(name: str) -> tuple[str, str]:
        element = page.locator(f'[data-total="{name}"]')
        return str(element.get_attribute("data-value")), element.inner_text()

    assert total("findings") == (str(summary["findings"]), "10"), shot
    assert total("monthly-cost") == (str(summary["monthly_cost"]), "$17.60"), shot
    assert total("regions-complete") == (str(summary["regions_complete"]), "2"), shot
    assert total("regions-incomplete") == (str(summary["regions_incomplete"]), "1"), shot
    bars = page.eval_on_selector_all("[data-chart=kind] g[data-kind]", BARS.replace("KEY", "kind"))
    assert bars == {
        kind: [tally["count"], tally["monthly_cost"]] for kind, tally in summary["by_kind"].items() if tally["count"]
    }, shot
    regions = page.eval_on_selector_all("[data-chart=region] g[data-region]", BARS.replace("KEY", "region"))
    assert regions == {region: [t["count"], t["monthly_cost"]] for region, t in summary["by_region"].items()}, shot
    alert = page.locator("#incomplete")
    assert alert.is_visible(), shot
    assert "ap-southeast-2" in alert.inner_text(), shot
    assert "RequestLimitExceeded: Request limit exceeded." in alert.inner_text(), shot


def test_clicking_a_header_sorts_the_table(opened: Opened) -> None:
    page = opened.page
    shot = f"screenshot: {opened.screenshot}"
    cost = page.locator("#findings thead th", has_text="Cost / month")
    by_cost = sorted(FINDINGS, key=lambda f: f.monthly_cost)  # stable, as Array.prototype.sort is

    cost.locator("button").click()
    page.screenshot(path=str(opened.screenshot), full_page=True)
    assert row_ids(page, "findings", "data-id") == [f.resource_id for f in by_cost], shot
    assert cost.get_attribute("aria-sort") == "ascending", shot

    cost.locator("button").click()
    assert row_ids(page, "findings", "data-id") == [
        f.resource_id for f in sorted(by_cost, key=lambda f: -f.monthly_cost)
    ], shot
    assert cost.get_attribute("aria-sort") == "descending", shot

    page.locator("#findings thead th", has_text="Age (days)").locator("button").click()
    ages = sorted(FINDINGS, key=lambda f: -1 if f.age_days is None else f.age_days)
    assert row_ids(page, "findings", "data-id") == [f.resource_id for f in ages], shot
    assert cost.get_attribute("aria-sort") is None, shot

    page.locator("#regions thead th", has_text="API calls").locator("button").click()
    assert row_ids(page, "regions", "data-region") == [r.region for r in sorted(REGIONS, key=lambda r: r.api_calls)], (
        shot
    )


def test_the_text_and_kind_filters_narrow_the_findings(opened: Opened) -> None:
    page = opened.page
    shot = f"screenshot: {opened.screenshot}"
    shown = page.locator("#shown-count")
    assert shown.inner_text() == "10", shot

    page.fill("#finding-filter", "PAYMENTS")
    assert visible_ids(page) == ["snap-0a1b2c3d4e5f60718"], shot
    assert shown.inner_text() == "1", shot

    page.fill("#finding-filter", "")
    page.select_option("#kind-filter", "exposure")
    assert visible_ids(page) == ["ami-0feedface0000cafe", "eu-west-1"], shot

    page.fill("#finding-filter", "block public")
    assert visible_ids(page) == ["eu-west-1"], shot
    assert shown.inner_text() == "1", shot

    page.fill("#finding-filter", "no such thing")
    page.screenshot(path=str(opened.screenshot), full_page=True)
    assert visible_ids(page) == [], shot
    assert page.locator("#no-match").is_visible(), shot

    page.fill("#finding-filter", "")
    page.select_option("#kind-filter", "")
    assert len(visible_ids(page)) == len(FINDINGS), shot
    assert not page.locator("#no-match").is_visible(), shot


LARGE = HTML_ROW_LIMIT + 100


@pytest.mark.parametrize(
    "report",
    [
        replace(
            sample_report(),
            findings=tuple(
                replace(FINDINGS[n % 10], resource_id=f"ami-{n:017x}", monthly_cost=(n % 7) / 10) for n in range(LARGE)
            ),
        )
    ],
    ids=["large"],
)
def test_a_large_report_lays_out_its_first_rows_until_show_all(opened: Opened) -> None:
    page = opened.page
    shot = f"screenshot: {opened.screenshot}"
    page.screenshot(path=str(opened.screenshot))
    ids = [f"ami-{n:017x}" for n in range(LARGE)]
    assert opened.console == [], shot

    assert visible_ids(page) == ids[:HTML_ROW_LIMIT], shot
    assert page.locator("#shown-count").inner_text() == str(LARGE), shot
    assert page.locator("#show-all").is_visible(), shot

    page.locator("#findings thead th", has_text="Cost / month").locator("button").click()
    by_cost = sorted(range(LARGE), key=lambda n: (n % 7) / 10)
    assert visible_ids(page) == [ids[n] for n in by_cost[:HTML_ROW_LIMIT]], shot

    page.select_option("#kind-filter", "drift")
    assert visible_ids(page) == [ids[n] for n in by_cost if n % 10 == 5], shot  # FINDINGS[5] is the drift
    assert not page.locator("#show-all").is_visible(), shot

    page.select_option("#kind-filter", "")
    page.locator("#show-all").click()
    assert len(visible_ids(page)) == LARGE, shot
    assert not page.locator("#show-all").is_visible(), shot
