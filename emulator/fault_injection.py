"""Injected AWS faults: a chosen share of a function's AWS calls fail, through botocore's event hooks.

One implementation for both places faults are injected: the emulator's Lambda workers (`lambda_bootstrap.py`,
`python -m emulator --inject-faults 0.3 --fault-seed 7`, passed to the workers as
`AMI_GOVERNANCE_INJECT_FAULTS=rate=0.3,seed=7`) and the integration tests (`tests/faults.py`, where only the
Lambda code's calls are faulted, never the test's own). It imports nothing from the product or the tests.

A faulted call fails as the caller sees it once botocore's own retries are spent, without the retries' back-off:

- `throttling`: EC2's `RequestLimitExceeded` (503), `Throttling` (SNS), `SlowDown` (S3), `ThrottlingException`
  (400) elsewhere: the request never reaches AWS.
- `server-error`: `InternalError` (500) or `Unavailable` (503) on EC2; `InternalServerError` (500) on DynamoDB;
  `InternalFailure` (500) or `ServiceUnavailable` (503) elsewhere: nothing happens on AWS.
- `read-timeout`: `botocore.exceptions.ReadTimeoutError` before the request is sent: nothing happens on AWS.
- `response-lost`: the request is sent and AWS applies it, then the caller gets a `ReadTimeoutError` instead of
  the answer. This is the fault that shows whether a retry redoes completed work.

The first three are answered by a `before-call` handler registered first (so no other handler, moto's
`before-send` stubber included, ever sees the request); the lost response by an `after-call` handler, after the
call's real answer was parsed. Which calls fail is deterministic per seed: the decision for the n-th call of an
operation in a region is a hash of (seed, service, region, operation, n), so threads scanning regions at once do
not change which calls fail.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

FAULTS_ENV = "AMI_GOVERNANCE_INJECT_FAULTS"
# Marks the call whose response the after-call handler loses (botocore passes the same context dict to both).
_LOSE_RESPONSE = "ami_governance_fault_lose_response"


class FaultKind(StrEnum):
    THROTTLING = "throttling"
    SERVER_ERROR = "server-error"
    READ_TIMEOUT = "read-timeout"
    RESPONSE_LOST = "response-lost"


ALL_KINDS: tuple[FaultKind, ...] = tuple(FaultKind)


@dataclass(frozen=True)
class FaultSpec:
    """What to inject: `rate` (0..1) of the calls fail, with `kinds` chosen evenly, deterministically per `seed`."""

    rate: float
    seed: int = 0
    kinds: tuple[FaultKind, ...] = ALL_KINDS

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"the fault rate must be between 0 and 1, not {self.rate}")
        if not self.kinds:
            raise ValueError("at least one fault kind is needed")

    def render(self) -> str:
        """The environment variable's value: `rate=0.3,seed=7,kinds=throttling+read-timeout`."""
        return f"rate={self.rate},seed={self.seed},kinds={'+'.join(self.kinds)}"

    @classmethod
    def parse(cls, text: str) -> FaultSpec:
        fields = dict(part.split("=", 1) for part in text.split(",") if part.strip())
        unknown = set(fields) - {"rate", "seed", "kinds"}
        if unknown or "rate" not in fields:
            raise ValueError(f"{FAULTS_ENV} must read rate=R[,seed=N][,kinds=K+K...], not {text!r}")
        kinds = tuple(FaultKind(k) for k in fields["kinds"].split("+")) if "kinds" in fields else ALL_KINDS
        return cls(rate=float(fields["rate"]), seed=int(fields.get("seed", "0")), kinds=kinds)


@dataclass(frozen=True)
class InjectedFault:
    kind: FaultKind
    service: str
    operation: str
    region: str
    error: str  # the error code, or the exception's name, the caller saw


class _Response:
    """What botocore needs of an HTTP response for an answer a before-call handler gives instead of sending."""

    def __init__(self, status_code: int) -> None:
        self.status_code = status_code
        self.headers: dict[str, str] = {}
        self.content = b""


# (error code, HTTP status) per service: AWS's own codes for throttling and server errors.
_THROTTLING = {"ec2": ("RequestLimitExceeded", 503), "sns": ("Throttling", 400), "s3": ("SlowDown", 503)}
_SERVER_ERRORS = {
    "ec2": (("InternalError", 500), ("Unavailable", 503)),
    "dynamodb": (("InternalServerError", 500),),
}
_DEFAULT_THROTTLING = ("ThrottlingException", 400)
_DEFAULT_SERVER_ERRORS = (("InternalFailure", 500), ("ServiceUnavailable", 503))


