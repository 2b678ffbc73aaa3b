"""The runtime inside an emulated Lambda's worker process (run as a script, never imported).

Like the Lambda Python runtime: the code directory is the import root (and the working directory), the handler
is imported once at start ("init"), and each request on stdin is one invocation. Replies go to the file
descriptor given as the first argument, so whatever the handler prints (logs, EMF metrics) cannot corrupt them.
"""

import importlib
import json
import os
import sys
import time
import traceback
import uuid
from typing import Any

reply_fd, code_dir, handler_path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
sys.path[0] = code_dir  # the script's own directory is not the function's: only the asset is importable
os.chdir(code_dir)
replies = os.fdopen(reply_fd, "w", buffering=1)


class LambdaContext:
    def __init__(self, request_id: str, deadline: float) -> None:
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = "$LATEST"
        self.invoked_function_arn = os.environ["EMULATOR_FUNCTION_ARN"]
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.aws_request_id = request_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = "emulator"
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


def error(error_type: str, message: str, trace: list[str] | None = None) -> dict[str, Any]:
    return {"ok": False, "errorType": error_type, "errorMessage": message, "stackTrace": trace or []}


def record_api_calls(directory: str) -> None:
    """One JSON line per AWS API call this function makes, in `directory` (emulator/api_call_recording.py).

    A botocore handler registered for every session the function creates from now on, so the calls of the
    function's own clients and of Powertools' (the policy parameter) are all seen; `before-parameter-build` comes
    before any `before-call` hook, so a call a test makes fail is recorded too. Only the names of the request's
    parameters are kept: whether a call names a KMS key, say, changes what IAM must allow.
    """
    # Imported here, only when recording: otherwise the worker loads botocore when the function's code does, and
    # the init the emulator reports is the function's own.
    import botocore.handlers

    function = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
    sink = open(  # noqa: SIM115 - open for the life of the worker, line-buffered so each call is on disk at once
        os.path.join(directory, f"calls-{function}-{os.getpid()}.jsonl"), "a", buffering=1, encoding="utf-8"
    )

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        line = {
            "function": function,
            "service": model.service_model.signing_name,
            "operation": model.name,
            "params": sorted(params),
            "time": time.time(),
        }
        sink.write(json.dumps(line) + "\n")

    botocore.handlers.BUILTIN_HANDLERS.append(("before-parameter-build", record))


def inject_faults(spec_text: str) -> Any:
    """The emulator's `--inject-faults`: a share of the calls the function makes during an invocation fail
    (emulator/fault_injection.py, loaded from its file: the worker imports nothing of the emulator's package).
    Calls made while the handler module loads are never faulted: a failed init is not retried here as Lambda
    would retry it with a new init, it would fail the worker for good."""
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fault_injection.py")
    spec = importlib.util.spec_from_file_location("ami_governance_fault_injection", path)
    assert spec is not None
    assert spec.loader is not None
    faults = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = faults  # dataclasses look their module up
    spec.loader.exec_module(faults)
    given = faults.FaultSpec.parse(spec_text)
    # A seed of its own per function, so that two functions do not fail the same calls in step.
    seed = hash_seed(given.seed, os.environ["AWS_LAMBDA_FUNCTION_NAME"])
    injector = faults.FaultInjector(faults.FaultSpec(given.rate, seed, given.kinds), applies=lambda: invoking)
    import botocore.handlers

    botocore.handlers.BUILTIN_HANDLERS.extend(injector.handler_specs())
    return injector


def hash_seed(seed: int, function: str) -> int:
    import hashlib

    return int.from_bytes(hashlib.sha256(f"{seed}|{function}".encode()).digest()[:4], "big")


if os.environ.get("AMI_GOVERNANCE_RECORD_API_CALLS"):
    record_api_calls(os.environ["AMI_GOVERNANCE_RECORD_API_CALLS"])

invoking = False
fault_injector: Any = None
if os.environ.get("AMI_GOVERNANCE_INJECT_FAULTS"):
    fault_injector = inject_faults(os.environ["AMI_GOVERNANCE_INJECT_FAULTS"])

init_error: dict[str, Any] | None = None
handler: Any = None
module_name, _, function_name = handler_path.rpartition(".")
try:
    module = importlib.import_module(module_name)
except ImportError as exc:
    init_error = error("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}")
except SyntaxError as exc:
    init_error = error("Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {exc}")
except Exception as exc:
    # Module code that raised (a settings check, say): like the runtime, the exception itself is the init error.
    init_error = error(type(exc).__name__, str(exc), traceback.format_exception(exc))
else:
    handler = getattr(module, function_name, None)
    if handler is None:
        init_error = error("Runtime.HandlerNotFound", f"Handler '{function_name}' missing on module '{module_name}'")
if init_error is not None:
    # Logged once, at init, as the runtime logs it for a function with JSON logs: no request id, no invocation yet.
    print(json.dumps({"level": "ERROR", **{k: v for k, v in init_error.items() if k != "ok"}, "requestId": ""}))

for line in sys.stdin:
    request = json.loads(line)
    if init_error is not None:
        replies.write(json.dumps(init_error) + "\n")
        continue
    context = LambdaContext(request.get("request_id") or str(uuid.uuid4()), time.time() + request["timeout"])
    invoking = True
    try:
        result = handler(request["event"], context)
        reply = {"ok": True, "result": result}
    except Exception as exc:
        reply = error(type(exc).__name__, str(exc), traceback.format_exception(exc))
    finally:
        invoking = False
    if fault_injector is not None:
        # The worker's running totals, one line per invocation in its log (the e2e tests read the last one).
        print(json.dumps({"fault_injection": fault_injector.summary(), "requestId": context.aws_request_id}))
    sys.stdout.flush()
    sys.stderr.flush()
    replies.write(json.dumps(reply, default=str) + "\n")
