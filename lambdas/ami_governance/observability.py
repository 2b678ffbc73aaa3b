"""Powertools logger and metrics shared by the handlers, and tracing that loads on first use.

The X-Ray SDK builds botocore clients when it is imported (about 150 ms on the benchmark machine),
so the Tracer is created at the first invocation instead of at import; the cost moves, it does not
disappear, and the README reports both figures.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics, single_metric
from aws_lambda_powertools.metrics import MetricUnit

from ami_governance.runtime import missing_model_members, runtime_versions

logger = Logger()
# The EventBridge envelope's id as every log line's correlation id, but only if it is one: a string no longer than
# EventBridge's by a wide margin. Powertools' EVENT_BRIDGE path copies whatever `id` holds into every line, and a
# hostile event's id may be 100,000 characters or nested thousands deep (its JSON then fails in the logger itself).
EVENT_ID_CORRELATION_PATH = "(type(id) == 'string' && length(id) <= `256` && id) || `null`"
metrics = Metrics()

Handler = TypeVar("Handler", bound=Callable[..., Any])


def count(name: str, value: int = 1, **dimensions: str) -> None:
    """Add a Count metric; with dimensions it is emitted on its own (EMF shares dimensions per line)."""
    if not dimensions:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
        return
    with single_metric(name=name, unit=MetricUnit.Count, value=value) as metric:
        for key, dimension in dimensions.items():
            metric.add_dimension(name=key, value=dimension)


def traced(handler: Handler) -> Handler:
    """Powertools Tracer's capture_lambda_handler, with the Tracer built on the first call."""
    wrapped: Callable[..., Any] | None = None

    @functools.wraps(handler)
    def run(event: Any, context: Any) -> Any:
        nonlocal wrapped
        if wrapped is None:
            from aws_lambda_powertools import Tracer

            wrapped = Tracer().capture_lambda_handler(handler)
        return wrapped(event, context)

    return run  # type: ignore[return-value]


def reports_runtime(handler: Handler) -> Handler:
    """Logs one `runtime versions` line on the container's first invocation: the boto3, botocore, Powertools and
    pydantic the function really runs with. After the handler, so pydantic (which the first invocation imports)
    is read from its module rather than from its distribution's files; also when the handler raises."""
    reported = False

    @functools.wraps(handler)
    def run(event: Any, context: Any) -> Any:
        nonlocal reported
        if reported:
            return handler(event, context)
        reported = True
        try:
            return handler(event, context)
        finally:
            logger.info("runtime versions", extra=runtime_versions())

    return run  # type: ignore[return-value]


def warn_if_model_lacks(service_model: Any) -> list[str]:
    """A warning and a `BotocoreModelGaps` metric when the runtime's EC2 model lacks what the code reads from it.
    Not an error: enforcement and cleanup work without those members, replica lineage does not."""
    missing = missing_model_members(service_model)
    if missing:
        logger.warning(
            "the runtime's botocore is older than the code needs",
            extra={"botocore": runtime_versions()["botocore"], "missing": missing},
        )
        # With a dimension, so it is emitted at once, inside an invocation or not.
        count("BotocoreModelGaps", len(missing), service=service_model.service_name)
    return missing
