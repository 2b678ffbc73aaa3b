"""Classify AWS errors: what is an outcome (the AMI is gone) and what must be retried."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

# The image no longer exists (deregistered) or never did in this region.
IMAGE_GONE_CODES = frozenset({"InvalidAMIID.NotFound", "InvalidAMIID.Unavailable"})


def error_code(error: ClientError | BotoCoreError) -> str:
    """The code AWS answered with; for a call AWS never answered (a timeout, no connection), botocore's exception
    class: EndpointConnectionError, ReadTimeoutError, ..."""
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "Unknown"))
    return type(error).__name__
