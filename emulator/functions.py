"""The stack's Lambda functions, each run in a worker process of its own, like a Lambda container.

A worker is started on the first invocation with exactly the environment the template gives the function (plus
what the Lambda runtime sets), imports the handler from the function's code asset, and stays warm. A wrong
handler path or a missing environment variable fails here as it would in the cloud. The worker's AWS calls go to
the emulator's endpoint with credentials that name the function's role, so CloudTrail events show who did what.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from emulator.fault_injection import FAULTS_ENV

BOOTSTRAP = Path(__file__).resolve().parent / "lambda_bootstrap.py"
# What the emulator's workers do not have: an X-Ray daemon.
EMULATOR_RUNTIME_ENVIRONMENT = {"POWERTOOLS_TRACE_DISABLED": "true"}


@dataclass
class FunctionSpec:
    name: str
    arn: str
    region: str
    handler: str
    code_dir: Path
    environment: dict[str, str]
    role_arn: str
    timeout_seconds: int = 3
    dead_letter_arn: str | None = None
    retry_attempts: int = 2
    runtime: str = ""
    memory_mb: int = 256


@dataclass
class InvocationResult:
    ok: bool
    duration_ms: float
    result: Any = None
    error_type: str | None = None
    error_message: str | None = None
    stack_trace: list[str] = field(default_factory=list)
    # What the worker wrote to its log during this invocation, when asked for (Invoke with LogType Tail).
    log: str = ""


class FunctionWorker:
    def __init__(
        self,
        spec: FunctionSpec,
        endpoint_url: str,
        access_key: str,
        log_dir: Path,
        emulator_environment: Mapping[str, str] | None = None,
    ) -> None:
        self.spec = spec
        self.endpoint_url = endpoint_url
        self.access_key = access_key
        self.log_path = log_dir / f"{spec.name}.log"
        self.emulator_environment = dict(emulator_environment or {})
        self._process: subprocess.Popen[str] | None = None
        self._replies: IO[str] | None = None
        self._lock = threading.Lock()

    def environment(self) -> dict[str, str]:
        spec = self.spec
        runtime = {
            "AWS_REGION": spec.region,
            "AWS_DEFAULT_REGION": spec.region,
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
            "LAMBDA_TASK_ROOT": str(spec.code_dir),
            "_HANDLER": spec.handler,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": "emulator",
            "AWS_SESSION_TOKEN": "emulator",
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "EMULATOR_FUNCTION_ARN": spec.arn,
            "PATH": os.environ.get("PATH", ""),
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            **self.emulator_environment,
        }
        return {**runtime, **EMULATOR_RUNTIME_ENVIRONMENT, **spec.environment}

    def _start(self) -> None:
        read_fd, write_fd = os.pipe()
        log = self.log_path.open("a", encoding="utf-8")
        self._process = subprocess.Popen(
            [sys.executable, str(BOOTSTRAP), str(write_fd), str(self.spec.code_dir), self.spec.handler],
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.environment(),
            cwd=self.spec.code_dir,
            pass_fds=(write_fd,),
            text=True,
        )
        os.close(write_fd)
        log.close()
        self._replies = os.fdopen(read_fd, "r", encoding="utf-8")

    def _log_tail(self, lines: int = 3) -> str:
        try:
            return " | ".join(self.log_path.read_text(encoding="utf-8").strip().splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None
        if self._replies is not None:
            self._replies.close()
            self._replies = None

    def invoke(self, event: Any, request_id: str | None = None, tail_log: bool = False) -> InvocationResult:
        """Run one invocation; `event` is any JSON value (Invoke's payload need not be an object)."""
        with self._lock:
            log_start = self._log_size() if tail_log else 0
            result = self._invoke(event, request_id)
            if tail_log:
                result.log = self._log_since(log_start)
            return result

    def _log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def _log_since(self, offset: int) -> str:
        try:
            with self.log_path.open("rb") as log:
                log.seek(offset)
                return log.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def _invoke(self, event: Any, request_id: str | None) -> InvocationResult:
        started = time.perf_counter()
        if self._process is None or self._process.poll() is not None:
            self.stop()
            self._start()
        process, replies = self._process, self._replies
        if process is None or process.stdin is None or replies is None:
            raise RuntimeError(f"worker for {self.spec.name} did not start")
        request = {
            "event": event,
            "request_id": request_id or str(uuid.uuid4()),
            "timeout": self.spec.timeout_seconds,
        }
        try:
            process.stdin.write(json.dumps(request) + "\n")
            process.stdin.flush()
        except BrokenPipeError:
            self.stop()
            return InvocationResult(False, _ms(started), error_type="Runtime.ExitError", error_message="worker exited")
        reply_line = _read_line(replies, self.spec.timeout_seconds + 5.0)
        duration = _ms(started)
        if reply_line is None:
            self.stop()  # a timed-out container is not reused
            return InvocationResult(
                False, duration, error_type="Sandbox.Timedout",
                error_message=f"Task timed out after {self.spec.timeout_seconds} seconds",
            )  # fmt: skip
        if not reply_line:
            self.stop()
            return InvocationResult(
                False, duration, error_type="Runtime.ExitError", error_message=f"worker exited: {self._log_tail()}"
            )
        reply = json.loads(reply_line)
        if reply["ok"]:
            return InvocationResult(True, duration, result=reply["result"])
        return InvocationResult(
            False, duration, error_type=reply["errorType"], error_message=reply["errorMessage"],
            stack_trace=reply.get("stackTrace", []),
        )  # fmt: skip


def _read_line(stream: IO[str], timeout: float) -> str | None:
    """One line from the worker, or None if none came within `timeout` seconds."""
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return line[0] if line else None


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


class FunctionRegistry:
    """Every function the deployed templates define, by name and by ARN."""

    def __init__(self, endpoint_url: str, log_dir: Path, access_key_for: Any) -> None:
        self.endpoint_url = endpoint_url
        self.log_dir = log_dir
        self.access_key_for = access_key_for
        self._by_name: dict[str, FunctionSpec] = {}
        self._workers: dict[str, FunctionWorker] = {}
        # What the emulator itself gives every worker on top of the runtime's variables: the directory a worker
        # records its AWS calls in, when the emulator records them (emulator/api_call_recording.py).
        self.worker_environment: dict[str, str] = {}
        # `python -m emulator --inject-faults`: the fault spec for the workers' AWS calls (lambda_bootstrap.py).
        faults = os.environ.get(FAULTS_ENV)
        if faults:
            self.worker_environment[FAULTS_ENV] = faults

    def register(self, spec: FunctionSpec) -> None:
        self._by_name[spec.name] = spec

    def get(self, name_or_arn: str) -> FunctionSpec:
        name = name_or_arn.rsplit(":", 1)[-1] if name_or_arn.startswith("arn:") else name_or_arn
        return self._by_name[name]

    def find(self, arn: str) -> FunctionSpec | None:
        try:
            return self.get(arn)
        except KeyError:
            return None

    def all(self) -> list[FunctionSpec]:
        return list(self._by_name.values())

    def invoke(
        self, spec: FunctionSpec, event: Any, request_id: str | None = None, tail_log: bool = False
    ) -> InvocationResult:
        worker = self._workers.get(spec.name)
        if worker is None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            worker = FunctionWorker(
                spec, self.endpoint_url, self.access_key_for(spec), self.log_dir, self.worker_environment
            )
            self._workers[spec.name] = worker
        return worker.invoke(event, request_id, tail_log)

    def stop(self) -> None:
        for worker in self._workers.values():
            worker.stop()
