"""The policy from its SSM parameter, through Powertools' parameters cache.

A warm invocation within `max_age` makes no SSM call, and the validated model is cached by the
raw text so it is not re-validated either.
"""

from __future__ import annotations

import json
from functools import lru_cache

from aws_lambda_powertools.utilities import parameters

from ami_governance.models.policy import GovernancePolicy, PolicyError, parse_policy

POLICY_CACHE_SECONDS = 300


def load_policy(parameter_name: str) -> GovernancePolicy:
    raw = parameters.get_parameter(parameter_name, max_age=POLICY_CACHE_SECONDS)
    return _parse(str(raw), parameter_name)


@lru_cache(maxsize=4)
def _parse(raw: str, source: str) -> GovernancePolicy:
    try:
        document = json.loads(raw)
    except json.JSONDecodeError as error:
        raise PolicyError(f"{source}: the policy parameter is not JSON: {error}") from None
    return parse_policy(document, source=source)
