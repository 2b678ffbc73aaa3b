"""Cleanup Lambda: a deregistered AMI -> its leftover snapshots checked, deleted (or reported), recorded."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from ami_governance.observability import count, logger, metrics, reports_runtime, traced


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
@reports_runtime
@metrics.log_metrics
@traced
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Imported on first call: pydantic and the domain models are most of the cold-start import time.
    from ami_governance.services.wiring import cleanup_service

    account_id = context.invoked_function_arn.split(":")[4]
    return cleanup_service(account_id, count).handle(event).as_dict()
