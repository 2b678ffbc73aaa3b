"""Paging for EC2 describe calls, as EC2 does it: a page of at most `MaxResults` items and an opaque `NextToken`
that continues after the last item returned, absent on the last page.

The token records where the page ended (the last item's key), not an offset, so an item created or deleted
between two pages does not make the next page skip or repeat another one (AWS's listings are eventually
consistent, not broken by concurrent changes). Paged results come in key order; EC2 documents no order ("Applications
should not assume the elements appear in a particular order", DescribeImages).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Literal, TypeVar

from moto.ec2.exceptions import EC2ClientError, InvalidParameterCombination

T = TypeVar("T")
Key = tuple[str | int, ...]


class InvalidPaginationToken(EC2ClientError):
    def __init__(self) -> None:
        # EC2's common client error for a token it did not issue (or that expired).
        super().__init__("InvalidPaginationToken", "The specified pagination token is not valid or is expired.")


def page_size(
    requested: int | None,
    minimum: int,
    maximum: int,
    *,
    above_maximum: Literal["error", "cap"] = "error",
    paging: bool = False,
) -> int | None:
    """The page size for `MaxResults` (None: no paging asked). Below `minimum` EC2 refuses the call with this
    message (github.com/aws/aws-sdk-ruby/pull/2575: "Value ( 1 ) for parameter maxResults is invalid. Expecting a
    value greater than 5."); above `maximum` it refuses it, or (`above_maximum="cap"`) returns `maximum` items.
    `paging`: a NextToken without MaxResults continues with pages of `maximum`."""
    if requested is None:
        return maximum if paging else None
    if requested < minimum:
        raise EC2ClientError(
            "InvalidParameterValue",
            f"Value ( {requested} ) for parameter maxResults is invalid. Expecting a value greater than {minimum}.",
        )
    if requested > maximum:
        if above_maximum == "cap":
            return maximum
        raise EC2ClientError(
            "InvalidParameterValue",
            f"Value ( {requested} ) for parameter maxResults is invalid. Expecting a value less than or equal to "
            f"{maximum}.",
        )
    return requested


def refuse_with_ids(ids: Sequence[str], max_results: int | None, id_set: str) -> None:
    """EC2's answer when MaxResults comes with explicit ids where the API forbids it (e.g. "The parameter
    instancesSet cannot be used with the parameter maxResults", github.com/getmoto/moto/issues/6282)."""
    if ids and max_results is not None:
        raise InvalidParameterCombination(f"The parameter {id_set} cannot be used with the parameter maxResults")


def page(items: Sequence[T], key: Callable[[T], Key], size: int, token: str | None) -> tuple[list[T], str | None]:
    """One page of `items` in key order, starting after the token's position, and the token of the next page."""
    counts: Counter[Key] = Counter()
    keyed: list[tuple[list[str | int], T]] = []
    for item in items:
        item_key = key(item)
        # The same item may be listed twice (a launch template version that is both $Latest and $Default).
        keyed.append(([*item_key, counts[item_key]], item))
        counts[item_key] += 1
    keyed.sort(key=lambda pair: pair[0])
    start = 0
    if token:
        after = _decode(token)
        try:
            start = next((i for i, (k, _) in enumerate(keyed) if k > after), len(keyed))
        except TypeError as error:  # a token of another listing: its key does not compare with these
            raise InvalidPaginationToken() from error
    chosen = keyed[start : start + size]
    more = start + size < len(keyed)
    return [item for _, item in chosen], _encode(chosen[-1][0]) if more and chosen else None


def _encode(key: list[str | int]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode()


def _decode(token: str) -> list[str | int]:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, binascii.Error) as error:
        raise InvalidPaginationToken() from error
    if not isinstance(decoded, list) or not all(isinstance(part, str | int) for part in decoded):
        raise InvalidPaginationToken()
    return decoded
