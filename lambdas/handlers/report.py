"""Report Lambda: the schedule (or an on-demand invoke, optionally `{"regions": [...]}`) -> every governed region
scanned, findings (and the sweep, if the policy turns it on) -> JSON, CSV and HTML in the reports bucket, a summary
on the topic, metrics (EMF)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_lambda_powertools import single_metric
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from ami_governance.observability import count, logger, metrics, reports_runtime, traced
from ami_governance.settings import ReportSettings

# Read and checked at the cold start: a missing or malformed variable fails the init, naming it.
ReportSettings.load()


@logger.inject_lambda_context
@reports_runtime
@metrics.log_metrics
@traced
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Imported on first call: pydantic, the domain models and Jinja2 are most of the cold-start import time.
    from ami_governance.outputs.summary import report_metrics, summary_notice
    from ami_governance.services.wiring import report_notifier, report_service, report_store

    service = report_service(context.invoked_function_arn, count)
    report = service.run(requested_regions(event, service.policy.governed_regions))
    # A region that could not be scanned is in the report as incomplete, with its errors: the run did its job.
    # Publishing is the job: a failed upload raises, and so does a failed notice (the reports are then in S3).
    keys = report_store().publish(report)
    report_notifier().publish(summary_notice(report, keys))
    for name, dimensions, value in report_metrics(report):
        emit(name, dimensions, value)
    result = {
        "run_id": report.run_id,
        "keys": keys,
        "complete": report.complete,
        "findings": len(report.findings),
        "monthly_cost": report.monthly_cost,
    }
    logger.info("Report published", extra=result)
    return result


def requested_regions(event: Any, governed: Sequence[str]) -> list[str] | None:
    """The regions an on-demand invoke names (`{"regions": [...]}`), or None (every governed region) for the
    schedule's event or an invoke without them. A region outside the policy is refused: the role may not read it."""
    regions = event.get("regions") if isinstance(event, dict) else None
    if regions is None:
        return None
    if not isinstance(regions, list) or not regions or not all(isinstance(r, str) and r for r in regions):
        raise ValueError(f"'regions' must be a non-empty list of region names, not {regions!r}")
    ungoverned = sorted(set(regions) - set(governed))
    if ungoverned:
        raise ValueError(f"not governed by the policy: {', '.join(ungoverned)} (governed: {', '.join(governed)})")
    return list(dict.fromkeys(regions))


def emit(name: str, dimensions: dict[str, str], value: float) -> None:
    """One EMF metric: costs in USD (no CloudWatch unit for money), everything else a count."""
    unit = MetricUnit.NoUnit if name.endswith("Cost") else MetricUnit.Count
    if not dimensions:
        metrics.add_metric(name=name, unit=unit, value=value)
        return
    # Dimensions of its own: EMF shares one dimension set per line.
    with single_metric(name=name, unit=unit, value=value) as metric:
        for key, dimension in dimensions.items():
            metric.add_dimension(name=key, value=dimension)
