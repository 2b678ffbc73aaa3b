"""What the additions share: EC2's paging contract, its error codes, and a clock tests can read."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TypeVar

from moto.ec2.exceptions import EC2ClientError

T = TypeVar("T")


def now() -> datetime:
    return datetime.now(UTC)


def iso_seconds(moment: datetime) -> str:
    """EC2's `YYYY-MM-DDTHH:MM:SSZ` (the format the model documents for DeprecationTime and shows for
    LastLaunchedTime)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def invalid_parameter(message: str) -> EC2ClientError:
    return EC2ClientError("InvalidParameterValue", message)


def check_max_results(value: int | None, minimum: int, maximum: int | None, name: str = "MaxResults") -> None:
    """The model's range for a page size; botocore checks only the minimum on the client side."""
    if value is None:
        return
    if value < minimum or (maximum is not None and value > maximum):
        upper = f" and less than or equal to {maximum}" if maximum is not None else ""
        raise invalid_parameter(
            f"Value ( {value} ) for parameter {name} is invalid. Expecting a value greater than or equal to "
            f"{minimum}{upper}."
        )


def page(items: Sequence[T], max_results: int | None, next_token: str | None) -> tuple[list[T], str | None]:
    """One page of `items` and the token of the next ("null when there are no more items to return", the
    models' NextToken doc). The token is opaque to clients, as EC2's are; a token the emulator did not issue is
    EC2's `InvalidPaginationToken`."""
    start = 0
    if next_token:
        try:
            start = int(base64.urlsafe_b64decode(next_token.encode()).decode())
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise EC2ClientError("InvalidPaginationToken", f"Invalid pagination token: {next_token}") from None
    end = len(items) if max_results is None else start + max_results
    token = base64.urlsafe_b64encode(str(end).encode()).decode() if end < len(items) else None
    return list(items[start:end]), token
