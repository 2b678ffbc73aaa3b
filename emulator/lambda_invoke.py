"""Lambda's `Invoke` API for the functions the emulator deployed (moto's own Lambda would run them in Docker).

`POST /2015-03-31/functions/{FunctionName}/invocations`, as botocore's lambda model (2015-03-31, operation Invoke,
shapes InvocationRequest / InvocationResponse) and the Lambda API reference
(https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html) define it:

- FunctionName: a name, a full ARN (`arn:aws:lambda:us-east-1:123456789012:function:f`) or a partial ARN
  (`123456789012:function:f`), each optionally with `:qualifier`; or `Qualifier` in the query string. The
  emulator's functions have no versions or aliases: only `$LATEST` resolves.
- X-Amz-Invocation-Type: `RequestResponse` (the default; 200, the function's JSON result, X-Amz-Executed-Version),
  `Event` (202; queued on the router like a rule's Lambda target, with the function's retries and DLQ) or `DryRun`
  (204).
- A function error is still a 200: X-Amz-Function-Error `Unhandled` and the runtime's error object
  (`errorMessage`, `errorType`, `stackTrace`) as the payload.
- X-Amz-Log-Type `Tail` (synchronous only): X-Amz-Log-Result, the base64 of the last 4 KB of the invocation's log.
- A payload over the quota (6 MB synchronous, 1 MB Event) is RequestTooLargeException (413).
- Errors in Lambda's REST-JSON shape: the code in `X-Amzn-ErrorType`, the body `{"Type": "User", "Message": ...}`
  (ResourceNotFoundException, 404) or `{"Type": "User", "message": ...}` (InvalidRequestContentException, 400: the
  payload is not JSON), the member names of each shape in the model.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

from emulator.functions import FunctionRegistry, FunctionSpec, InvocationResult
from emulator.router import Router

INVOKE_PATH = re.compile(r"^/2015-03-31/functions/(?P<function>[^/]+)/invocations/?$")
# NamespacedFunctionName's pattern in the model: [arn:aws:lambda:][region:][account:][function:]name[:qualifier].
FUNCTION_NAME = re.compile(
    r"^(?:arn:aws[a-zA-Z-]*:lambda:)?"
    r"(?:(?P<region>(?:eusc-)?[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d):)?"
    r"(?:(?P<account>\d{12}):)?"
    r"(?:function:)?"
    r"(?P<name>[a-zA-Z0-9_.-]+)"
    r"(?::(?P<qualifier>\$LATEST(?:\.PUBLISHED)?|[a-zA-Z0-9_-]+))?$"
)
LOG_RESULT_BYTES = 4096  # "The last 4 KB of the execution log" (InvocationResponse.LogResult)
INVOCATION_TYPES = ("RequestResponse", "Event", "DryRun")
# "For synchronous invocations, the maximum payload size is 6 MB. For asynchronous invocations, ... 1 MB." (Invoke)
MAX_PAYLOAD_BYTES = {"RequestResponse": 6 * 1024 * 1024, "DryRun": 6 * 1024 * 1024, "Event": 1024 * 1024}


@dataclass
class Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def is_invoke(method: str, path: str) -> bool:
    return method == "POST" and INVOKE_PATH.match(path) is not None


def invoke(
    method: str,
    path: str,
    query: str,
    headers: Callable[[str], str | None],
    body: bytes,
    region: str,
    account: str,
    functions: FunctionRegistry,
    router: Router,
) -> Response:
    """Serve one Invoke call; `headers(name)` reads a request header (case-insensitive)."""
    match = INVOKE_PATH.match(path)
    if method != "POST" or match is None:
        raise ValueError(f"not an Invoke call: {method} {path}")
    request_id = str(uuid.uuid4())
    identifier = unquote(match.group("function"))
    qualifiers = parse_qs(query).get("Qualifier", [])
    spec, problem = _resolve(identifier, qualifiers[0] if qualifiers else None, region, account, functions)
    if spec is None:
        return _error(request_id, *problem)
    invocation_type = headers("X-Amz-Invocation-Type") or "RequestResponse"
    payload, refused = _payload(request_id, invocation_type, body)
    if refused is not None:
        return refused
    base = {"x-amzn-RequestId": request_id}
    if invocation_type == "DryRun":
        return Response(204, base)
    if invocation_type == "Event":
        router.invoke_async(spec, payload, request_id)
        return Response(202, base)
    tail = (headers("X-Amz-Log-Type") or "None") == "Tail"
    result = functions.invoke(spec, payload, request_id, tail_log=tail)
    router.record_invoke(request_id, spec, payload, result)
    response = Response(200, {**base, "Content-Type": "application/json", "X-Amz-Executed-Version": "$LATEST"})
    if tail:
        tail_bytes = result.log.encode("utf-8")[-LOG_RESULT_BYTES:]
        response.headers["X-Amz-Log-Result"] = base64.b64encode(tail_bytes).decode("ascii")
    if result.ok:
        response.body = json.dumps(result.result, default=str).encode()
    else:
        response.headers["X-Amz-Function-Error"] = "Unhandled"
        response.body = json.dumps(function_error(result)).encode()
    return response


def _payload(request_id: str, invocation_type: str, body: bytes) -> tuple[Any, Response | None]:
    """The request's payload, or the error Lambda answers for its invocation type, size or content."""
    if invocation_type not in INVOCATION_TYPES:
        return None, _error(
            request_id, 400, "InvalidParameterValueException", "Message",
            f"Unsupported invocation type {invocation_type!r}: expected one of {', '.join(INVOCATION_TYPES)}",
        )  # fmt: skip
    if len(body) > MAX_PAYLOAD_BYTES[invocation_type]:
        return None, _error(
            request_id, 413, "RequestTooLargeException", "message",
            f"Request must be smaller than {MAX_PAYLOAD_BYTES[invocation_type]} bytes for the {invocation_type} "
            "invocation type",
        )  # fmt: skip
    try:
        # No payload is an empty object to the function, as the CLI's invoke without --payload gives it.
        return (json.loads(body) if body.strip() else {}), None
    except (ValueError, RecursionError) as error:
        return None, _error(
            request_id, 400, "InvalidRequestContentException", "message",
            f"Could not parse request body into json: {error}",
        )  # fmt: skip


