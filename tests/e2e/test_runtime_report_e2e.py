"""Each function logs the versions it runs with once per container (worker process), at its cold start."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import RunningEmulator

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

GOOD_TAGS = {"Owner": "payments-team", "Environment": "prod", "CostCenter": "CC-1042"}


def _json_lines(log: Path) -> list[dict[str, Any]]:
    lines = []
    for line in log.read_text(encoding="utf-8").splitlines():
        if line.startswith("{"):
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return lines


def test_the_enforce_function_logs_its_runtime_versions_once_at_cold_start(emulator: RunningEmulator) -> None:
    # Given two AMIs created through the EC2 API, so that the enforce function runs several times in its worker
    ec2 = emulator.client("ec2")
    for name in ("payments-api-al2023-3.0.0", "payments-api-al2023-3.0.1"):
        ec2.create_image(
            InstanceId=emulator.launch_instance(),
            Name=name,
            TagSpecifications=[
                {"ResourceType": "image", "Tags": [{"Key": k, "Value": v} for k, v in GOOD_TAGS.items()]}
            ],
        )
    emulator.drain()
    [function] = [f for f in emulator.functions() if f["handler"] == "handlers.enforce.handler"]

    # Then its log has a runtime versions line for each cold start only, naming every package it relies on
    lines = _json_lines(Path(function["log"]))
    reports = [line for line in lines if line.get("message") == "runtime versions"]
    assert reports
    assert all(report["cold_start"] is True for report in reports)
    invocations = {line["function_request_id"] for line in lines if "function_request_id" in line}
    assert len(invocations) > len(reports)
    for key in ("python", "boto3", "botocore", "aws_lambda_powertools", "pydantic"):
        assert reports[-1][key]
    # and the emulator's botocore has everything the code reads from EC2: no model warning
    assert not [line for line in lines if line.get("message") == "the runtime's botocore is older than the code needs"]
