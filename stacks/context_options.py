"""Deployment options given as CDK context (`cdk.json` or `cdk synth -c key=value`), validated before any stack
is built, so that a bad value fails the synth with one line naming the key."""

from __future__ import annotations

from typing import Final

from constructs import Node

RECYCLE_BIN_RETENTION_DAYS_CONTEXT_KEY: Final = "recycle_bin_retention_days"
# What Recycle Bin accepts for a retention rule, in days.
RECYCLE_BIN_MIN_RETENTION_DAYS: Final = 1
RECYCLE_BIN_MAX_RETENTION_DAYS: Final = 365


class ContextError(ValueError):
    """A context value that is not what its key expects; the message names the key."""


def recycle_bin_retention_days(node: Node) -> int | None:
    """Days a snapshot deleted by cleanup stays restorable in the Recycle Bin; None (key absent) means no rule."""
    key = RECYCLE_BIN_RETENTION_DAYS_CONTEXT_KEY
    value = node.try_get_context(key)
    if value is None:
        return None
    # `-c key=value` on the command line always gives a string, cdk.json gives a JSON number.
    days: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        days = value
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        days = int(value)
    if days is None or not RECYCLE_BIN_MIN_RETENTION_DAYS <= days <= RECYCLE_BIN_MAX_RETENTION_DAYS:
        raise ContextError(
            f"context {key}: expected a whole number of days from {RECYCLE_BIN_MIN_RETENTION_DAYS} to "
            f"{RECYCLE_BIN_MAX_RETENTION_DAYS}, got {value!r}"
        )
    return days