def function_error(result: InvocationResult) -> dict[str, Any]:
    """The Python runtime's error object, the payload of an invocation whose handler raised."""
    return {
        "errorMessage": result.error_message or "",
        "errorType": result.error_type or "",
        "stackTrace": result.stack_trace,
    }


def _resolve(
    identifier: str, qualifier: str | None, region: str, account: str, functions: FunctionRegistry
) -> tuple[FunctionSpec | None, tuple[int, str, str, str]]:
    """The deployed function `identifier` names in the caller's region, or the error Lambda answers."""
    parsed = FUNCTION_NAME.match(identifier)
    if parsed is None:
        return None, (
            400, "ValidationException", "message",
            f"1 validation error detected: Value '{identifier}' at 'functionName' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: " + FUNCTION_NAME.pattern,
        )  # fmt: skip
    name = parsed.group("name")
    named_qualifier = parsed.group("qualifier")
    if named_qualifier and qualifier and named_qualifier != qualifier:
        return None, (
            400, "InvalidParameterValueException", "Message",
            "The derived qualifier from the function name does not match the specified qualifier.",
        )  # fmt: skip
    qualifier = named_qualifier or qualifier
    function_region = parsed.group("region") or region
    function_account = parsed.group("account") or account
    arn = f"arn:aws:lambda:{function_region}:{function_account}:function:{name}"
    spec = functions.find(name)
    # A name is looked up in the region the call is signed for; an ARN of another region or account is not one
    # of this endpoint's functions. The emulator publishes no versions or aliases: $LATEST is the only qualifier.
    found = (
        spec is not None
        and spec.region == region == function_region
        and function_account == account
        and qualifier in (None, "$LATEST")
    )
    if not found or spec is None:
        shown = f"{arn}:{qualifier}" if qualifier else arn
        return None, (404, "ResourceNotFoundException", "Message", f"Function not found: {shown}")
    return spec, (0, "", "", "")


def service_error(message: str) -> Response:
    """ServiceException (500): "The Lambda service encountered an internal error" (its shape: Type, Message)."""
    return _error(str(uuid.uuid4()), 500, "ServiceException", "Message", message)


def _error(request_id: str, status: int, code: str, message_member: str, message: str) -> Response:
    body = json.dumps({"Type": "User", message_member: message}).encode()
    headers = {"x-amzn-RequestId": request_id, "X-Amzn-ErrorType": code, "Content-Type": "application/json"}
    return Response(status, headers, body)