def _fraction(*parts: object) -> float:
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass
class FaultInjector:
    """Decides, injects and counts. `applies()` says whether the call being made may be faulted (the test harness
    faults only the Lambda code's calls; a worker only calls made during an invocation)."""

    spec: FaultSpec
    applies: Callable[[], bool] = lambda: True
    calls: Counter[str] = field(default_factory=Counter)  # "ec2:CreateTags" -> calls that could be faulted
    injected: list[InjectedFault] = field(default_factory=list)
    enabled: bool = True
    _nth: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # ---- figures ------------------------------------------------------------------------------------------

    def by_kind(self) -> Counter[str]:
        return Counter(str(f.kind) for f in self.injected)

    def by_operation(self) -> Counter[str]:
        return Counter(f"{f.service}:{f.operation}" for f in self.injected)

    def summary(self) -> dict[str, Any]:
        return {
            "calls": sum(self.calls.values()),
            "injected": len(self.injected),
            "by_kind": dict(sorted(self.by_kind().items())),
            "by_operation": dict(sorted(self.by_operation().items())),
        }

    # ---- botocore handlers --------------------------------------------------------------------------------

    def before_call(self, model: Any, context: dict[str, Any], request_signer: Any = None, **_: Any) -> Any:
        if not self.enabled or not self.applies():
            return None
        service = model.service_model.service_name
        operation = model.name
        region = getattr(request_signer, "region_name", None) or ""
        with self._lock:
            self.calls[f"{service}:{operation}"] += 1
            nth = self._nth[(service, region, operation)]
            self._nth[(service, region, operation)] = nth + 1
        draw = _fraction(self.spec.seed, service, region, operation, nth)
        if draw >= self.spec.rate:
            return None
        # The same draw, rescaled, picks the kind: one hash per call.
        kinds = self.spec.kinds
        kind = kinds[min(int(draw / self.spec.rate * len(kinds)), len(kinds) - 1)]
        if kind is FaultKind.RESPONSE_LOST:
            context[_LOSE_RESPONSE] = (service, operation, region)
            return None
        if kind is FaultKind.READ_TIMEOUT:
            self._note(kind, service, operation, region, "ReadTimeoutError")
            raise _read_timeout(model)
        code, status = self._error_for(kind, service, nth)
        self._note(kind, service, operation, region, code)
        parsed = {
            "Error": {"Code": code, "Message": f"{code} (fault injected, seed {self.spec.seed})"},
            "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": {}, "RetryAttempts": 0},
        }
        return _Response(status), parsed

    def after_call(self, context: dict[str, Any], model: Any, **_: Any) -> None:
        lost = context.pop(_LOSE_RESPONSE, None)
        if lost is None:
            return
        service, operation, region = lost
        self._note(FaultKind.RESPONSE_LOST, service, operation, region, "ReadTimeoutError")
        raise _read_timeout(model)

    def _error_for(self, kind: FaultKind, service: str, nth: int) -> tuple[str, int]:
        if kind is FaultKind.THROTTLING:
            return _THROTTLING.get(service, _DEFAULT_THROTTLING)
        choices = _SERVER_ERRORS.get(service, _DEFAULT_SERVER_ERRORS)
        return choices[nth % len(choices)]

    def _note(self, kind: FaultKind, service: str, operation: str, region: str, error: str) -> None:
        with self._lock:
            self.injected.append(InjectedFault(kind, service, operation, region, error))

    # ---- installation -------------------------------------------------------------------------------------

    def handler_specs(self) -> list[tuple[str, Callable[..., Any], object]]:
        """Entries for botocore's BUILTIN_HANDLERS: every session created from then on gets them."""
        import botocore.handlers

        return [
            ("before-call", self.before_call, botocore.handlers.REGISTER_FIRST),
            ("after-call", self.after_call, botocore.handlers.REGISTER_FIRST),
        ]

    @contextmanager
    def installed(self) -> Iterator[FaultInjector]:
        """Registered for every botocore session created inside the block (clients made earlier are not
        affected: create the faulted code's session afterwards)."""
        import botocore.handlers

        entries = self.handler_specs()
        botocore.handlers.BUILTIN_HANDLERS.extend(entries)
        try:
            yield self
        finally:
            for entry in entries:
                botocore.handlers.BUILTIN_HANDLERS.remove(entry)


def _read_timeout(model: Any) -> Exception:
    from botocore.exceptions import ReadTimeoutError

    endpoint = f"https://{model.service_model.endpoint_prefix}.amazonaws.com/"
    return ReadTimeoutError(endpoint_url=endpoint)


def spec_from_environment(environ: Mapping[str, str]) -> FaultSpec | None:
    text = environ.get(FAULTS_ENV)
    return FaultSpec.parse(text) if text else None
