"""At-least-once delivery: a whole scenario's event log, replayed in order, shuffled, and with the idempotency store
emptied, ends in the same state as the first delivery, with no second copy, notice, delete, deregistration or
remediation.

The scenario (enforce mode with the disable remediation, clean-up deleting, replication to two regions): a compliant
AMI is created, becomes available, is approved, copied to both regions (the copy jobs' batch) and its replicas become
available; a second AMI is created without its tags (disabled), fixed by a tag change (re-enabled), deregistered
(both the CloudTrail call and the state change) and its snapshot cleaned up; a third AMI with a bad name stays
disabled. Each delivery is logged as EventBridge (or the copy queue's mapping) made it: one event, with its id, to
every function whose rule it matches.

Replaying the log with the idempotency records in place answers every EventBridge delivery from its record (one
conditional PutItem each, no other call). With the store emptied (as if every record had expired), the handlers run
again on every event, in any order, and the effects hold by design: AWS's state is re-read, writes are conditional,
CopyImage carries a client token.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.client
import pytest
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyPersistenceLayerError
from botocore.exceptions import ClientError

from ami_governance.models.policy import GovernancePolicy, parse_policy
from tests.integration.conftest import HOME, deregister_event
from tests.integration.replication_support import (
    AP,
    APPROVER_ROLE,
    EU,
    GOOD_NAME,
    GOOD_TAGS,
    P,
    Replication,
    approval_event,
    replication_policy,
)
from tests.support import (
    IDEMPOTENCY_TABLE,
    create_image_event,
    empty_the_idempotency_store,
    fail_lambda_calls,
    recording_api_calls,
    state_event,
    tags_event,
)

# The scenario takes some 30 deliveries on moto, and each test runs it once before replaying it.
pytestmark = [pytest.mark.integration, pytest.mark.slow]

# The calls that change something: none of them may happen again on a replay.
EFFECTS = {
    "ec2": {
        "CopyImage",
        "CreateTags",
        "DeleteTags",
        "DeleteSnapshot",
        "DeregisterImage",
        "DisableImage",
        "EnableImage",
        "EnableImageDeprecation",
        "ModifyImageAttribute",
    },
    "sns": {"Publish"},
    "sqs": {"SendMessage", "SendMessageBatch"},
}
SEEDS = [1, 2, 3]
FIXED_NAME = "payments-api-al2023-2.0.0"
BAD_NAME = "Not A Conforming Name"


@dataclass
class Delivery:
    function: str  # enforce, replicate, cleanup (EventBridge) or copy (the copy queue's mapping)
    event: dict[str, Any]


@dataclass
class Scenario:
    replication: Replication
    cleanup: Callable[[dict[str, Any]], dict[str, Any]]
    log: list[Delivery] = field(default_factory=list)
    images: dict[str, str] = field(default_factory=dict)

    def deliver(self, event: dict[str, Any], *functions: str) -> None:
        for function in functions:
            self.log.append(Delivery(function, event))
            self.handler(function)(event)

    def handler(self, function: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
        return {
            "enforce": self.replication.enforce,
            "replicate": self.replication.replicate,
            "cleanup": self.cleanup,
            "copy": self.replication.copy,
        }[function]

    def replay(self, deliveries: list[Delivery]) -> Replayed:
        """Deliver again; the AWS calls the functions made."""
        replayed = Replayed()
        original = botocore.client.BaseClient._make_api_call

        def recorded(client: Any, operation: str, params: Any) -> Any:
            service = client.meta.service_model.service_name
            replayed.calls[f"{service}:{operation}"] += 1
            if operation in EFFECTS.get(service, set()):
                replayed.effects.append((f"{service}:{operation}", params))
            return original(client, operation, params)

        botocore.client.BaseClient._make_api_call = recorded  # type: ignore[method-assign]
        try:
            for delivery in deliveries:
                self.handler(delivery.function)(delivery.event)
        finally:
            botocore.client.BaseClient._make_api_call = original  # type: ignore[method-assign]
        return replayed


@dataclass
class Replayed:
    calls: Counter[str] = field(default_factory=Counter)
    effects: list[tuple[str, Any]] = field(default_factory=list)

    def changes(self) -> list[tuple[str, Any]]:
        """The effect calls that are not a re-assertion of what AWS already holds: enforce stamps an AMI's snapshots
        with its id on every `available` event (the same value again), and replicate shares a replica on every
        `available` event (EC2 keeps one launch permission per account)."""
        return [(operation, params) for operation, params in self.effects if not _reasserts(operation, params)]


def _reasserts(operation: str, params: Any) -> bool:
    if operation == "ec2:CreateTags":
        return all(r.startswith("snap-") for r in params["Resources"]) and [t["Key"] for t in params["Tags"]] == [
            f"{P}image-id"
        ]
    if operation == "ec2:ModifyImageAttribute":
        return set(params) == {"ImageId", "LaunchPermission"} and set(params["LaunchPermission"]) == {"Add"}
    return False


def replay_policy(policy_with: Callable[..., GovernancePolicy]) -> GovernancePolicy:
    document = json.loads(replication_policy(policy_with).model_dump_json())
    document["mode"] = "enforce"
    document["remediation"] = {**document["remediation"], "action": "disable"}
    document["cleanup"] = {**document["cleanup"], "dry_run": False}
    return parse_policy(document)


def run_scenario(replication: Replication, cleanup: Callable[..., Any], policy: GovernancePolicy) -> Scenario:
    estate, ec2 = replication.estate, replication.estate.ec2()
    estate.set_policy(policy)
    scenario = Scenario(replication, cleanup)

    # A compliant AMI: created, available, approved, copied, its replicas available
    good, instance = estate.create_image(GOOD_NAME, GOOD_TAGS)
    scenario.deliver(create_image_event(good, instance, name=GOOD_NAME, tags=GOOD_TAGS), "enforce")
    scenario.deliver(state_event(good), "enforce", "replicate")
    ec2.create_tags(Resources=[good], Tags=[{"Key": f"{P}approved", "Value": "true"}])
    scenario.deliver(approval_event(good, APPROVER_ROLE, "approval-of-good"), "enforce", "replicate")
    records = replication.jobs()
    assert len(records) == 2
    scenario.log.append(Delivery("copy", {"Records": records}))
    replication.run_copies(records)
    for region in (EU, AP):
        [replica] = replication.replicas(good, region)
        scenario.images[f"replica-{region}"] = replica["ImageId"]
        scenario.deliver(state_event(replica["ImageId"], region=region), "enforce", "replicate")

    # An AMI created without its tags: disabled; its tags fixed: enabled again; deregistered: snapshot cleaned up
    fixed, instance = estate.create_image(FIXED_NAME)
    scenario.deliver(create_image_event(fixed, instance, name=FIXED_NAME, tags={}), "enforce")
    scenario.deliver(state_event(fixed), "enforce", "replicate")
    ec2.create_tags(Resources=[fixed], Tags=[{"Key": k, "Value": v} for k, v in GOOD_TAGS.items()])
    scenario.deliver(tags_event("create_tags_approval", [fixed], GOOD_TAGS), "enforce")
    assert image_state(replication, fixed) == "available"
    scenario.deliver(state_event(fixed), "enforce", "replicate")  # EnableImage's state change
    scenario.images["fixed-snapshots"] = ",".join(snapshots_of(replication, fixed))
    ec2.deregister_image(ImageId=fixed)
    scenario.deliver(deregister_event(fixed), "cleanup")
    scenario.deliver(state_event(fixed, "deregistered"), "cleanup")

    # An AMI whose name breaks the convention: disabled, and stays so
    bad, instance = estate.create_image(BAD_NAME, GOOD_TAGS)
    scenario.deliver(create_image_event(bad, instance, name=BAD_NAME, tags=GOOD_TAGS), "enforce")
    scenario.deliver(state_event(bad), "enforce", "replicate")

    scenario.images.update(good=good, fixed=fixed, bad=bad)
    return scenario


def image_state(replication: Replication, image_id: str, region: str = HOME) -> str | None:
    images = replication.estate.ec2(region).describe_images(ImageIds=[image_id], IncludeDisabled=True)["Images"]
    return str(images[0]["State"]) if images else None


def snapshots_of(replication: Replication, image_id: str) -> list[str]:
    [image] = replication.estate.ec2().describe_images(ImageIds=[image_id])["Images"]
    return sorted(m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"] if "Ebs" in m)


def final_state(scenario: Scenario) -> dict[str, Any]:
    """Everything the governance wrote: AMI states and tags, replicas, snapshots, inventory items."""
    replication, images = scenario.replication, scenario.images
    located = {
        "good": (images["good"], HOME),
        "fixed": (images["fixed"], HOME),
        "bad": (images["bad"], HOME),
        "replica-eu": (images[f"replica-{EU}"], EU),
        "replica-ap": (images[f"replica-{AP}"], AP),
    }
    state: dict[str, Any] = {}
    for name, (image_id, region) in located.items():
        state[name] = {
            "state": image_state(replication, image_id, region),
            "tags": replication.estate.tags_of(image_id, region),
            "inventory": without_handling_times(replication.estate.inventory_item(image_id, region)),
        }
    state["replicas"] = {region: len(replication.replicas(images["good"], region)) for region in (EU, AP)}
    state["home snapshots"] = sorted(
        s["SnapshotId"] for s in replication.estate.ec2().describe_snapshots(OwnerIds=["self"])["Snapshots"]
    )
    return state


# When a handling last wrote the item, or settled a replica: a handling again (with no idempotency record to stop it)
# writes them anew, and everything else as it was.
HANDLING_TIMES = {"recorded_at", "available_at"}


def without_handling_times(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_handling_times(v) for k, v in value.items() if k not in HANDLING_TIMES}
    return value


def differences(before: Any, after: Any, path: str = "") -> list[str]:
    """Where two final states differ, one line per differing leaf."""
    if isinstance(before, dict) and isinstance(after, dict):
        return [
            line
            for key in sorted(set(before) | set(after), key=str)
            for line in differences(before.get(key), after.get(key), f"{path}/{key}")
        ]
    return [] if before == after else [f"{path}: {before!r} -> {after!r}"]


@pytest.fixture
def scenario(
    replication: Replication,
    invoke_cleanup: Callable[[dict[str, Any]], dict[str, Any]],
    policy_with: Callable[..., GovernancePolicy],
) -> tuple[Scenario, dict[str, Any], int]:
    """The scenario run once: its log, its final state, and how many notices it sent."""
    with recording_api_calls() as api:
        scenario = run_scenario(replication, invoke_cleanup, replay_policy(policy_with))
    calls = api.by_operation()
    # What the first delivery did, as the replays must leave it: two copies, one AMI re-enabled, two disabled
    # (one of them later fixed), one snapshot deleted, and the product deregistered nothing itself.
    assert calls["ec2:CopyImage"] == 2
    assert calls["ec2:DisableImage"] == 2
    assert calls["ec2:EnableImage"] == 1
    assert calls["ec2:DeleteSnapshot"] == len(scenario.images["fixed-snapshots"].split(",")) >= 1
    assert calls["ec2:DeregisterImage"] == 1  # the test's own call
    state = final_state(scenario)
    assert state["replicas"] == {EU: 1, AP: 1}
    assert (state["good"]["state"], state["fixed"]["state"], state["bad"]["state"]) == ("available", None, "disabled")
    assert state["good"]["tags"][f"{P}compliance"] == "compliant"
    assert state["bad"]["tags"][f"{P}remediation"] == "disabled"
    assert not set(scenario.images["fixed-snapshots"].split(",")) & set(state["home snapshots"])
    notices = len(replication.estate.notices())
    assert notices >= 4
    return scenario, state, notices


def event_driven(log: list[Delivery]) -> int:
    return sum(1 for delivery in log if delivery.function != "copy")


def test_the_log_replayed_twice_in_order_is_answered_from_the_records(
    scenario: tuple[Scenario, dict[str, Any], int],
) -> None:
    # Given the scenario delivered once
    run, state, _ = scenario

    for _ in range(2):
        # When every delivery of its log is made again, in order
        replayed = run.replay(run.log)

        # Then each EventBridge delivery costs one conditional write and nothing else; the copy batch (which has
        # no record, by design) reads and finds its regions claimed; nothing is changed, nobody notified
        assert replayed.calls["dynamodb:PutItem"] == event_driven(run.log)
        assert replayed.effects == []
        assert not (changed := differences(state, final_state(run))), "\n".join(changed)
        assert run.replication.estate.notices() == []


def test_the_log_replayed_shuffled_changes_nothing(scenario: tuple[Scenario, dict[str, Any], int]) -> None:
    # Given the scenario delivered once
    run, state, _ = scenario

    for seed in SEEDS:
        # When its log is delivered again in a random order
        shuffled = list(run.log)
        random.Random(seed).shuffle(shuffled)
        replayed = run.replay(shuffled)

        # Then every EventBridge delivery is answered from its record, nothing is changed and nobody is notified
        assert replayed.calls["dynamodb:PutItem"] == event_driven(run.log)
        assert replayed.effects == []
        assert not (changed := differences(state, final_state(run))), "\n".join(changed)
        assert run.replication.estate.notices() == []


def test_the_log_replayed_without_the_records_changes_nothing(scenario: tuple[Scenario, dict[str, Any], int]) -> None:
    # Given the scenario delivered once
    run, state, _ = scenario

    for seed in [None, None, *SEEDS]:
        # When every idempotency record is gone (expired, or the table emptied), and the log is delivered again, in
        # order (twice) or shuffled
        assert empty_the_idempotency_store() == event_driven(run.log)
        deliveries = list(run.log)
        if seed is not None:
            random.Random(seed).shuffle(deliveries)
        replayed = run.replay(deliveries)

        # Then every handler runs again, and by design changes nothing: no copy, notice, delete, deregistration,
        # remediation or tag write (only re-assertions of what AWS already holds)
        assert replayed.calls["dynamodb:UpdateItem"] >= event_driven(run.log)
        assert replayed.changes() == []
        assert not (changed := differences(state, final_state(run))), "\n".join(changed)
        assert run.replication.estate.notices() == []


# ---- the idempotency store's own failures ---------------------------------------------------------------------


def test_a_failing_store_fails_the_invocation_before_any_effect_and_the_retry_does_the_work(
    estate: Any, invoke: Callable[[dict[str, Any]], dict[str, Any]]
) -> None:
    # Given a non-compliant AMI's CreateImage event, and the idempotency table throttling the claim
    image_id, instance_id = estate.create_image("test image")
    event = create_image_event(image_id, instance_id, name="test image")
    fail_lambda_calls("dynamodb", HOME, "PutItem", "ProvisionedThroughputExceededException")

    # When it is delivered, the invocation fails (Lambda retries it, then dead-letters it) and nothing was done
    with recording_api_calls() as api, pytest.raises(IdempotencyPersistenceLayerError):
        invoke(event)
    assert api.calls == []
    assert f"{P}compliance" not in estate.tags_of(image_id)

    # When Lambda retries it, the work is done once
    invoke(event)
    assert estate.tags_of(image_id)[f"{P}compliance"] == "non-compliant"
    assert len(estate.notices()) == 1


@pytest.mark.parametrize("function", ["enforce", "cleanup", "replicate"])
def test_an_invocation_that_raises_drops_its_claim_so_that_the_retry_runs(
    replication: Replication, invoke_cleanup: Callable[[dict[str, Any]], dict[str, Any]], function: str
) -> None:
    # Given an event for the function, and an AWS failure its service raises on (to be retried)
    estate = replication.estate
    if function == "cleanup":
        image_id, _ = estate.create_image(FIXED_NAME, GOOD_TAGS)
        replication.enforce(state_event(image_id))
        estate.ec2().deregister_image(ImageId=image_id)
        event, handler = deregister_event(image_id), invoke_cleanup
        fail_lambda_calls("dynamodb", HOME, "GetItem", "InternalServerError")
    else:
        image_id = replication.compliant_image()
        estate.ec2().create_tags(Resources=[image_id], Tags=[{"Key": f"{P}approved", "Value": "true"}])
        event = approval_event(image_id, APPROVER_ROLE, "approval")
        handler = replication.enforce if function == "enforce" else replication.replicate
        fail_lambda_calls("ec2", HOME, "DescribeImages", "InternalError")

    # When it is delivered, the invocation raises and its in-progress record is deleted (not asserted through
    # recording_api_calls: tests/iam would then take the calls for the test's own and not count them as used)
    earlier = records_of(function)  # enforce judged the AMI when it was made
    with pytest.raises(ClientError):
        handler(event)
    assert records_of(function) == earlier

    # Then the retry is not refused as in progress: it runs, and records its answer
    handler(event)
    assert sorted(records_of(function)) == sorted([*earlier, "COMPLETED"])


def records_of(function: str) -> list[str]:
    """The status of each idempotency record of this function's work (its key names the wiring function)."""
    items = boto3.client("dynamodb", region_name=HOME).scan(TableName=IDEMPOTENCY_TABLE)["Items"]
    return [item["status"]["S"] for item in items if f".wiring.{function}_event#" in item["id"]["S"]]


def test_a_repeated_approval_of_a_round_under_way_keeps_the_rounds_answer(replication: Replication) -> None:
    # Given an approved AMI whose copies are made and available
    source = replication.compliant_image()
    approval = approval_event(source, APPROVER_ROLE, "approval-once")
    replication.estate.ec2().create_tags(Resources=[source], Tags=[{"Key": f"{P}approved", "Value": "true"}])
    replication.replicate(approval)
    replication.run_copies()
    for region in (EU, AP):
        [replica] = replication.replicas(source, region)
        replication.settle(replica["ImageId"], region)
    answer = replication.estate.tags_of(source)[f"{P}approval"]

    # When the same approval arrives again as another event (CloudTrail's duplicate, or after its record expired)
    with recording_api_calls() as api:
        outcome = replication.replicate({**approval, "id": "another-delivery-of-the-approval"})

    # Then nothing is queued, and the round's answer is not replaced by "nothing new to copy"
    assert outcome["images"][0]["reason"] == "repeated delivery of this round's approval"
    assert [op for op in api.operations("ec2") if op != "DescribeImages"] == []
    assert api.operations("sqs") == []
    assert replication.estate.tags_of(source)[f"{P}approval"] == answer
