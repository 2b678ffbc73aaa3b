"""SSM DescribeParameters honouring `MaxResults`: moto 5.2.5 answers 10 parameters a page whatever is asked.

botocore's model: `MaxResults` "The maximum number of items to return for this call. The call also returns a token
that you can specify in a subsequent call to get the next set of results." (1-50). Without it the emulator keeps
moto's 10 a page; AWS documents no default.
"""

from __future__ import annotations

from typing import Any

from moto.core.responses import ActionResult
from moto.ssm.exceptions import ValidationException
from moto.ssm.responses import SimpleSystemManagerResponse

DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 50


def apply() -> None:
    SimpleSystemManagerResponse.describe_parameters = _describe_parameters  # type: ignore[method-assign]


def _describe_parameters(self: SimpleSystemManagerResponse) -> ActionResult:
    page_size = self._get_param("MaxResults") or DEFAULT_PAGE_SIZE
    if not 1 <= int(page_size) <= MAX_PAGE_SIZE:
        raise ValidationException(
            f"1 validation error detected: Value '{page_size}' at 'maxResults' failed to satisfy constraint: "
            f"Member must have value less than or equal to {MAX_PAGE_SIZE}"
        )
    # moto's own token: the offset of the next parameter.
    start = int(str(self._get_param("NextToken") or "0").strip() or "0")
    found = self.ssm_backend.describe_parameters(self._get_param("Filters"), self._get_param("ParameterFilters"))
    items = found[start : start + int(page_size)]
    response: dict[str, Any] = {"Parameters": [p.describe_response_object(False) for p in items]}
    if start + int(page_size) < len(found):
        response["NextToken"] = str(start + int(page_size))
    return ActionResult(response)
