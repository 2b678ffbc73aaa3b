"""Replicate Lambda: an approval (CreateTags of the approval tag) -> copy jobs queued; AMI state changes ->
replica lineage settled, shared, announced; a pending approved AMI becoming available -> its copies queued."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ami_governance.adapters.idempotency import once_per_event
from ami_governance.observability import EVENT_ID_CORRELATION_PATH, logger, metrics, reports_runtime, traced
from ami_governance.settings import ReplicateSettings

# Read and checked at the cold start: a missing or malformed variable fails the init, naming it.
ReplicateSettings.load()


@logger.inject_lambda_context(correlation_id_path=EVENT_ID_CORRELATION_PATH)
@reports_runtime
@metrics.log_metrics
@traced
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Imported on first call: pydantic and the domain models are most of the cold-start import time.
    from ami_governance.services.wiring import replicate_event

    # Once per EventBridge event: a redelivery is answered from its first handling's record.
    return once_per_event(ReplicateSettings, replicate_event, event, context)  # type: ignore[no-any-return]
