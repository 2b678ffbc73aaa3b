"""Classify AWS errors: what is an outcome (the AMI is gone) and what must be retried."""

from __future__ import annotations

from botocore.exceptions import ClientError

# The image no longer exists (deregistered) or never did in this region.
IMAGE_GONE_CODES = frozenset({"InvalidAMIID.NotFound", "InvalidAMIID.Unavailable"})


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "Unknown"))
