"""Copy Lambda: copy jobs from the copy queue -> CopyImage in the target region, exactly once per region and
round; jobs EC2 says must wait are delayed on the queue and reported back (ReportBatchItemFailures)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ami_governance.observability import count, logger, metrics, reports_runtime, traced
from ami_governance.settings import CopySettings

# Read and checked at the cold start: a missing or malformed variable fails the init, naming it.
CopySettings.load()


@logger.inject_lambda_context
@reports_runtime
@metrics.log_metrics
@traced
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Imported on first call: pydantic and the domain models are most of the cold-start import time.
    from ami_governance.services.wiring import copy_service

    result = copy_service(context.invoked_function_arn, count).handle_batch(event)
    logger.info("Copy batch done", extra={"outcomes": result["outcomes"]})
    # Lambda reads only the failed message ids from the response.
    return {"batchItemFailures": result["batchItemFailures"]}
