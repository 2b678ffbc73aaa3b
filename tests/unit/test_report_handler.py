"""The report handler's own logic: which regions an invoke asks for, and how the report's metrics are emitted."""

from __future__ import annotations

import importlib
import json
from types import ModuleType

import pytest

from ami_governance.settings import forget_settings

GOVERNED = ("us-east-1", "eu-west-1")


@pytest.fixture
def report_handler(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    # The module loads its settings when imported (the cold start): the template's bucket variable first.
    monkeypatch.setenv("REPORTS_BUCKET_NAME", "amigovernancehome-reportsbucket")
    forget_settings()
    return importlib.import_module("handlers.report")


@pytest.mark.parametrize(
    ("event", "regions"),
    [
        # the schedule's event names no regions: every governed region
        ({"version": "0", "detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}, None),
        ({}, None),
        ({"regions": ["eu-west-1"]}, ["eu-west-1"]),
        ({"regions": ["eu-west-1", "us-east-1", "eu-west-1"]}, ["eu-west-1", "us-east-1"]),
    ],
)
def test_an_invoke_may_narrow_the_report_to_governed_regions(
    report_handler: ModuleType, event: dict[str, object], regions: list[str] | None
) -> None:
    assert report_handler.requested_regions(event, GOVERNED) == regions


@pytest.mark.parametrize(
    ("event", "refused"),
    [
        ({"regions": ["ap-south-1", "eu-west-1"]}, "not governed by the policy: ap-south-1"),
        ({"regions": []}, "'regions' must be a non-empty list"),
        ({"regions": "eu-west-1"}, "'regions' must be a non-empty list"),
        ({"regions": ["eu-west-1", ""]}, "'regions' must be a non-empty list"),
    ],
)
def test_an_invoke_naming_other_regions_or_no_list_is_refused(
    report_handler: ModuleType, event: dict[str, object], refused: str
) -> None:
    with pytest.raises(ValueError, match=refused):
        report_handler.requested_regions(event, GOVERNED)


def test_metrics_with_dimensions_are_emitted_each_on_its_own_and_costs_carry_no_unit(
    report_handler: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    # When the report's dimensioned metrics are emitted
    report_handler.emit("FindingsCount", {"kind": "orphaned-snapshot"}, 3.0)
    report_handler.emit("FindingsMonthlyCost", {"region": "eu-west-1"}, 1.25)

    # Then each is one EMF line with its own dimension (and Powertools' service), a count or a plain number
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [
        (m["_aws"]["CloudWatchMetrics"][0]["Dimensions"], m["_aws"]["CloudWatchMetrics"][0]["Metrics"]) for m in lines
    ] == [
        ([["kind", "service"]], [{"Name": "FindingsCount", "Unit": "Count"}]),
        ([["region", "service"]], [{"Name": "FindingsMonthlyCost", "Unit": "None"}]),
    ]
    assert (lines[0]["kind"], lines[0]["FindingsCount"], lines[1]["FindingsMonthlyCost"]) == (
        "orphaned-snapshot", [3.0], [1.25]
    )  # fmt: skip
    assert {line["_aws"]["CloudWatchMetrics"][0]["Namespace"] for line in lines} == {"AmiGovernance"}
