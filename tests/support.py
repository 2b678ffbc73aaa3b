"""Test and benchmark helpers that are not fixtures."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import botocore.client


class ApiCallRecorder:
    """Records every AWS API call made through botocore, as (service, operation) pairs, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def by_operation(self) -> Counter[str]:
        return Counter(f"{service}:{operation}" for service, operation in self.calls)

    def operations(self, service: str | None = None) -> list[str]:
        return [op for svc, op in self.calls if service is None or svc == service]


@contextmanager
def recording_api_calls() -> Iterator[ApiCallRecorder]:
    recorder = ApiCallRecorder()
    original = botocore.client.BaseClient._make_api_call

    def recorded(self: Any, operation_name: str, api_params: Any) -> Any:
        recorder.calls.append((self.meta.service_model.service_name, operation_name))
        return original(self, operation_name, api_params)

    botocore.client.BaseClient._make_api_call = recorded  # type: ignore[method-assign]
    try:
        yield recorder
    finally:
        botocore.client.BaseClient._make_api_call = original  # type: ignore[method-assign]
