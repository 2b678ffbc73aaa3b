"""Handlers on moto: the AWS resources the stack creates, and helpers to shape events for them."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto import mock_aws

from ami_governance.adapters.inventory import Inventory
from ami_governance.models.policy import GovernancePolicy, load_policy_file, parse_policy
from ami_governance.services import wiring
from emulator import moto_extensions
from emulator.inbox import read_notices
from tests.conftest import POLICY_FILE, load_event
from tests.support import (
    INVENTORY_TABLE,
    MOTO_ACCOUNT,
    POLICY_PARAMETER,
    FakeLambdaContext,
    create_home_resources,
    create_image_event,
    state_event,
    tags_event,
)

if TYPE_CHECKING:
    from tests.integration.replication_support import Replication

__all__ = ["ACCOUNT", "PUBLIC_AMI", "create_image_event", "state_event", "tags_event"]

ACCOUNT = MOTO_ACCOUNT
HOME = "us-east-1"
TABLE = INVENTORY_TABLE
# moto 5.2 lacks RegisterImage's block device mappings, the DescribeImages snapshot-id filter and the
# "snapshot in use" check on DeleteSnapshot; emulator/moto_extensions.py adds them (the emulator uses them too).
moto_extensions.apply()

# One of moto's built-in public AMIs, owned by another account (listing them all is slow).
PUBLIC_AMI = "ami-12c6146b"


@dataclass
class Estate:
    """The deployed resources on moto plus handles the tests assert through."""

    topic_arn: str
    inbox_url: str

    def ec2(self, region: str = HOME) -> Any:
        return boto3.client("ec2", region_name=region)

    def set_policy(self, policy: GovernancePolicy) -> None:
        boto3.client("ssm", region_name=HOME).put_parameter(
            Name=POLICY_PARAMETER, Value=policy.model_dump_json(), Type="String", Overwrite=True
        )
        wiring.reset()

    def launch_instance(self, region: str = HOME) -> str:
        reservation = self.ec2(region).run_instances(ImageId=PUBLIC_AMI, MinCount=1, MaxCount=1)
        return str(reservation["Instances"][0]["InstanceId"])

    def create_image(self, name: str, tags: dict[str, str] | None = None, region: str = HOME) -> tuple[str, str]:
        """Create an AMI from a new instance; returns (image id, instance id)."""
        instance_id = self.launch_instance(region)
        kwargs: dict[str, Any] = {"InstanceId": instance_id, "Name": name}
        if tags:
            kwargs["TagSpecifications"] = [
                {"ResourceType": "image", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
            ]
        image_id = self.ec2(region).create_image(**kwargs)["ImageId"]
        return str(image_id), instance_id

    def tags_of(self, image_id: str, region: str = HOME) -> dict[str, str]:
        images = self.ec2(region).describe_images(ImageIds=[image_id], IncludeDisabled=True)["Images"]
        return {t["Key"]: t["Value"] for t in images[0].get("Tags", [])} if images else {}

    def notices(self) -> list[dict[str, Any]]:
        """Every SNS notice published since the last call."""
        return read_notices(self.inbox_url, boto3.client("sqs", region_name=HOME))

    def inventory_item(self, image_id: str, region: str = HOME) -> dict[str, Any] | None:
        """The AMI's inventory item as plain Python values, read as the services read it."""
        return Inventory(TABLE, HOME).get(image_id, region)


@pytest.fixture
def default_policy() -> GovernancePolicy:
    return load_policy_file(POLICY_FILE)


@pytest.fixture
def policy_with(default_policy: GovernancePolicy) -> Callable[..., GovernancePolicy]:
    """The repository policy with top-level fields replaced (validated like the real thing)."""

    def build(**changes: Any) -> GovernancePolicy:
        document = json.loads(default_policy.model_dump_json())
        document.update(changes)
        return parse_policy(document)

    return build


@pytest.fixture
def estate(monkeypatch: pytest.MonkeyPatch, default_policy: GovernancePolicy) -> Iterator[Estate]:
    with mock_aws():
        wiring.reset()
        resources = create_home_resources(default_policy.model_dump_json(), POLICY_PARAMETER, TABLE, HOME)
        monkeypatch.setenv("NOTIFICATION_TOPIC_ARN", resources.topic_arn)
        yield Estate(topic_arn=resources.topic_arn, inbox_url=resources.inbox_url)
        wiring.reset()


@pytest.fixture
def replication(
    estate: Estate,
    monkeypatch: pytest.MonkeyPatch,
    policy_with: Callable[..., GovernancePolicy],
    invoke: Callable[[dict[str, Any]], dict[str, Any]],
) -> Replication:
    """The replicate and copy Lambdas with their copy queue and a replication policy."""
    # Imported here: the support module builds on this one's Estate and helpers.
    from tests.integration.replication_support import deployed_replication

    return deployed_replication(estate, monkeypatch, policy_with, invoke)


@pytest.fixture
def invoke() -> Callable[[dict[str, Any]], dict[str, Any]]:
    from handlers.enforce import handler

    def run(event: dict[str, Any]) -> dict[str, Any]:
        return handler(event, FakeLambdaContext())  # type: ignore[arg-type]

    return run


@pytest.fixture
def invoke_cleanup() -> Callable[[dict[str, Any]], dict[str, Any]]:
    from handlers.cleanup import handler

    def run(event: dict[str, Any]) -> dict[str, Any]:
        return handler(event, FakeLambdaContext(function_name="ami-governance-cleanup"))  # type: ignore[arg-type]

    return run


def deregister_event(image_id: str, region: str = HOME, delete_associated_snapshots: bool = False) -> dict[str, Any]:
    """The sample DeregisterImage CloudTrail event for this AMI."""
    event = load_event("deregister_image")
    event["account"] = ACCOUNT
    event["region"] = region
    event["detail"]["awsRegion"] = region
    event["detail"]["requestParameters"] = {
        "imageId": image_id,
        "deleteAssociatedSnapshots": delete_associated_snapshots,
    }
    return event
