"""What the Lambdas log about the runtime they run on: one line of versions per container, and a warning (with a
metric) when the runtime's botocore model lacks what the code reads from EC2."""

from __future__ import annotations

import copy
import io
import json
import platform
from functools import cache
from typing import Any

import boto3
import botocore
import botocore.session
import pydantic
import pytest
from aws_lambda_powertools import __version__ as powertools_version
from botocore.model import ServiceModel

from ami_governance import runtime
from ami_governance.adapters import clients
from ami_governance.observability import logger, reports_runtime, warn_if_model_lacks
from ami_governance.runtime import EC2_MODEL_NEEDS, missing_model_members, runtime_versions
from tests.support import emitted_metric_names


@pytest.fixture
def logged(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """What the Powertools logger writes (its handler holds the stdout of when it was made, not capsys's)."""
    stream = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", stream)
    return stream


@cache
def _ec2_model_data() -> dict[str, Any]:
    data: dict[str, Any] = botocore.session.get_session().get_service_data("ec2")
    return data


def _ec2_model_without(*members: tuple[str, str]) -> ServiceModel:
    """The installed EC2 model with some members taken out: what an older botocore would have."""
    data = copy.deepcopy(_ec2_model_data())
    for shape, member in members:
        del data["shapes"][shape]["members"][member]
    return ServiceModel(data, service_name="ec2")


def _log_lines(logged: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in logged.getvalue().splitlines()]


def test_runtime_versions_are_those_of_the_packages_loaded() -> None:
    assert runtime_versions() == {
        "python": platform.python_version(),
        "boto3": boto3.__version__,
        "botocore": botocore.__version__,
        "aws_lambda_powertools": powertools_version,
        "pydantic": pydantic.__version__,
    }


def test_a_package_not_imported_is_read_from_its_distribution(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given packages that are not imported under these module names: one installed, one not
    monkeypatch.setattr(runtime, "RUNTIME_PACKAGES", {"yaml_not_imported": "PyYAML", "nowhere": "no-such-dist"})
    from importlib import metadata

    # Then the installed one is read from its metadata, and the other says so
    versions = runtime_versions()
    assert versions["yaml_not_imported"] == metadata.version("PyYAML")
    assert versions["nowhere"] == "not installed"


def test_the_first_invocation_logs_the_runtime_versions_once(logged: io.StringIO) -> None:
    # Given a handler wrapped as the Lambdas' are
    calls: list[int] = []
    handler = reports_runtime(lambda event, context: calls.append(event) or "done")

    # When it is invoked twice
    assert handler(1, None) == "done"
    assert handler(2, None) == "done"

    # Then both invocations ran, and one line gave the versions
    assert calls == [1, 2]
    [line] = [line for line in _log_lines(logged) if line["message"] == "runtime versions"]
    assert {key: line[key] for key in runtime_versions()} == runtime_versions()


def test_a_failing_first_invocation_still_logs_the_versions(logged: io.StringIO) -> None:
    # Given a handler whose first invocation raises (an import the layer cannot satisfy, say)
    def broken(event: Any, context: Any) -> Any:
        raise ImportError("no module named nowhere")

    # When invoked, then the error is raised and the versions were logged anyway
    with pytest.raises(ImportError):
        reports_runtime(broken)({}, None)
    assert [line["message"] for line in _log_lines(logged)] == ["runtime versions"]


def test_the_installed_ec2_model_has_everything_the_code_reads() -> None:
    assert missing_model_members(ServiceModel(_ec2_model_data(), service_name="ec2")) == []


def test_an_older_ec2_model_is_a_warning_and_a_metric(logged: io.StringIO, capsys: pytest.CaptureFixture[str]) -> None:
    # Given the EC2 model of a botocore from before DescribeImages returned the source AMI
    old_model = _ec2_model_without(("Image", "SourceImageId"), ("Image", "SourceImageRegion"))

    # When it is checked
    missing = warn_if_model_lacks(old_model)

    # Then both members are named with the botocore release that added them, in a warning and a metric
    assert missing == ["Image.SourceImageId (botocore >= 1.35.60)", "Image.SourceImageRegion (botocore >= 1.35.60)"]
    [warning] = [line for line in _log_lines(logged) if line["level"] == "WARNING"]
    assert warning["missing"] == missing
    assert warning["botocore"] == botocore.__version__
    assert "BotocoreModelGaps" in emitted_metric_names(capsys.readouterr().out)


def test_every_member_the_code_needs_is_checked() -> None:
    # Each entry names a real shape and member of the installed model, so a typo cannot hide a gap
    for shape, member in EC2_MODEL_NEEDS:
        assert member in _ec2_model_data()["shapes"][shape]["members"]


def test_the_ec2_model_is_checked_once_per_container(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given no EC2 client made yet in this container
    checked: list[ServiceModel] = []
    monkeypatch.setattr(clients, "_models_checked", set())
    monkeypatch.setattr(clients, "warn_if_model_lacks", checked.append)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    clients.reset_clients()

    # When EC2 clients for two regions and another service's client are made
    clients.client("ec2", "us-east-1")
    clients.client("ec2", "eu-west-1")
    clients.client("sns", "us-east-1")
    clients.reset_clients()

    # Then the model of the first EC2 client was checked, and only it
    [model] = checked
    assert model.service_name == "ec2"
