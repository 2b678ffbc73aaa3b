"""Deployment options given as CDK context (`cdk.json` or `cdk synth -c key=value`), validated before any stack
is built, so that a bad value fails the synth with one line naming the key."""

from __future__ import annotations

from typing import Final

from constructs import Node

RECYCLE_BIN_RETENTION_DAYS_CONTEXT_KEY: Final = "recycle_bin_retention_days"
POWERTOOLS_LAYER_VERSION_CONTEXT_KEY: Final = "powertools_layer_version"
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
    days = _whole_number(value)
    if days is None or not RECYCLE_BIN_MIN_RETENTION_DAYS <= days <= RECYCLE_BIN_MAX_RETENTION_DAYS:
        raise ContextError(
            f"context {key}: expected a whole number of days from {RECYCLE_BIN_MIN_RETENTION_DAYS} to "
            f"{RECYCLE_BIN_MAX_RETENTION_DAYS}, got {value!r}"
        )
    return days


def powertools_layer_version(node: Node) -> int | None:
    """The version of the public Powertools layer to use; None (key absent) means the construct's default."""
    key = POWERTOOLS_LAYER_VERSION_CONTEXT_KEY
    value = node.try_get_context(key)
    if value is None:
        return None
    version = _whole_number(value)
    if version is None or version < 1:
        raise ContextError(f"context {key}: expected a layer version number (1 or more), got {value!r}")
    return version


def _whole_number(value: object) -> int | None:
    # `-c key=value` on the command line always gives a string, cdk.json gives a JSON number.
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value)
    return None
