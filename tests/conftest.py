"""Shared test set-up: fake credentials so nothing can reach real AWS, and the sample events."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support import LOCAL_LAMBDA_ENVIRONMENT, load_event

__all__ = ["POLICY_FILE", "REPO_ROOT", "load_event"]

# --iam-usage: record the Lambdas' AWS calls and compare them with their roles (see tests/iam/usage.py).
pytest_plugins = ["tests.iam.usage"]

REPO_ROOT = Path(__file__).parent.parent
POLICY_FILE = REPO_ROOT / "governance-policy.yaml"

# The Lambda code builds its Powertools logger and metrics when first imported, reading the environment then; a test
# module that imports it at collection time (before any fixture runs) must find the Lambda environment already set,
# or every later test in that process publishes metrics without a namespace.
os.environ.update(LOCAL_LAMBDA_ENVIRONMENT)


@pytest.fixture(autouse=True)
def _aws_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in LOCAL_LAMBDA_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
