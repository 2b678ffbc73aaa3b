"""The inventory's named operations: each conditional write refuses what it guards against.

Every case runs twice, against DynamoDB on moto (adapters/inventory.py) and against the in-memory FakeInventory
the services' unit tests use, so that the fake cannot drift from the real conditions.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from ami_governance.adapters.inventory import Inventory
from ami_governance.models.lineage import ApprovalRecord, ReplicaSettlement, ReplicaState, RoundPlan
from tests.fakes import FakeInventory
from tests.integration.conftest import HOME, TABLE

pytestmark = pytest.mark.integration

SOURCE = "ami-0aaaaaaaaaaaaaaa1"
EU, AP = "eu-west-1", "ap-southeast-2"
REPLICA = "ami-0bbbbbbbbbbbbbbb1"
EARLY, NOW, LATER = "2030-01-01T00:00:00Z", "2030-01-01T00:05:00Z", "2030-01-01T00:10:00Z"
APPROVAL = ApprovalRecord("approved", "arn:aws:iam::123456789012:role/AmiApprover", EARLY, "approval-1", "1", "n")


@pytest.fixture(params=["dynamodb", "fake"])
def inventory(request: pytest.FixtureRequest) -> Any:
    if request.param == "fake":
        return FakeInventory()
    request.getfixturevalue("estate")  # moto, with the inventory table
    return Inventory(TABLE, HOME)


def queue(inventory: Any, generations: dict[str, int] | None = None) -> None:
    inventory.prepare_round(SOURCE, HOME)
    assert inventory.queue_round(SOURCE, HOME, RoundPlan(APPROVAL, [EU, AP], generations or {EU: 0}, {}))


def entry(inventory: Any, target: str = EU) -> dict[str, Any]:
    return dict(inventory.get(SOURCE, HOME)["replicas"][target])


def claim(inventory: Any, owner: str, now: str = NOW, generation: int = 0) -> bool:
    return bool(inventory.claim_copy(SOURCE, HOME, EU, generation, owner, now, lease_until=LATER))


def test_a_queued_round_records_the_approval_and_one_entry_per_queued_region(inventory: Any) -> None:
    queue(inventory, {EU: 0, AP: 2})

    item = inventory.get(SOURCE, HOME)
    assert (item["approval_status"], item["approved_by"], item["replication_round"]) == (
        "approved", APPROVAL.approved_by, "approval-1"
    )  # fmt: skip
    assert item["replication_targets"] == [EU, AP]
    assert item["replicas"][AP] == {
        "state": "queued", "queued_at": EARLY, "approval_event_id": "approval-1", "generation": 2
    }  # fmt: skip


def test_a_round_is_planned_on_the_entries_as_read(inventory: Any) -> None:
    # Given a round planned on the entries read before a copy worker claimed one of them
    queue(inventory)
    read = inventory.get(SOURCE, HOME)["replicas"]
    assert claim(inventory, "worker-a")

    # When another delivery of the approval writes its plan
    again = inventory.queue_round(SOURCE, HOME, RoundPlan(APPROVAL, [EU], {EU: 0}, read))

    # Then the write is refused and the claim stands
    assert again is False
    assert entry(inventory)["owner"] == "worker-a"
    # and a plan for a region that appeared meanwhile is refused too
    assert inventory.queue_round(SOURCE, HOME, RoundPlan(APPROVAL, [EU], {EU: 0}, {})) is False


def test_a_second_claim_of_the_same_copy_is_refused_until_its_lease_runs_out(inventory: Any) -> None:
    queue(inventory)

    assert claim(inventory, "worker-a")
    assert not claim(inventory, "worker-b")  # worker-a holds it until LATER
    assert entry(inventory)["owner"] == "worker-a"

    # A claim whose worker died before CopyImage answered is taken over once its lease has run out.
    assert claim(inventory, "worker-b", now="2030-01-01T00:11:00Z")
    assert (entry(inventory)["state"], entry(inventory)["owner"]) == ("copying", "worker-b")


def test_a_claim_for_another_generation_is_refused(inventory: Any) -> None:
    queue(inventory)

    assert not claim(inventory, "worker-a", generation=1)
    assert entry(inventory)["state"] == "queued"


def test_only_the_claims_owner_releases_it(inventory: Any) -> None:
    queue(inventory)
    assert claim(inventory, "worker-a")

    assert not inventory.release_copy(SOURCE, HOME, EU, "worker-b")
    assert entry(inventory)["state"] == "copying"
    assert inventory.release_copy(SOURCE, HOME, EU, "worker-a")
    assert entry(inventory)["state"] == "queued"
    assert claim(inventory, "worker-b")


def test_a_recorded_replica_belongs_to_its_claim_for_good(inventory: Any) -> None:
    queue(inventory)
    assert claim(inventory, "worker-a")

    assert not inventory.record_copy(SOURCE, HOME, EU, "worker-b", REPLICA, NOW, adopted=False)
    assert inventory.record_copy(SOURCE, HOME, EU, "worker-a", REPLICA, NOW, adopted=True)
    assert inventory.record_copy(SOURCE, HOME, EU, "worker-a", REPLICA, NOW, adopted=False)  # a repeat
    assert not inventory.record_copy(SOURCE, HOME, EU, "worker-a", "ami-0ccccccccccccccc1", NOW, adopted=False)

    recorded = entry(inventory)
    assert (recorded["image_id"], recorded["requested_at"], recorded["adopted"]) == (REPLICA, NOW, True)
    # Once a replica is recorded, the claim is neither released nor taken over, whatever the lease says.
    assert not inventory.release_copy(SOURCE, HOME, EU, "worker-a")
    assert not claim(inventory, "worker-b", now="2030-01-01T00:11:00Z")


def test_a_replica_is_settled_only_while_its_entry_names_it(inventory: Any) -> None:
    queue(inventory)
    assert claim(inventory, "worker-a")
    assert inventory.record_copy(SOURCE, HOME, EU, "worker-a", REPLICA, NOW, adopted=False)

    other = inventory.settle_replica(
        SOURCE, HOME, ReplicaSettlement(EU, "ami-0ccccccccccccccc1", ReplicaState.AVAILABLE, LATER)
    )
    without = inventory.settle_replica(SOURCE, HOME, ReplicaSettlement(EU, None, ReplicaState.FAILED, LATER, "refused"))
    settled = inventory.settle_replica(SOURCE, HOME, ReplicaSettlement(EU, REPLICA, ReplicaState.AVAILABLE, LATER))

    assert (other, without) == (None, None)
    assert settled is not None
    assert (settled["replicas"][EU]["state"], settled["replicas"][EU]["available_at"]) == ("available", LATER)


def test_a_copy_that_never_started_is_settled_without_a_replica(inventory: Any) -> None:
    queue(inventory)
    assert claim(inventory, "worker-a")

    settled = inventory.settle_replica(
        SOURCE, HOME, ReplicaSettlement(EU, None, ReplicaState.FAILED, LATER, "InvalidParameter: x")
    )

    assert settled is not None
    assert settled["replicas"][EU]["error"] == "InvalidParameter: x"
    assert (
        inventory.settle_replica(SOURCE, HOME, ReplicaSettlement(AP, None, ReplicaState.FAILED, LATER)) is None
    )  # no entry


def test_only_the_claims_owner_withdraws_its_copy(inventory: Any) -> None:
    queue(inventory)
    assert claim(inventory, "worker-a")

    assert inventory.withdraw_replica(SOURCE, HOME, EU, "worker-b", LATER) is None
    item = inventory.withdraw_replica(SOURCE, HOME, EU, "worker-a", LATER)

    assert item is not None
    assert (item["replicas"][EU]["state"], item["replicas"][EU]["withdrawn_at"]) == ("withdrawn", LATER)


def test_a_round_is_announced_once_unless_the_announcement_is_released(inventory: Any) -> None:
    queue(inventory)

    assert inventory.claim_announcement(SOURCE, HOME, "approval-1")
    assert not inventory.claim_announcement(SOURCE, HOME, "approval-1")
    inventory.release_announcement(SOURCE, HOME)
    assert inventory.claim_announcement(SOURCE, HOME, "approval-1")
    assert inventory.claim_announcement(SOURCE, HOME, "approval-2")  # the next round


def test_none_inside_a_map_is_stored_as_null_not_as_the_string_none(estate: Any) -> None:
    # Given a rejection whose caller CloudTrail did not name
    Inventory(TABLE, HOME).record(SOURCE, HOME, {"approval_rejection": {"by": None, "reason": "not allowed"}})

    # Then DynamoDB holds NULL, and the item reads back None
    raw = boto3.client("dynamodb", region_name=HOME).get_item(
        TableName=TABLE, Key={"image_id": {"S": SOURCE}, "region": {"S": HOME}}
    )["Item"]
    assert raw["approval_rejection"]["M"]["by"] == {"NULL": True}
    assert estate.inventory_item(SOURCE)["approval_rejection"] == {"by": None, "reason": "not allowed"}
