"""The emulator's function workers report a failed init as the Lambda Python runtime does: an import error as
Runtime.ImportModuleError, an exception the module's own code raised as that exception, logged once at init."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator.functions import FunctionSpec, FunctionWorker

RAISES_AT_INIT = """
class SettingsError(RuntimeError):
    pass

raise SettingsError("missing environment variables: INVENTORY_TABLE_NAME")

def handler(event, context):
    return "never"
"""
IMPORTS_WHAT_IS_NOT_THERE = """
import no_such_module

def handler(event, context):
    return "never"
"""
WORKS = """
def handler(event, context):
    return {"function": context.function_name}
"""


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[FunctionWorker]:
    code = tmp_path / "code"
    code.mkdir()
    for name, source in {"raises": RAISES_AT_INIT, "imports": IMPORTS_WHAT_IS_NOT_THERE, "works": WORKS}.items():
        (code / f"{name}.py").write_text(source)
    spec = FunctionSpec(
        name="f", arn="arn:aws:lambda:eu-west-1:123456789012:function:f", region="eu-west-1", handler="",
        code_dir=code, environment={}, role_arn="arn:aws:iam::123456789012:role/f", timeout_seconds=10,
    )  # fmt: skip
    started = FunctionWorker(spec, "http://127.0.0.1:1", "key", tmp_path)
    yield started
    started.stop()


def _init_errors_logged(worker: FunctionWorker) -> list[dict[str, object]]:
    lines = worker.log_path.read_text(encoding="utf-8").splitlines()
    return [
        entry for entry in map(json.loads, (line for line in lines if line.startswith("{"))) if "errorType" in entry
    ]


def test_an_exception_raised_by_the_module_is_the_init_error(worker: FunctionWorker) -> None:
    # Given a handler module whose own code raises when it is imported
    worker.spec.handler = "raises.handler"

    # When the function is invoked twice
    results = [worker.invoke({}), worker.invoke({})]

    # Then each invocation fails with that exception, its message and where it was raised
    assert {(r.error_type, r.error_message) for r in results} == {
        ("SettingsError", "missing environment variables: INVENTORY_TABLE_NAME")
    }
    assert any("raises.py" in frame for frame in results[0].stack_trace)
    # And the init error is logged once, at init, with no request id: no invocation ever ran the handler
    [logged] = _init_errors_logged(worker)
    assert logged["errorType"] == "SettingsError"
    assert logged["requestId"] == ""


def test_an_import_error_is_an_import_module_error(worker: FunctionWorker) -> None:
    worker.spec.handler = "imports.handler"

    result = worker.invoke({})

    assert result.error_type == "Runtime.ImportModuleError"
    assert result.error_message == "Unable to import module 'imports': No module named 'no_such_module'"


def test_a_module_that_loads_runs_its_handler(worker: FunctionWorker) -> None:
    worker.spec.handler = "works.handler"

    result = worker.invoke({})

    assert result.ok
    assert result.result == {"function": "f"}
    assert _init_errors_logged(worker) == []
