"""Enforce Lambda: new AMIs, AMI tag changes and AMI state changes -> verdict, tags, notice."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer, single_metric
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
tracer = Tracer()
metrics = Metrics()


def count(name: str, value: int = 1, **dimensions: str) -> None:
    if not dimensions:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
        return
    with single_metric(name=name, unit=MetricUnit.Count, value=value) as metric:
        for key, dimension in dimensions.items():
            metric.add_dimension(name=key, value=dimension)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Imported here, not at module level: pydantic and the models are the bulk of cold-start import time.
    from ami_governance.services.wiring import enforcement_service

    account_id = context.invoked_function_arn.split(":")[4]
    return enforcement_service(account_id, count).handle(event).as_dict()
