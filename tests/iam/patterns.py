"""Matching of the two kinds of patterns the authorization check compares: ARNs and condition key names.

A policy's resource (`arn:aws:ec2:eu-west-1::image/*`, `*` any run of characters, `?` one) is matched against the
ARN format of a resource type in AWS's service authorization reference (`arn:${Partition}:ec2:${Region}::image/
${ImageId}`, each `${...}` one or more characters). Both are patterns, so the question is whether some ARN matches
both: the intersection of two glob languages, decided by a walk over pairs of positions.
A condition key (`aws:ResourceTag/ami-governance:protected`) is matched against the reference's key templates
(`aws:ResourceTag/${TagKey}`); condition key names are case-insensitive.
"""

from __future__ import annotations

import re
from functools import cache

# Tokens of a pattern: a literal character, or one of these.
_ANY_RUN = "\x00*"  # any run of characters, possibly empty
_ONE = "\x00?"  # exactly one character
_TEMPLATE_VARIABLE = re.compile(r"\$\{[^}]*\}")


def _policy_tokens(pattern: str) -> tuple[str, ...]:
    # IAM spells a literal '*', '?' and '$' in a resource as ${*}, ${?} and ${$}.
    tokens: list[str] = []
    index = 0
    while index < len(pattern):
        for literal in ("${*}", "${?}", "${$}"):
            if pattern.startswith(literal, index):
                tokens.append(literal[2])
                index += len(literal)
                break
        else:
            character = pattern[index]
            tokens.append(_ANY_RUN if character == "*" else _ONE if character == "?" else character)
            index += 1
    return tuple(tokens)


def _reference_tokens(pattern: str) -> tuple[str, ...]:
    tokens: list[str] = []
    for index, literal in enumerate(_TEMPLATE_VARIABLE.split(pattern)):
        if index:
            tokens += [_ONE, _ANY_RUN]  # a ${Variable}: one or more characters
        tokens += list(literal)
    return tuple(tokens)


def _intersect(left: tuple[str, ...], right: tuple[str, ...]) -> bool:
    """Whether one string matches both token patterns."""

    @cache
    def reachable(i: int, j: int) -> bool:
        if i == len(left) and j == len(right):
            return True
        left_run = i < len(left) and left[i] == _ANY_RUN
        right_run = j < len(right) and right[j] == _ANY_RUN
        # A run is empty, or it takes the other side's next token (a character, or part of the other's run).
        if left_run and (reachable(i + 1, j) or (j < len(right) and not right_run and reachable(i, j + 1))):
            return True
        if right_run and (reachable(i, j + 1) or (i < len(left) and not left_run and reachable(i + 1, j))):
            return True
        if left_run or right_run or i == len(left) or j == len(right):
            return False
        return (_ONE in (left[i], right[j]) or left[i] == right[j]) and reachable(i + 1, j + 1)

    return reachable(0, 0)


def resource_matches_arn_format(resource: str, arn_format: str) -> bool:
    """Whether the policy resource `resource` covers some ARN of the reference's `arn_format`.

    The fields before the resource part (arn, partition, service, region, account) are compared one by one, so
    that neither a `*` nor a `${Variable}` runs across the colons between them; the resource part may contain
    colons of its own. A resource of fewer fields (`arn:aws:sns:*`) has its last field compared with the rest of
    the format: there a policy's `*` does run across colons, as in IAM.
    """
    resource_fields = resource.split(":", 5)
    format_fields = arn_format.split(":", 5)
    if len(resource_fields) > len(format_fields):
        return _intersect(_policy_tokens(resource), _reference_tokens(arn_format))
    last = len(resource_fields) - 1
    pairs = [*zip(resource_fields[:last], format_fields[:last], strict=True)]
    pairs.append((resource_fields[last], ":".join(format_fields[last:])))
    return all(_intersect(_policy_tokens(mine), _reference_tokens(theirs)) for mine, theirs in pairs)


def condition_key_matches(template: str, key: str) -> bool:
    """Whether the condition key `key` is an instance of the reference's `template` (`${TagKey}` stands for any
    non-empty tag key, which may itself contain ':' or '/')."""
    parts = _TEMPLATE_VARIABLE.split(template)
    regex = ".+".join(re.escape(part) for part in parts)
    return re.fullmatch(regex, key, flags=re.IGNORECASE) is not None


def action_matches(pattern: str, action: str) -> bool:
    """Whether the action name `action` (without its service prefix) matches `pattern` (IAM action names are
    case-insensitive; `*` any run, `?` one character)."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, action, flags=re.IGNORECASE) is not None


def granted_action_matches(pattern: str, action: str) -> bool:
    """Whether the action `pattern` of a policy statement (`service:Name`, wildcards allowed, or `*` alone) grants
    the qualified action `action`; service prefixes and names are case-insensitive in IAM."""
    if pattern == "*":
        return True
    service, _, name = pattern.partition(":")
    their_service, _, their_name = action.partition(":")
    return service.lower() == their_service.lower() and action_matches(name, their_name)
