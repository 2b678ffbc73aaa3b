"""Lambda's Invoke on the emulator, through boto3's lambda client: the functions of a small cloud assembly (one
that echoes, one that raises, with a DLQ and no retries) run as `python -m emulator` runs them."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.e2e.conftest import RunningEmulator, start_emulator, stop_emulator

ACCOUNT = "123456789012"
REGION = "us-east-1"
EU_ECHO = f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:echo"
HANDLERS = """
import json
import os
import subprocess
import sys

def echo(event, context):
    print("echoing", json.dumps(event))
    return {"event": event, "request_id": context.aws_request_id}

def fail(event, context):
    print("about to fail")
    raise ValueError(f"cannot handle {event!r}")
"""
TEMPLATE = {
    "Resources": {
        "Echo": {
            "Type": "AWS::Lambda::Function",
            "Properties": {"FunctionName": "echo", "Handler": "h.echo", "Code": {"S3Key": "code.zip"}, "Timeout": 10},
        },
        "FailDlq": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "fail-dlq"}},
        "Fail": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "FunctionName": "fail",
                "Handler": "h.fail",
                "Code": {"S3Key": "code.zip"},
                "Timeout": 10,
                "DeadLetterConfig": {"TargetArn": {"Fn::GetAtt": ["FailDlq", "Arn"]}},
            },
        },
        "FailConfig": {
            "Type": "AWS::Lambda::EventInvokeConfig",
            "Properties": {"FunctionName": {"Ref": "Fail"}, "Qualifier": "$LATEST", "MaximumRetryAttempts": 1},
        },
    }
}


def _assembly(directory: Path) -> Path:
    code = directory / "asset.code"
    code.mkdir(parents=True)
    (code / "h.py").write_text(HANDLERS)
    (directory / "Test.template.json").write_text(json.dumps(TEMPLATE))
    (directory / "Test.assets.json").write_text(json.dumps({"files": {"code": {
        "source": {"path": "asset.code"}, "destinations": {"d": {"objectKey": "code.zip"}},
    }}}))  # fmt: skip
    (directory / "manifest.json").write_text(json.dumps({"artifacts": {"Test": {
        "type": "aws:cloudformation:stack", "environment": f"aws://{ACCOUNT}/{REGION}",
        "properties": {"templateFile": "Test.template.json"},
    }}}))  # fmt: skip
    return directory


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    running = start_emulator(_assembly(tmp_path_factory.mktemp("cdk.out")), tmp_path_factory.mktemp("emulator"))
    yield running
    stop_emulator(running)


def _lambda(emulator: RunningEmulator, region: str = REGION) -> Any:
    return emulator.client("lambda", region)


def _payload(response: Any) -> Any:
    return json.loads(response["Payload"].read())


@pytest.mark.parametrize(
    "name",
    ["echo", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:echo", f"{ACCOUNT}:function:echo", "echo:$LATEST"],
    ids=["name", "full ARN", "partial ARN", "name:$LATEST"],
)
def test_a_synchronous_invoke_returns_the_handlers_result(emulator: RunningEmulator, name: str) -> None:
    response = _lambda(emulator).invoke(FunctionName=name, Payload=json.dumps({"regions": ["us-east-1"]}))

    assert response["StatusCode"] == 200
    assert response["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in response
    request_id = response["ResponseMetadata"]["RequestId"]
    assert _payload(response) == {"event": {"regions": ["us-east-1"]}, "request_id": request_id}


def test_no_payload_is_an_empty_object_and_any_json_value_is_a_payload(emulator: RunningEmulator) -> None:
    client = _lambda(emulator)

    assert _payload(client.invoke(FunctionName="echo"))["event"] == {}
    assert _payload(client.invoke(FunctionName="echo", Payload=b"[1, 2]"))["event"] == [1, 2]


def test_a_handler_exception_is_a_200_with_the_runtimes_error_object(emulator: RunningEmulator) -> None:
    response = _lambda(emulator).invoke(FunctionName="fail", Payload=b'{"x": 1}')

    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    error = _payload(response)
    assert sorted(error) == ["errorMessage", "errorType", "stackTrace"]
    assert (error["errorType"], error["errorMessage"]) == ("ValueError", "cannot handle {'x': 1}")
    assert any('raise ValueError(f"cannot handle {event!r}")' in line for line in error["stackTrace"])


def test_log_type_tail_returns_the_invocations_log(emulator: RunningEmulator) -> None:
    client = _lambda(emulator)
    client.invoke(FunctionName="echo", Payload=b'{"before": true}')

    response = client.invoke(FunctionName="echo", Payload=b'{"n": 7}', LogType="Tail")

    assert base64.b64decode(response["LogResult"]).decode() == 'echoing {"n": 7}\n'
    assert "LogResult" not in client.invoke(FunctionName="echo", Payload=b"{}")


def test_log_type_tail_keeps_the_last_4_kb(emulator: RunningEmulator) -> None:
    big = "x" * 10_000

    response = _lambda(emulator).invoke(FunctionName="echo", Payload=json.dumps(big), LogType="Tail")

    log = base64.b64decode(response["LogResult"])
    assert len(log) == 4096
    assert log.endswith(b'x"\n')


def test_dry_run_is_a_204_and_runs_nothing(emulator: RunningEmulator) -> None:
    emulator.drain()

    response = _lambda(emulator).invoke(FunctionName="echo", InvocationType="DryRun", Payload=b"{}")

    assert response["StatusCode"] == 204
    assert _payload_bytes(response) == b""
    assert emulator.drain() == []


def _payload_bytes(response: Any) -> bytes:
    return bytes(response["Payload"].read())


def test_an_event_invoke_is_accepted_then_runs_on_the_router(emulator: RunningEmulator) -> None:
    emulator.drain()

    response = _lambda(emulator).invoke(FunctionName="echo", InvocationType="Event", Payload=b'{"async": 1}')

    assert response["StatusCode"] == 202
    request_id = response["ResponseMetadata"]["RequestId"]
    [ran] = emulator.drain()
    assert (ran["rule"], ran["target"], ran["outcome"]) == ("lambda:Invoke (Event)", "echo", "success")
    assert ran["result"] == {"event": {"async": 1}, "request_id": request_id}


def test_a_failing_event_invoke_is_retried_then_dead_lettered_with_lambdas_attributes(
    emulator: RunningEmulator,
) -> None:
    emulator.drain()

    response = _lambda(emulator).invoke(FunctionName="fail", InvocationType="Event", Payload=b'{"async": 2}')

    request_id = response["ResponseMetadata"]["RequestId"]
    ran = emulator.drain()
    assert [(r["attempt"], r["outcome"]) for r in ran] == [(0, "error"), (1, "error"), (1, "dead-lettered")]
    sqs = emulator.client("sqs", REGION)
    url = sqs.get_queue_url(QueueName="fail-dlq")["QueueUrl"]
    [message] = _receive(sqs, url)
    assert json.loads(message["Body"]) == {"async": 2}
    attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    assert attributes == {
        "RequestID": request_id,
        "ErrorCode": "200",
        "ErrorMessage": "ValueError: cannot handle {'async': 2}",
    }


def _receive(sqs: Any, url: str) -> list[Any]:
    # The DLQ's message is sent before the drain returns: one receive sees it (no waiting on time).
    return list(sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"], MaxNumberOfMessages=10)["Messages"])


def test_a_synchronous_invoke_is_in_the_drains_record(emulator: RunningEmulator) -> None:
    emulator.drain()

    response = _lambda(emulator).invoke(FunctionName="echo", Payload=b"{}")

    [ran] = emulator.drain()
    assert (ran["event_id"], ran["rule"], ran["target"]) == (
        response["ResponseMetadata"]["RequestId"], "lambda:Invoke (RequestResponse)", "echo",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("name", "region", "shown"),
    [
        ("nope", REGION, f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:nope"),
        ("echo", "eu-west-1", EU_ECHO),
        (EU_ECHO, REGION, EU_ECHO),
        ("210987654321:function:echo", REGION, f"arn:aws:lambda:{REGION}:210987654321:function:echo"),
        ("echo:live", REGION, f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:echo:live"),
    ],
    ids=["unknown name", "other region", "ARN of another region", "another account", "an alias"],
)
def test_a_function_the_emulator_did_not_deploy_is_resource_not_found(
    emulator: RunningEmulator, name: str, region: str, shown: str
) -> None:
    with pytest.raises(ClientError) as raised:
        _lambda(emulator, region).invoke(FunctionName=name, Payload=b"{}")

    error = raised.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert error["Error"]["Code"] == "ResourceNotFoundException"
    assert error["Error"]["Message"] == f"Function not found: {shown}"
    assert isinstance(raised.value, _lambda(emulator, region).exceptions.ResourceNotFoundException)


def test_a_payload_that_is_not_json_is_invalid_request_content(emulator: RunningEmulator) -> None:
    emulator.drain()

    with pytest.raises(ClientError) as raised:
        _lambda(emulator).invoke(FunctionName="echo", Payload=b"{not json")

    error = raised.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Error"]["Code"] == "InvalidRequestContentException"
    assert error["Error"]["Message"].startswith("Could not parse request body into json: ")
    assert emulator.drain() == []


def test_the_aws_cli_invoke_of_the_readme_works(emulator: RunningEmulator, tmp_path: Path) -> None:
    # awscli (requirements-dev.txt) as a user runs it: the payload as JSON text, the result into a file.
    out = tmp_path / "out.json"
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "cli", "AWS_SECRET_ACCESS_KEY": "any", "AWS_DEFAULT_REGION": REGION}
    env.pop("AWS_SESSION_TOKEN", None)
    command = [
        str(Path(sys.executable).parent / "aws"), "--endpoint-url", emulator.endpoint, "--output", "json",
        "lambda", "invoke", "--function-name", "echo", "--payload", '{"regions": ["us-east-1"]}', str(out),
    ]  # fmt: skip
    printed = subprocess.run(command, capture_output=True, text=True, env=env, check=True, timeout=120).stdout

    assert json.loads(printed) == {"StatusCode": 200, "ExecutedVersion": "$LATEST"}
    assert json.loads(out.read_text())["event"] == {"regions": ["us-east-1"]}


def test_an_event_payload_over_1_mb_is_too_large(emulator: RunningEmulator) -> None:
    emulator.drain()
    payload = json.dumps("x" * (1024 * 1024))  # the quotes make it 2 bytes over

    with pytest.raises(ClientError) as raised:
        _lambda(emulator).invoke(FunctionName="echo", InvocationType="Event", Payload=payload)

    error = raised.value.response
    assert (error["ResponseMetadata"]["HTTPStatusCode"], error["Error"]["Code"]) == (413, "RequestTooLargeException")
    assert emulator.drain() == []
