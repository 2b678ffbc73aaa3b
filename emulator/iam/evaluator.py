"""The IAM evaluator: @cloud-copilot/iam-simulate in a long-lived Node process of its own (simulate.mjs).

The package is AGPL-3.0-or-later: a dev dependency of the emulator only, run as a separate program and talked to
over a pipe; nothing of it is imported into Python, bundled in a Lambda asset or deployed by a stack.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
SIDECAR = Path(__file__).with_name("simulate.mjs")
PACKAGE = "@cloud-copilot/iam-simulate"
ALLOWED = "Allowed"
IMPLICIT_DENY = "ImplicitlyDenied"
EXPLICIT_DENY = "ExplicitlyDenied"


class EvaluatorUnavailable(RuntimeError):
    """Node or the evaluator package is missing, or the evaluator process died."""


@dataclass(frozen=True)
class Decision:
    result: str
    ignored_context_keys: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.result == ALLOWED


@dataclass
class EvaluatorStats:
    evaluations: int = 0
    seconds: float = 0.0
    denials: int = 0
    by_action: dict[str, int] = field(default_factory=dict)


class Evaluator:
    """One Node process per emulator; requests are serialized (the HTTP server is threaded, the pipe is not)."""

    def __init__(self, node: str | None = None, cwd: Path = REPO_ROOT) -> None:
        self._node = node or shutil.which("node")
        self._cwd = cwd
        self._process: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()
        self._next_id = 0
        self.stats = EvaluatorStats()

    def start(self) -> Evaluator:
        if self._node is None:
            raise EvaluatorUnavailable("--enforce-iam needs Node.js (node on PATH) to run the IAM evaluator")
        if not (self._cwd / "node_modules" / PACKAGE / "package.json").is_file():
            raise EvaluatorUnavailable(
                f"--enforce-iam needs the npm package {PACKAGE} (a dev dependency in package.json): "
                f"run `npm ci` in {self._cwd}"
            )
        self._process = subprocess.Popen(
            [self._node, str(SIDECAR)],
            cwd=self._cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        ready = self._read_line()
        if ready.get("ready") is not True:
            raise EvaluatorUnavailable(f"the IAM evaluator did not start: {ready}")
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def evaluate(self, simulation: dict[str, Any]) -> Decision:
        """One runSimulation request (see simulate.mjs) -> its decision. An evaluator error is an error, never an
        allow."""
        with self._lock:
            process = self._process
            if process is None or process.stdin is None:
                raise EvaluatorUnavailable("the IAM evaluator is not running")
            self._next_id += 1
            started = time.perf_counter()
            process.stdin.write(json.dumps({"id": self._next_id, "request": simulation}) + "\n")
            process.stdin.flush()
            answer = self._read_line()
            self.stats.evaluations += 1
            self.stats.seconds += time.perf_counter() - started
        if answer.get("id") != self._next_id:
            raise EvaluatorUnavailable(f"the IAM evaluator answered out of order: {answer}")
        if "error" in answer:
            raise ValueError(f"the IAM evaluator refused the request: {answer['error']}")
        decision = Decision(str(answer["result"]), tuple(answer.get("ignoredContextKeys") or ()))
        if not decision.allowed:
            self.stats.denials += 1
        return decision

    def _read_line(self) -> dict[str, Any]:
        assert self._process is not None
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise EvaluatorUnavailable(f"the IAM evaluator exited (status {self._process.poll()})")
        answer: dict[str, Any] = json.loads(line)
        return answer
