"""Shared test set-up: fake credentials so nothing can reach real AWS, and the sample events."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

EVENTS_DIR = Path(__file__).parent / "events"
REPO_ROOT = Path(__file__).parent.parent
POLICY_FILE = REPO_ROOT / "governance-policy.yaml"


@pytest.fixture(autouse=True)
def _aws_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_SERVICE_NAME": "ami-governance",
        "POWERTOOLS_METRICS_NAMESPACE": "AmiGovernance",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def load_event(name: str) -> dict[str, Any]:
    """A fresh copy of a real-shaped sample event from tests/events/."""
    return copy.deepcopy(json.loads((EVENTS_DIR / f"{name}.json").read_text()))
