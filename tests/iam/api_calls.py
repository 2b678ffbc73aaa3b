"""The AWS API calls each Lambda makes while the tests run, and the IAM actions they need.

Two recorders feed the granted-vs-used check (`tests/iam/usage.py`):

- **In the test process** (integration tests call the handlers directly): `HarnessRecorder` registers a botocore
  `before-parameter-build` handler for every botocore session created from then on (the Lambda code's clients,
  `ami_governance.adapters.clients`, and Powertools' SSM client alike). A call is the Lambda's only if the code
  that made it is: the first frame outside botocore and boto3 must be under `lambdas/` or in Powertools. Test code's
  own calls (moto set-up, assertions, a hook a test runs inside a handler) are never attributed. The function is
  the handler module on the stack (`lambdas/handlers/<name>.py`); Lambda code that runs outside a handler (adapter
  tests) is counted, not attributed. The policy in force is the one the handler loaded: `wiring.load_policy` is
  wrapped to note it on the invocation.
- **In the emulator's workers** (e2e tests): `emulator/lambda_bootstrap.py` records every call of the worker,
  which runs one function and nothing else (`emulator/api_call_recording.py`).

`iam_actions` maps an operation to the IAM actions it needs: the action the call itself is authorised as, and the
ones AWS services perform with the caller's permissions on its behalf (KMS, for an encrypted topic or copy).
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

# Operations that IAM authorises under another action's name (everything else is `<prefix>:<OperationName>`), and
# what EC2 and SNS do with the caller's permissions on a KMS key: the tables of the emulator's IAM enforcement.
from emulator.iam.requests import ACTION_BY_OPERATION, EBS_KEY_ACTIONS, SNS_KEY_ACTIONS

REPO_ROOT = Path(__file__).resolve().parents[2]
LAMBDAS_DIR = REPO_ROOT / "lambdas"
HANDLERS_DIR = LAMBDAS_DIR / "handlers"

# botocore's signingName is the IAM service prefix of every service the Lambdas call; the exceptions known here.
IAM_PREFIX_BY_SIGNING_NAME = {
    "monitoring": "cloudwatch",  # CloudWatch's API signs as "monitoring"; its IAM actions are cloudwatch:*
}


@dataclass(frozen=True)
class ImpliedActions:
    """Actions an AWS service performs with the caller's permissions while it serves the call: the caller's role
    must allow them although the caller never calls them. `when_params`: the request parameters that make it so."""

    actions: tuple[str, ...]
    source: str
    when_params: frozenset[str] = frozenset()


IMPLIED_ACTIONS = {
    # Every topic this stack publishes to is encrypted with its own KMS key (home stack, Notifications).
    "sns:Publish": ImpliedActions(
        tuple(sorted(SNS_KEY_ACTIONS)),
        "SNS developer guide, encryption at rest / key management: publishers to an encrypted topic need "
        "kms:GenerateDataKey* and kms:Decrypt on its key",
    ),
    "ec2:CopyImage": ImpliedActions(
        EBS_KEY_ACTIONS,
        "EBS user guide, 'Requirements for Amazon EBS encryption': using a KMS key for EBS encryption needs "
        "kms:CreateGrant, kms:Decrypt, kms:DescribeKey, kms:GenerateDataKeyWithoutPlainText and kms:ReEncrypt*",
        when_params=frozenset({"KmsKeyId"}),
    ),
}


# Tags given at creation are authorised as a CreateTags call too (EC2 user guide, "Grant permission to tag Amazon
# EC2 resources during creation": when a resource-creating action names tags, EC2 also authorises ec2:CreateTags,
# which the ec2:CreateAction condition key can narrow to that action).
TAG_ON_CREATE = {"ec2": ("TagSpecifications", "ec2:CreateTags")}


@dataclass(frozen=True)
class Action:
    name: str
    via: str | None = None  # the call that implies it, for an implied action


def iam_actions(signing_name: str, operation: str, params: frozenset[str] = frozenset()) -> list[Action]:
    """The IAM action of one call, then the actions AWS performs on the caller's behalf for it."""
    prefix = IAM_PREFIX_BY_SIGNING_NAME.get(signing_name, signing_name)
    action = ACTION_BY_OPERATION.get((prefix, operation), f"{prefix}:{operation}")
    actions = [Action(action)]
    implied = IMPLIED_ACTIONS.get(action)
    if implied is not None and implied.when_params <= params:
        actions += [Action(name, via=action) for name in implied.actions]
    tagging = TAG_ON_CREATE.get(prefix)
    if tagging is not None and tagging[0] in params and action != tagging[1]:
        actions.append(Action(tagging[1], via=action))
    return actions


def function_of_handler(handler: str) -> str | None:
    """`handlers.enforce.handler` (a template's Handler, or a module path) -> `enforce`; None outside the product."""
    parts = handler.split(".")
    if len(parts) < 2 or parts[0] != "handlers" or not (HANDLERS_DIR / f"{parts[1]}.py").is_file():
        return None
    return parts[1]


