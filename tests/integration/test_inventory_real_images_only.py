"""Events naming AMIs that do not exist leave no inventory items: every Lambda path that writes the inventory, fed
ids EC2 has never heard of (a black-box probe once made 1,015 items out of 1,000 such ids)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from ami_governance.models.policy import GovernancePolicy
from tests.integration.conftest import (
    ACCOUNT,
    HOME,
    TABLE,
    Estate,
    create_image_event,
    deregister_event,
    state_event,
    tags_event,
)
from tests.support import FakeLambdaContext, receive_as_sqs_event_records

pytestmark = pytest.mark.integration

P = "ami-governance:"
EU = "eu-west-1"
UNKNOWN = [f"ami-0{n:016x}" for n in range(1, 6)]


def items() -> int:
    return int(boto3.client("dynamodb", region_name=HOME).scan(TableName=TABLE, Select="COUNT")["Count"])


@pytest.fixture
def replicating(estate: Estate, monkeypatch: pytest.MonkeyPatch, policy_with: Callable[..., GovernancePolicy]) -> str:
    queue_url = str(boto3.client("sqs", region_name=HOME).create_queue(QueueName="copy-jobs")["QueueUrl"])
    monkeypatch.setenv("COPY_QUEUE_URL", queue_url)
    estate.set_policy(
        policy_with(
            governed_regions=[HOME, EU],
            approval={"approvers": ["arn:aws:iam::*:role/AmiApprover"]},
            replication={"regions": [EU]},
            cleanup={"dry_run": False},
        )
    )
    return queue_url


def approval(image_id: str) -> dict[str, Any]:
    event = tags_event("create_tags_approval", [image_id], {f"{P}approved": "true"})
    event["detail"]["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"] = (
        f"arn:aws:iam::{ACCOUNT}:role/AmiApprover"
    )
    return event


def copy_job(image_id: str) -> dict[str, Any]:
    return {
        "source_image_id": image_id,
        "source_region": HOME,
        "target_region": EU,
        "name": "payments-api-al2023-1.4.0",
        "approved_by": f"arn:aws:iam::{ACCOUNT}:role/AmiApprover",
        "approval_event_id": "forged",
        "generation": 0,
    }


@pytest.fixture
def lambdas() -> dict[str, Callable[[dict[str, Any]], Any]]:
    from handlers.cleanup import handler as cleanup
    from handlers.copy import handler as copy
    from handlers.enforce import handler as enforce
    from handlers.replicate import handler as replicate

    def call(handler: Any, name: str) -> Callable[[dict[str, Any]], Any]:
        return lambda event: handler(event, FakeLambdaContext(function_name=f"ami-governance-{name}"))

    return {
        "enforce": call(enforce, "enforce"),
        "cleanup": call(cleanup, "cleanup"),
        "replicate": call(replicate, "replicate"),
        "copy": call(copy, "copy"),
    }


EVENTS: list[tuple[str, str, Callable[[str], dict[str, Any]]]] = [
    ("enforce", "CreateImage", lambda i: create_image_event(i, "i-0123456789abcdef0")),
    ("enforce", "CreateTags", lambda i: tags_event("create_tags_approval", [i], {"Owner": "me"})),
    ("enforce", "DeleteTags of the protection tag",
     lambda i: tags_event("create_tags_approval", [i], {f"{P}protected": ""}, event_name="DeleteTags")),
    ("enforce", "available", lambda i: state_event(i, "available")),
    ("enforce", "failed", lambda i: state_event(i, "failed")),
    ("cleanup", "DeregisterImage", deregister_event),
    ("cleanup", "DeregisterImage with DeleteAssociatedSnapshots", lambda i: deregister_event(i, HOME, True)),
    ("cleanup", "deregistered", lambda i: state_event(i, "deregistered")),
    ("replicate", "approval", approval),
    ("replicate", "available", lambda i: state_event(i, "available")),
    ("replicate", "failed", lambda i: state_event(i, "failed")),
    ("replicate", "deregistered", lambda i: state_event(i, "deregistered")),
    ("replicate", "replica available in another region", lambda i: state_event(i, "available", region=EU)),
]  # fmt: skip


@pytest.mark.parametrize(("function", "what", "make"), EVENTS, ids=[f"{f}: {w}" for f, w, _ in EVENTS])
def test_an_event_naming_an_ami_that_never_existed_creates_no_item(
    replicating: str, lambdas: dict[str, Any], function: str, what: str, make: Callable[[str], dict[str, Any]]
) -> None:
    # Given an empty inventory
    assert items() == 0

    # When events name AMIs that EC2 does not know
    for image_id in UNKNOWN:
        lambdas[function](make(image_id))

    # Then the inventory is still empty
    assert items() == 0


def test_copy_jobs_for_an_ami_that_never_existed_create_no_item(replicating: str, lambdas: dict[str, Any]) -> None:
    sqs = boto3.client("sqs", region_name=HOME)
    for image_id in UNKNOWN:
        sqs.send_message(QueueUrl=replicating, MessageBody=json.dumps(copy_job(image_id)))

    result = lambdas["copy"]({"Records": receive_as_sqs_event_records(sqs, replicating)})

    assert result["batchItemFailures"] == []
    assert items() == 0


def test_a_failed_state_change_still_records_on_an_existing_item(
    estate: Estate, replicating: str, lambdas: dict[str, Any]
) -> None:
    # Given an AMI with an inventory item, gone from EC2 by the time its `failed` state change is handled
    image_id, _ = estate.create_image("payments-api-al2023-1.4.0")
    lambdas["enforce"](state_event(image_id, "available"))
    estate.ec2().deregister_image(ImageId=image_id)
    event = state_event(image_id, "failed")
    event["detail"]["ErrorMessage"] = "Client.InternalError"

    lambdas["enforce"](event)

    item = estate.inventory_item(image_id)
    assert item is not None
    assert (item["state"], item["error_message"]) == ("failed", "Client.InternalError")


def test_an_ami_older_than_the_deployment_is_still_cleaned_up(
    estate: Estate, replicating: str, lambdas: dict[str, Any]
) -> None:
    # Given no inventory item, and a snapshot whose description names a deregistered AMI (it predates the stack)
    image_id = "ami-0123456789abcdef0"
    ec2 = estate.ec2()
    volume = ec2.create_volume(Size=8, AvailabilityZone=f"{HOME}a")["VolumeId"]
    description = f"Created by CreateImage(i-0123456789abcdef0) for {image_id} from vol-0123456789abcdef0"
    snapshot_id = ec2.create_snapshot(VolumeId=volume, Description=description)["SnapshotId"]

    result = lambdas["cleanup"](state_event(image_id, "deregistered"))

    # Then it is real: an item records the clean-up, and the snapshot is gone
    assert result["images"][0]["result"] == "cleaned"
    item = estate.inventory_item(image_id)
    assert item is not None
    assert item["cleanup_snapshots"][snapshot_id]["outcome"] == "deleted"
