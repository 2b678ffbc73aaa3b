"""Opt-in record of the AWS API calls each emulated function makes, for comparing them with its role.

With `AMI_GOVERNANCE_RECORD_API_CALLS=<dir>` in the emulator's environment, each emulator run gets a directory of
its own under `<dir>`: `manifest.json` holds the templates it deployed and, per function name, the stack, logical
id and handler; every function's worker appends one JSON line per AWS call to `calls-<function>-<pid>.jsonl`
there (`lambda_bootstrap.py`). The test suite reads them to check that each function's role grants what the
function uses and uses what it grants (`tests/iam/usage.py`). Without the variable nothing is recorded.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from emulator.assembly import StackArtifact
    from emulator.deployer import DeployedStack

RECORD_API_CALLS_ENV = "AMI_GOVERNANCE_RECORD_API_CALLS"
MANIFEST = "manifest.json"


def recording_directory() -> Path | None:
    """Where this emulator run records, or None when recording is off."""
    base = os.environ.get(RECORD_API_CALLS_ENV)
    return Path(base) if base else None


def start_recording(base: Path, deployed: Iterable[tuple[StackArtifact, DeployedStack]]) -> Path:
    """A directory for this run, with the manifest that ties each function's calls to its template."""
    run = base / f"emulator-{os.getpid()}-{time.time_ns()}"
    run.mkdir(parents=True, exist_ok=False)
    templates: dict[str, Any] = {}
    functions: dict[str, dict[str, Any]] = {}
    for artifact, stack in deployed:
        templates[artifact.name] = artifact.template
        for logical_id, resource in artifact.template.get("Resources", {}).items():
            physical = stack.resources.get(logical_id)
            if resource.get("Type") != "AWS::Lambda::Function" or physical is None:
                continue
            functions[physical.ref] = {
                "stack": artifact.name,
                "logical_id": logical_id,
                "handler": resource.get("Properties", {}).get("Handler"),
            }
    (run / MANIFEST).write_text(json.dumps({"templates": templates, "functions": functions}), encoding="utf-8")
    return run
