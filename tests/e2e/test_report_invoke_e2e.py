"""The report on demand, end to end on the emulator: `aws lambda invoke --function-name <ReportFunctionName output>
--payload '{"regions": ["us-east-1"]}' out.json` runs the report now, for the regions named, into the reports bucket;
a region the policy does not govern is refused by the function (a function error, nothing published)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.e2e.conftest import HOME

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

REPORT_HANDLER = "handlers.report.handler"


def _report_function_name(emulator: Any, cloud_assembly: Path) -> str:
    """The deployed report function, which the home stack's `ReportFunctionName` output names."""
    template = json.loads((cloud_assembly / "AmiGovernanceHome.template.json").read_text())
    logical_id = template["Outputs"]["ReportFunctionName"]["Value"]["Ref"]
    assert template["Resources"][logical_id]["Properties"]["Handler"] == REPORT_HANDLER
    [function] = [f for f in emulator.functions() if f["handler"] == REPORT_HANDLER]
    return str(function["name"])


def _lambda(emulator: Any) -> Any:
    # A whole report run can outlast botocore's default read timeout, and a retried Invoke would run it twice.
    return boto3.session.Session().client(
        "lambda",
        region_name=HOME,
        endpoint_url=emulator.endpoint,
        aws_access_key_id="jdoe",
        aws_secret_access_key="any",
        config=Config(read_timeout=600, retries={"total_max_attempts": 1}),
    )


def test_invoking_the_report_for_a_region_publishes_its_files(emulator: Any, cloud_assembly: Path) -> None:
    # Given the deployed report function, named by the stack's output
    name = _report_function_name(emulator, cloud_assembly)
    emulator.drain()

    # When it is invoked on demand for one region, as the README's `aws lambda invoke` does
    response = _lambda(emulator).invoke(FunctionName=name, Payload=json.dumps({"regions": ["us-east-1"]}))

    # Then it ran synchronously and returned the run's summary
    assert response["StatusCode"] == 200
    assert "FunctionError" not in response
    result = json.loads(response["Payload"].read())
    assert set(result) == {"run_id", "keys", "complete", "findings", "monthly_cost"}
    assert result["complete"] is True
    assert isinstance(result["findings"], int)
    assert isinstance(result["monthly_cost"], int | float)
    assert set(result["keys"]) >= {"json", "csv", "html"}

    # and every key it names is in the reports bucket, the JSON report naming the run and only the region asked for
    [function] = [f for f in emulator.functions() if f["name"] == name]
    bucket = function["environment"]["REPORTS_BUCKET_NAME"]
    s3 = emulator.client("s3", HOME)
    for key in result["keys"].values():
        assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] > 0
    report = json.loads(s3.get_object(Bucket=bucket, Key=result["keys"]["json"])["Body"].read())
    assert report["run_id"] == result["run_id"]
    assert {region["region"] for region in report["regions"]} == {"us-east-1"}

    # and the drain records the invoke with the same result
    [ran] = [i for i in emulator.drain() if i["target"] == name]
    assert (ran["rule"], ran["outcome"], ran["result"]) == ("lambda:Invoke (RequestResponse)", "success", result)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"regions": ["ap-south-1"]}, "not governed by the policy: ap-south-1 (governed: "),
        ({"regions": "us-east-1"}, "'regions' must be a non-empty list of region names, not 'us-east-1'"),
    ],
    ids=["ungoverned region", "not a list"],
)
def test_an_invalid_region_payload_is_a_function_error(
    emulator: Any, cloud_assembly: Path, payload: dict[str, Any], message: str
) -> None:
    name = _report_function_name(emulator, cloud_assembly)
    emulator.drain()

    response = _lambda(emulator).invoke(FunctionName=name, Payload=json.dumps(payload))

    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    error = json.loads(response["Payload"].read())
    assert error["errorType"] == "ValueError"
    assert error["errorMessage"].startswith(message)
    [ran] = [i for i in emulator.drain() if i["target"] == name]
    assert ran["outcome"] == "error"
