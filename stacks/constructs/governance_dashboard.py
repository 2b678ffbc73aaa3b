"""One CloudWatch dashboard for the whole product: what the event path judged and did, what the report found and
what it costs, and what is failing (dead letters, Lambda errors)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.constructs.governed_function import METRICS_NAMESPACE, SERVICE_NAME

# Powertools adds the `service` dimension to every metric the functions emit (POWERTOOLS_SERVICE_NAME).
SERVICE_DIMENSION = {"service": SERVICE_NAME}
EVENTS_PERIOD = Duration.hours(1)
# The report runs once a day (the policy's default schedule): a day per point shows each run once.
REPORT_PERIOD = Duration.days(1)
WIDGET_WIDTH = 12  # two widgets per row of the dashboard's 24 columns
WIDGET_HEIGHT = 6

# The metrics the functions emit (services/*.py, rules/cleanup.py OUTCOME_METRICS, outputs/summary.py), by widget.
# Plain names are emitted with the `service` dimension only; the others with dimensions of their own (a kind, an
# action, a state, a region), found by a SEARCH expression whatever those dimensions are.
EVENT_METRICS: Mapping[str, Sequence[str]] = {
    "Events judged": ("ImagesEvaluated", "NonCompliantImages", "ImagesGone", "MalformedEvents", "UnsupportedEvents"),
    "Snapshot clean-ups": ("SnapshotsDeleted", "SnapshotsWouldDelete", "SnapshotsKept", "SnapshotsFailed"),
    "Copies": ("CopiesQueued", "CopiesStarted", "ReplicasAdopted", "ApprovalsWithdrawn"),
}
SEARCHED_EVENT_METRICS: Mapping[str, Sequence[str]] = {
    "Violations (by kind) and remediations (by action)": ("Violations", "RemediationActions"),
    "Replicas settled (by state), copies failed (by error)": ("ReplicasSettled", "CopiesFailed"),
}
REPORT_METRICS: Mapping[str, Sequence[str]] = {
    "Report findings (by kind and region)": ("FindingsCount",),
    "Report findings: monthly cost, USD (by kind and region)": ("FindingsMonthlyCost",),
    "Report: incomplete regions, sweep actions (by status)": ("RegionsIncomplete", "SweepActions"),
}


def search(metric_name: str, statistic: str, period: Duration) -> cloudwatch.MathExpression:
    """Every series of `metric_name` in the product's namespace, one per set of dimension values."""
    query = f'Namespace="{METRICS_NAMESPACE}" MetricName="{metric_name}"'
    return cloudwatch.MathExpression(
        expression=f"SEARCH('{query}', '{statistic}', {int(period.to_seconds())})",
        using_metrics={},
        label=metric_name,
        period=period,
    )


class GovernanceDashboard(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: Mapping[str, lambda_.IFunction],
        dead_letter_queues: Mapping[str, sqs.IQueue],
    ) -> None:
        super().__init__(scope, construct_id)
        widgets: list[cloudwatch.IWidget] = [
            self._graph(title, [self._metric(name) for name in names]) for title, names in EVENT_METRICS.items()
        ]
        widgets += [
            self._graph(title, [search(name, "Sum", EVENTS_PERIOD) for name in names])
            for title, names in SEARCHED_EVENT_METRICS.items()
        ]
        # The report's figures are levels (what exists now), not events: the latest run's value, not a sum.
        widgets += [
            self._graph(title, [search(name, "Maximum", REPORT_PERIOD) for name in names])
            for title, names in REPORT_METRICS.items()
        ]
        widgets.append(
            self._graph(
                "Dead-letter queues: messages waiting",
                [
                    queue.metric_approximate_number_of_messages_visible(
                        label=label, period=Duration.minutes(5), statistic=cloudwatch.Stats.MAXIMUM
                    )
                    for label, queue in dead_letter_queues.items()
                ],
            )
        )
        widgets.append(
            self._graph(
                "Lambda errors",
                [
                    function.metric_errors(label=name, period=Duration.minutes(5), statistic=cloudwatch.Stats.SUM)
                    for name, function in functions.items()
                ],
            )
        )
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            # Dashboard names are unique per account, across regions: the home region names this one.
            dashboard_name=f"AmiGovernance-{Stack.of(self).region}",
            default_interval=Duration.days(7),
        )
        for row in range(0, len(widgets), 2):
            self.dashboard.add_widgets(*widgets[row : row + 2])

    @staticmethod
    def _metric(name: str) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name=name,
            dimensions_map=SERVICE_DIMENSION,
            statistic=cloudwatch.Stats.SUM,
            period=EVENTS_PERIOD,
            label=name,
        )

    @staticmethod
    def _graph(title: str, metrics: Sequence[cloudwatch.IMetric]) -> cloudwatch.GraphWidget:
        return cloudwatch.GraphWidget(
            title=title,
            left=list(metrics),
            width=WIDGET_WIDTH,
            height=WIDGET_HEIGHT,
            left_y_axis=cloudwatch.YAxisProps(min=0),
        )