def policy_digest(policy_json: str) -> str:
    return hashlib.sha256(policy_json.encode()).hexdigest()[:16]


@dataclass
class Invocation:
    """One handler invocation in the test process: its function, test, policy and calls."""

    function: str
    test: str
    policy_json: str | None = None
    # (signing name, operation, parameter names) -> count
    calls: Counter[tuple[str, str, tuple[str, ...]]] = field(default_factory=Counter)


def _directory_of(module: Any) -> str:
    return os.path.dirname(os.path.realpath(module.__file__))


class HarnessRecorder:
    """Records the calls the Lambda code makes inside a handler, in this process (see the module docstring)."""

    def __init__(self) -> None:
        import boto3
        import botocore

        self._sdk_dirs = tuple(_directory_of(m) + os.sep for m in (botocore, boto3))
        lambda_dirs = [str(LAMBDAS_DIR) + os.sep]
        try:
            import aws_lambda_powertools

            lambda_dirs.append(_directory_of(aws_lambda_powertools) + os.sep)
        except ImportError:  # pragma: no cover - Powertools is pinned in requirements.txt
            pass
        self._lambda_dirs = tuple(lambda_dirs)
        self._handlers_dir = str(HANDLERS_DIR) + os.sep
        self._real_paths: dict[str, str] = {}
        # Per thread, the handler frame running in it and its invocation: tests that deliver events concurrently
        # (the race property) run several handlers at once, and a call must not be counted under another thread's
        # invocation, or under a new one that never loaded the policy.
        self._current: dict[int, tuple[FrameType, Invocation]] = {}
        self._done: list[Invocation] = []
        self.test = ""
        self.unattributed = 0  # Lambda code's calls made outside any handler (adapter tests)
        self._installed: list[Callable[[], None]] = []

    # ---- installation --------------------------------------------------------------------------------------

    def install(self) -> None:
        import botocore.handlers

        from ami_governance.services import wiring

        entry = ("before-parameter-build", self._on_call)
        botocore.handlers.BUILTIN_HANDLERS.append(entry)
        self._installed.append(lambda: botocore.handlers.BUILTIN_HANDLERS.remove(entry))

        original = wiring.load_policy

        def load_policy(parameter_name: str) -> Any:
            policy = original(parameter_name)
            invocation = self._invocation()
            if invocation is not None:
                invocation.policy_json = policy.model_dump_json()
            return policy

        wiring.load_policy = load_policy  # type: ignore[assignment]
        self._installed.append(lambda: setattr(wiring, "load_policy", original))

    def uninstall(self) -> None:
        while self._installed:
            self._installed.pop()()

    # ---- recording -----------------------------------------------------------------------------------------

    def _real(self, filename: str) -> str:
        real = self._real_paths.get(filename)
        if real is None:
            real = self._real_paths[filename] = os.path.realpath(filename)
        return real

    def _handler_frame(self, frame: FrameType | None, *, lambda_caller_required: bool) -> FrameType | None:
        caller_checked = not lambda_caller_required
        while frame is not None:
            filename = self._real(frame.f_code.co_filename)
            if not caller_checked and not filename.startswith(self._sdk_dirs) and filename != self._real(__file__):
                if not filename.startswith(self._lambda_dirs):
                    return None  # test code (or anything else) made this call, not the Lambda
                caller_checked = True
            if filename.startswith(self._handlers_dir):
                return frame
            frame = frame.f_back
        if lambda_caller_required and caller_checked:
            self.unattributed += 1
        return None

    def _invocation(self, frame: FrameType | None = None, *, lambda_caller_required: bool = False) -> Invocation | None:
        handler_frame = self._handler_frame(frame or sys._getframe(2), lambda_caller_required=lambda_caller_required)
        if handler_frame is None:
            return None
        thread = threading.get_ident()
        current = self._current.get(thread)
        if current is not None and current[0] is handler_frame:
            return current[1]
        # A new invocation. Holding its frame until the next one (or the test's end) keeps the identity check
        # exact: a live frame's identity cannot be reused.
        if current is not None:
            self._done.append(current[1])
        function = Path(handler_frame.f_code.co_filename).stem
        invocation = Invocation(function=function, test=self.test)
        self._current[thread] = (handler_frame, invocation)
        return invocation

    def _on_call(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        invocation = self._invocation(sys._getframe(1), lambda_caller_required=True)
        if invocation is not None:
            invocation.calls[(model.service_model.signing_name, model.name, tuple(sorted(params)))] += 1

    def start_test(self, nodeid: str) -> None:
        self.test = nodeid

    def finish_test(self) -> list[Invocation]:
        """The invocations recorded since the last call (the test is over: no handler frame is still running)."""
        while self._current:
            self._done.append(self._current.popitem()[1][1])
        done, self._done = self._done, []
        return done
