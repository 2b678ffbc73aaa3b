"""End-to-end: the governance stack on the local emulator, driven only through the AWS API.

The emulator runs as `python -m emulator` in a process of its own, exactly as `make emulator` runs it, on a
free port, with the stacks synthesized once per test session from the repository's app and policy, and with IAM
enforced (`--enforce-iam`): every call a function makes is evaluated against its role's policies, as on AWS.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from emulator.assembly import synthesize
from emulator.inbox import read_notices, subscribe_inbox

REPO_ROOT = Path(__file__).resolve().parents[2]
HOME = "us-east-1"
OTHER = "eu-west-1"
PREFIX = "ami-governance:"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class RunningEmulator:
    endpoint: str
    process: subprocess.Popen[str]
    workdir: Path
    _clients: dict[tuple[str, str, str], Any] = field(default_factory=dict)

    def client(self, service: str, region: str = HOME, access_key: str = "jdoe") -> Any:
        key = (service, region, access_key)
        if key not in self._clients:
            self._clients[key] = boto3.session.Session().client(
                service,
                region_name=region,
                endpoint_url=self.endpoint,
                aws_access_key_id=access_key,
                aws_secret_access_key="any",
            )
        return self._clients[key]

    def control(self, method: str, route: str, payload: Any = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(f"{self.endpoint}/_governance/{route}", data=data, method=method)
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.load(response)

    def drain(self) -> list[dict[str, Any]]:
        return list(self.control("POST", "drain", {"timeout": 60}))

    def events(self) -> list[dict[str, Any]]:
        return list(self.control("GET", "events"))

    def tags_of(self, image_id: str, region: str = HOME) -> dict[str, str]:
        images = self.client("ec2", region).describe_images(ImageIds=[image_id], IncludeDisabled=True)["Images"]
        return {t["Key"]: t["Value"] for t in images[0].get("Tags", [])} if images else {}

    def launch_instance(self, region: str = HOME) -> str:
        reservation = self.client("ec2", region).run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)
        return str(reservation["Instances"][0]["InstanceId"])

    def functions(self) -> list[dict[str, Any]]:
        return list(self.control("GET", "functions"))

    def iam(self) -> dict[str, Any]:
        """With IAM enforced: evaluations, time spent evaluating, and every denial."""
        return dict(self.control("GET", "iam"))


def start_emulator(
    cdk_out: Path, workdir: Path, *extra: str, enforce_iam: bool = True, record_calls: bool = True
) -> RunningEmulator:
    """`record_calls=False`: the functions' calls are left out of the granted == used check (tests/iam/usage.py),
    for a stack edited on purpose, whose roles are not the product's."""
    port = free_port()
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    if not record_calls:
        environment.pop("AMI_GOVERNANCE_RECORD_API_CALLS", None)
    if enforce_iam:
        extra = ("--enforce-iam", *extra)
    workdir.mkdir(parents=True, exist_ok=True)
    log = (workdir / "emulator.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "emulator", "--port", str(port), "--cdk-out", str(cdk_out), "--workdir", str(workdir),
         *extra],
        cwd=REPO_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        env=environment,
    )  # fmt: skip
    running = RunningEmulator(f"http://127.0.0.1:{port}", process, workdir)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"emulator exited: {(workdir / 'emulator.log').read_text()}")
        try:
            if running.control("GET", "health").get("ready"):
                return running
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"emulator did not become ready: {(workdir / 'emulator.log').read_text()}")


IAM_REPORT_ENV = "AMI_GOVERNANCE_IAM_REPORT"  # a JSON-lines file: each emulator's IAM figures when it stops


def stop_emulator(running: RunningEmulator) -> None:
    report_file = os.environ.get(IAM_REPORT_ENV)
    if report_file and running.process.poll() is None:
        try:
            report = running.iam()
        except OSError:  # not enforcing, or not answering: nothing to report
            report = None
        if report is not None:
            with open(report_file, "a", encoding="utf-8") as out:
                out.write(json.dumps({"workdir": str(running.workdir), **report}) + "\n")
    running.process.terminate()
    try:
        running.process.wait(10)
    except subprocess.TimeoutExpired:
        running.process.kill()


@pytest.fixture(scope="session")
def cloud_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository's app synthesized once per session, as `cdk synth` does."""
    return synthesize(tmp_path_factory.mktemp("assembly") / "cdk.out")


@pytest.fixture(scope="session")
def emulator(cloud_assembly: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    running = start_emulator(
        cloud_assembly,
        tmp_path_factory.mktemp("emulator"),
        "--principal",
        "approver=arn:aws:sts::123456789012:assumed-role/ImageApprover/lead",
    )
    yield running
    stop_emulator(running)


@pytest.fixture
def variant(
    cloud_assembly: Path, tmp_path: Path
) -> Iterator[Callable[[Callable[[dict[str, Any]], None]], RunningEmulator]]:
    """Start an emulator on a copy of the assembly whose home template `change` edited."""
    started: list[RunningEmulator] = []

    def start(change: Callable[[dict[str, Any]], None]) -> RunningEmulator:
        copy = tmp_path / "cdk.out"
        shutil.copytree(cloud_assembly, copy)
        template_file = copy / "AmiGovernanceHome.template.json"
        template = json.loads(template_file.read_text())
        change(template)
        template_file.write_text(json.dumps(template))
        # An edited stack: its functions' calls say nothing of what the product's roles grant.
        running = start_emulator(copy, tmp_path / "emulator", record_calls=False)
        started.append(running)
        return running

    yield start
    for running in started:
        stop_emulator(running)


def notification_inbox(emulator: RunningEmulator) -> Callable[[], list[dict[str, Any]]]:
    """An SQS queue subscribed to the governance topic; calling it returns (and removes) what arrived."""
    sns, sqs = emulator.client("sns"), emulator.client("sqs")
    [topic] = [t["TopicArn"] for t in sns.list_topics()["Topics"] if "Notifications" in t["TopicArn"]]
    url = subscribe_inbox(sns, sqs, topic, f"inbox-{time.monotonic_ns()}")
    return lambda: read_notices(url, sqs)


@pytest.fixture
def inbox(emulator: RunningEmulator) -> Callable[[], list[dict[str, Any]]]:
    return notification_inbox(emulator)
