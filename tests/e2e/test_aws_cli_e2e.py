"""The same enforcement scenario with the AWS CLI as the client (awscli from requirements-dev.txt)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import PREFIX

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

AWS_CLI = Path(sys.executable).parent / "aws"


def aws(emulator, *args):
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "cli-user",
        "AWS_SECRET_ACCESS_KEY": "any",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    env.pop("AWS_SESSION_TOKEN", None)
    result = subprocess.run(
        [str(AWS_CLI), "--endpoint-url", emulator.endpoint, "--output", "json", *args],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=120,
    )
    return json.loads(result.stdout) if result.stdout.strip() else None


def test_aws_cli_create_image_gets_a_verdict(emulator):
    # Given an instance, and an AMI made from it with the AWS CLI
    instance_id = aws(emulator, "ec2", "run-instances", "--image-id", "ami-12c6146b", "--count", "1")["Instances"][0][
        "InstanceId"
    ]
    image_id = aws(
        emulator,
        "ec2",
        "create-image",
        "--instance-id",
        instance_id,
        "--name",
        "cli-al2023-1.0.0",
        "--no-reboot",
        "--tag-specifications",
        "ResourceType=image,Tags=[{Key=Owner,Value=cli-team},{Key=Environment,Value=dev},{Key=CostCenter,Value=CC-0001}]",
    )["ImageId"]

    # When the governance has handled the events
    emulator.drain()

    # Then the CLI shows the verdict, the creator (the CLI's access key) and the no-reboot warning
    [image] = aws(emulator, "ec2", "describe-images", "--image-ids", image_id)["Images"]
    tags = {t["Key"]: t["Value"] for t in image["Tags"]}
    assert tags[f"{PREFIX}compliance"] == "compliant"
    assert tags[f"{PREFIX}warnings"] == "no-reboot"
    assert tags[f"{PREFIX}created-by-session"].endswith("assumed-role/PlatformEngineer/cli-user")
