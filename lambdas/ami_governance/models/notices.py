"""An SNS notice as the services publish it: built by rules/notices.py, sent by adapters/notifications.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Notice:
    subject: str
    body: dict[str, Any]  # the JSON message: free-form per notice kind, read by people and by subscribers' code
