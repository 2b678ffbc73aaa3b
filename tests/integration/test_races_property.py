"""Property: whatever people do to the same AMIs (required tags, the approval tag as approvers and as others, the
protection tag, deregistration, the policy's mode) and however the resulting events reach the Lambdas (in any
order, late — after later changes already hold in AWS —, twice, and two handler invocations at once in threads),
the end state agrees with the AMIs' final tags:

- a registered AMI's verdict tag is the verdict of its final tags, and the inventory's copy of it and of its
  protection agree with AWS;
- never two replicas in a region; a replica only of an AMI an approver approved while it carried the approval
  tag, was compliant and available; and one in each target region when such an approval was handled and the tag
  stayed on until the end (README "Replication": copies already made stay when the tag goes);
- a deregistered AMI's snapshots are deleted only if it was not protected, and are deleted if it never was;
- an AMI protected from the start is never disabled, and keeps its snapshots when deregistered.

The model of AWS is moto (with the emulator's extensions); the model of EventBridge and SQS is this file: each
change enqueues the events AWS would send, and the generated steps decide when each is delivered.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from ami_governance.adapters.inventory import Inventory
from ami_governance.models.policy import GovernancePolicy
from ami_governance.services import wiring
from tests.integration.conftest import (
    ACCOUNT,
    HOME,
    PUBLIC_AMI,
    create_image_event,
    deregister_event,
    state_event,
    tags_event,
)
from tests.integration.replication_support import approval_event
from tests.support import (
    INVENTORY_TABLE,
    POLICY_PARAMETER,
    FakeLambdaContext,
    create_home_resources,
    receive_as_sqs_event_records,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

P = "ami-governance:"
EU = "eu-west-1"
APPROVED = f"{P}approved"
PROTECTED = f"{P}protected"
APPROVER = f"arn:aws:iam::{ACCOUNT}:role/AmiApprover"
OTHER = f"arn:aws:iam::{ACCOUNT}:role/Developer"
NAME = "payments-api-al2023-1.4.{}"
GOOD_TAGS = {"Owner": "team-payments", "Environment": "prod", "CostCenter": "CC-1234", "Application": "payments-api"}
VARIED = ("Owner", "CostCenter")  # the required tags the steps add and remove
QUEUE = "copy-jobs"
AMIS = 2
# Raised for Lambda (or SQS) to deliver again later: the services' documented "retry me" answers.
# What a service raises to be delivered again, and what Powertools raises for a second delivery of an envelope
# whose first is still being handled (Lambda retries it; by then its record answers it).
RETRIED = (
    "CleanupInProgress",
    "ConcurrentApproval",
    "ReplicaNotRecordedYet",
    "VerdictNotRecordedYet",
    "IdempotencyAlreadyInProgressError",
)

ami = st.integers(0, AMIS - 1)
step = st.one_of(
    st.tuples(st.just("tag"), ami, st.sampled_from(VARIED), st.booleans()),
    st.tuples(st.just("approve"), ami, st.booleans()),  # True: by an approver
    st.tuples(st.just("unapprove"), ami),
    st.tuples(st.just("protect"), ami, st.booleans()),
    st.tuples(st.just("deregister"), ami),
    st.tuples(st.just("mode"), st.sampled_from(["audit", "enforce"])),
    st.tuples(st.just("deliver"), st.integers(0, 20)),
    st.tuples(st.just("deliver-together"), st.integers(0, 20), st.integers(0, 20)),
    st.tuples(st.just("deliver-twice-at-once"), st.integers(0, 20)),
    st.tuples(st.just("copy"), st.booleans()),  # True: the same batch to two workers at once
    st.tuples(st.just("settle"), st.just(0)),
)
scenarios = st.tuples(st.lists(st.booleans(), min_size=AMIS, max_size=AMIS), st.lists(step, min_size=1, max_size=14))


@dataclass
class Truth:
    """What holds in AWS for one AMI at a moment (read from moto, not from the product)."""

    tags: dict[str, str]
    state: str

    @property
    def compliant(self) -> bool:
        return all(key in self.tags for key in VARIED)


@dataclass
class Delivery:
    function: str  # enforce | replicate | cleanup
    event: dict[str, Any]
    image: int
    approver: bool = False  # an approval event whose caller is an approver


@dataclass
class History:
    protected_throughout: list[bool]
    approvals_handled: list[list[tuple[int, Truth]]] = field(default_factory=lambda: [[] for _ in range(AMIS)])
    approval_removed_at: list[int] = field(default_factory=lambda: [-1] * AMIS)
    protected_when_deregistered: list[bool | None] = field(default_factory=lambda: [None] * AMIS)
    disabled_ever: list[bool] = field(default_factory=lambda: [False] * AMIS)
    ever_protected: list[bool] = field(default_factory=lambda: [False] * AMIS)
    # Whether the inventory knew the AMI protected when its clean-up first ran: the clean-up reads protection there
    # (EC2 no longer shows a deregistered AMI's tags), so a protection tag whose event comes after the deregistration's
    # is the known race of the README's Known limits, pinned by the xfail below, not what this property checks.
    protection_known_at_cleanup: list[bool | None] = field(default_factory=lambda: [None] * AMIS)
    clock: int = 0


class World:
    def __init__(self, policy: GovernancePolicy, born_protected: list[bool]) -> None:
        from handlers.cleanup import handler as cleanup
        from handlers.copy import handler as copy
        from handlers.enforce import handler as enforce
        from handlers.replicate import handler as replicate

        self.handlers: dict[str, Callable[..., Any]] = {
            "enforce": enforce,
            "replicate": replicate,
            "cleanup": cleanup,
            "copy": copy,
        }
        self.policy = policy
        self.ec2 = boto3.client("ec2", region_name=HOME)
        self.ec2_eu = boto3.client("ec2", region_name=EU)
        self.sqs = boto3.client("sqs", region_name=HOME)
        self.queue_url = self.sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
        self.drop_queued_jobs()  # an earlier example's
        self.pending: list[Delivery] = []
        self.history = History(protected_throughout=list(born_protected), ever_protected=list(born_protected))
        self.images: list[str] = []
        self.snapshots: list[list[str]] = []
        self.events = 0
        for number in range(AMIS):
            instance = self.ec2.run_instances(ImageId=PUBLIC_AMI, MinCount=1, MaxCount=1)["Instances"][0]
            tags = {**GOOD_TAGS, **({PROTECTED: "true"} if born_protected[number] else {})}
            image_id = self.ec2.create_image(
                InstanceId=instance["InstanceId"],
                Name=NAME.format(number),
                TagSpecifications=[
                    {"ResourceType": "image", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
                ],
            )["ImageId"]
            self.images.append(image_id)
            self.invoke(
                "enforce", create_image_event(image_id, instance["InstanceId"], name=NAME.format(number), tags=tags)
            )
            self.invoke("enforce", state_event(image_id, "available"))
            image = self.ec2.describe_images(ImageIds=[image_id])["Images"][0]
            self.snapshots.append([m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"] if "Ebs" in m])

    # ---- AWS's side: the change, and the events it causes -----------------------------------------------------

    def truth(self, number: int) -> Truth:
        images = self.ec2.describe_images(ImageIds=[self.images[number]], IncludeDisabled=True)["Images"]
        if not images or images[0]["State"] == "deregistered":
            return Truth({}, "deregistered")
        return Truth({t["Key"]: t["Value"] for t in images[0].get("Tags", [])}, images[0]["State"])

    def event_id(self) -> str:
        # Unique across scenarios too: they share one deployment, whose idempotency table answers a known envelope.
        self.events += 1
        return f"race-{uuid.uuid4().hex[:12]}-{self.events:04d}"

    def change_tags(self, number: int, tags: dict[str, str], delete: bool, caller: str | None = None) -> None:
        image_id = self.images[number]
        if self.truth(number).state == "deregistered":
            return
        if delete:
            self.ec2.delete_tags(Resources=[image_id], Tags=[{"Key": k} for k in tags])
        else:
            self.ec2.create_tags(Resources=[image_id], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
        if caller is not None:
            event = approval_event(image_id, caller, self.event_id())
        else:
            event = tags_event("create_tags_approval", [image_id], tags, "DeleteTags" if delete else "CreateTags")
            event["detail"]["eventID"] = self.event_id()
        self.pending.append(Delivery("enforce", event, number))
        if caller is not None:
            self.pending.append(Delivery("replicate", json.loads(json.dumps(event)), number, caller == APPROVER))

    def do(self, action: str, *arguments: Any) -> None:
        number = arguments[0] if arguments else 0
        if action == "tag":
            _, key, present = arguments
            self.change_tags(number, {key: GOOD_TAGS[key]}, delete=not present)
        elif action == "approve":
            self.change_tags(number, {APPROVED: "true"}, delete=False, caller=APPROVER if arguments[1] else OTHER)
        elif action == "unapprove":
            self.change_tags(number, {APPROVED: "true"}, delete=True)
            self.history.approval_removed_at[number] = self.history.clock
        elif action == "protect":
            self.change_tags(number, {PROTECTED: "true"}, delete=not arguments[1])
            if arguments[1]:
                self.history.ever_protected[number] = True
            else:
                self.history.protected_throughout[number] = False
        elif action == "deregister":
            truth = self.truth(number)
            if truth.state == "deregistered":
                return
            self.history.protected_when_deregistered[number] = PROTECTED in truth.tags
            self.ec2.deregister_image(ImageId=self.images[number])
            trail = deregister_event(self.images[number])
            trail["detail"]["eventID"] = self.event_id()
            change = state_event(self.images[number], "deregistered")
            change["id"] = self.event_id()
            self.pending += [
                Delivery("cleanup", trail, number),
                Delivery("cleanup", change, number),
                Delivery("replicate", json.loads(json.dumps(change)), number),
            ]
        elif action == "mode":
            document = json.loads(self.policy.model_dump_json())
            document["mode"] = arguments[0]
            boto3.client("ssm", region_name=HOME).put_parameter(
                Name=POLICY_PARAMETER, Value=json.dumps(document), Type="String", Overwrite=True
            )
            wiring.reset()
            modes_changed.append(arguments[0])
        self.history.clock += 1

    # ---- EventBridge's and SQS's side ----------------------------------------------------------------------------

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        return self.handlers[function](event, FakeLambdaContext(function_name=f"ami-governance-{function}"))

    def run(self, delivery: Delivery) -> bool:
        """One delivery; False when the service asked for it to be delivered again (it is put back)."""
        if delivery.approver:
            # What holds when an approver's approval is judged (read before the call: the judgement reads AWS at
            # its start).
            self.history.approvals_handled[delivery.image].append((self.history.clock, self.truth(delivery.image)))
        if delivery.function == "cleanup" and self.history.protection_known_at_cleanup[delivery.image] is None:
            item = Inventory(INVENTORY_TABLE, HOME).get(self.images[delivery.image], HOME) or {}
            self.history.protection_known_at_cleanup[delivery.image] = bool(item.get("protected"))
        try:
            self.invoke(delivery.function, delivery.event)
        except Exception as error:
            if type(error).__name__ not in RETRIED:
                raise
            return False
        finally:
            self.note_disabled()
        return True

    def deliver(self, *deliveries: Delivery) -> None:
        """Deliver these at once, one thread each; those asked to be retried go back on the queue."""
        if not deliveries:
            return
        if len(deliveries) == 1:
            done = [self.run(deliveries[0])]
        else:
            with ThreadPoolExecutor(len(deliveries)) as pool:
                done = list(pool.map(self.run, deliveries))
        for delivery, ok in zip(deliveries, done, strict=True):
            if not ok and delivery not in self.pending:
                self.pending.append(delivery)

    def take(self, index: int) -> Delivery | None:
        return self.pending.pop(index % len(self.pending)) if self.pending else None

    def copy(self, twice_at_once: bool) -> bool:
        records = receive_as_sqs_event_records(self.sqs, self.queue_url)
        if not records:
            return False
        batch = {"Records": records}
        runs = 2 if twice_at_once else 1
        with ThreadPoolExecutor(runs) as pool:
            answers = list(pool.map(lambda _: self.invoke("copy", batch), range(runs)))
        failed = {f["itemIdentifier"] for answer in answers for f in answer["batchItemFailures"]}
        for record in records:
            if record["messageId"] not in failed:
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=record["receiptHandle"])
        return True

    def settle(self) -> None:
        for replica in self.replicas_in_eu():
            with contextlib.suppress(*self.retried_errors()):
                self.invoke("replicate", state_event(replica["ImageId"], "available", region=EU))

    @staticmethod
    def retried_errors() -> tuple[type[BaseException], ...]:
        from ami_governance.services.lineage import ReplicaNotRecordedYet

        return (ReplicaNotRecordedYet,)

    @staticmethod
    def drop_queued_jobs() -> None:
        from moto.sqs.models import sqs_backends

        # (PurgeQueue is allowed once a minute)
        sqs_backends[ACCOUNT][HOME].queues[QUEUE]._messages.clear()

    @staticmethod
    def time_passes() -> None:
        from moto.sqs.models import sqs_backends

        for message in sqs_backends[ACCOUNT][HOME].queues[QUEUE]._messages:
            message.change_visibility(0)

    def note_disabled(self) -> None:
        for number in range(AMIS):
            if self.truth(number).state == "disabled":
                self.history.disabled_ever[number] = True

    def play(self, action: str, *arguments: Any) -> None:
        if action == "deliver":
            taken = self.take(arguments[0])
            if taken:
                self.deliver(taken)
        elif action == "deliver-together":
            first = self.take(arguments[0])
            second = self.take(arguments[1])
            self.deliver(*[d for d in (first, second) if d is not None])
        elif action == "deliver-twice-at-once":
            taken = self.take(arguments[0])
            if taken:
                self.deliver(taken, Delivery(taken.function, json.loads(json.dumps(taken.event)), taken.image))
        elif action == "copy":
            self.copy(arguments[0])
        elif action == "settle":
            self.settle()
        else:
            self.do(action, *arguments)

    def finish(self) -> None:
        """Everything still on its way is delivered, every copy job run and every replica settled."""
        for _round in range(20):
            while self.pending:
                self.deliver(self.pending.pop(0))
            self.time_passes()
            copied = self.copy(False)
            self.settle()
            if not self.pending and not copied:
                return
        raise AssertionError(f"deliveries still pending after 20 rounds: {self.pending}")

    # ---- what the tests read --------------------------------------------------------------------------------------

    def replicas_in_eu(self, number: int | None = None) -> list[dict[str, Any]]:
        sources = self.images if number is None else [self.images[number]]
        images = self.ec2_eu.describe_images(
            Owners=["self"], IncludeDisabled=True, Filters=[{"Name": "source-image-id", "Values": sources}]
        )["Images"]
        return [image for image in images if image["State"] != "deregistered"]

    def existing_snapshots(self) -> set[str]:
        return {s["SnapshotId"] for s in self.ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}


def check(world: World, steps: list[Any]) -> None:
    inventory = Inventory(INVENTORY_TABLE, HOME)
    history = world.history
    snapshots = world.existing_snapshots()
    for number, image_id in enumerate(world.images):
        truth = world.truth(number)
        replicas = world.replicas_in_eu(number)
        item = inventory.get(image_id, HOME) or {}
        where = f"AMI {number} after {steps}"
        assert len(replicas) <= 1, f"{len(replicas)} replicas in {EU}: {where}"
        allowed = [
            at
            for at, seen in history.approvals_handled[number]
            if APPROVED in seen.tags and seen.compliant and seen.state == "available"
        ]
        if replicas:
            assert allowed, f"a replica, but no approval was handled while approved, compliant and available: {where}"
        # README: the approval counts when the AMI's verdict tag says compliant as it is handled (and, since the tag
        # can lag a tag change, its current tags say so too).
        judged_compliant = [
            at for at, seen in history.approvals_handled[number]
            if at in allowed and seen.tags.get(f"{P}compliance") == "compliant"
        ]  # fmt: skip
        stays = [at for at in judged_compliant if at > history.approval_removed_at[number]]
        if stays and truth.state != "deregistered" and not history.disabled_ever[number]:
            assert replicas, f"approved while compliant and available, the tag stayed on, and no replica: {where}"
        if truth.state != "deregistered":
            expected = "compliant" if truth.compliant else "non-compliant"
            assert truth.tags.get(f"{P}compliance") == expected, f"verdict tag {truth.tags}: {where}"
            assert item.get("compliance") == expected, f"inventory verdict {item.get('compliance')}: {where}"
            assert item.get("protected") is (PROTECTED in truth.tags), f"inventory protection: {where}"
        else:
            own = set(world.snapshots[number])
            deleted = own - snapshots
            if history.protected_when_deregistered[number] and history.protection_known_at_cleanup[number]:
                assert not deleted, f"snapshots of an AMI protected when deregistered deleted: {where}"
            elif not history.ever_protected[number]:
                assert not own & snapshots, f"snapshots of an unprotected deregistered AMI kept: {where}"
            assert item.get("state") == "deregistered", f"inventory state {item.get('state')}: {where}"
        if history.protected_throughout[number]:
            assert not history.disabled_ever[number], f"a protected AMI was disabled: {where}"


def race_policy(default_policy: GovernancePolicy) -> GovernancePolicy:
    document = json.loads(default_policy.model_dump_json())
    document["governed_regions"] = [HOME, EU]
    document["approval"] = {"approvers": ["arn:aws:iam::*:role/AmiApprover"]}
    document["replication"] = {"regions": [EU]}
    document["remediation"] = {**document["remediation"], "action": "disable", "grace_period_days": 0}
    document["cleanup"] = {**document["cleanup"], "dry_run": False, "min_age_days": 0}
    return GovernancePolicy.model_validate(document)


EXAMPLES = int(os.environ.get("RACE_EXAMPLES", "20"))
explored: list[int] = []
modes_changed: list[str] = []


@pytest.fixture
def deployed(default_policy: GovernancePolicy, monkeypatch: pytest.MonkeyPatch) -> Iterator[GovernancePolicy]:
    """One deployment for all the examples (each makes AMIs of its own): building it again for every example
    would cost more than the example."""
    policy = race_policy(default_policy)
    with mock_aws():
        wiring.reset()
        resources = create_home_resources(policy.model_dump_json())
        monkeypatch.setenv("NOTIFICATION_TOPIC_ARN", resources.topic_arn)
        queue_url = boto3.client("sqs", region_name=HOME).create_queue(QueueName=QUEUE)["QueueUrl"]
        monkeypatch.setenv("COPY_QUEUE_URL", queue_url)
        serialised_client_creation(monkeypatch)
        yield policy
        wiring.reset()


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenario=scenarios)
@example(scenario=([False, False], [("tag", 0, "Owner", False), ("approve", 0, True), ("deliver", 2), ("copy", False)]))
def test_races_end_in_the_state_the_final_tags_say(deployed: GovernancePolicy, scenario: Any) -> None:
    born_protected, steps = scenario
    if modes_changed:
        # An earlier example switched the mode: this one starts from the policy as deployed.
        boto3.client("ssm", region_name=HOME).put_parameter(
            Name=POLICY_PARAMETER, Value=deployed.model_dump_json(), Type="String", Overwrite=True
        )
        wiring.reset()
        modes_changed.clear()
    world = World(deployed, born_protected)
    for action, *arguments in steps:
        world.play(action, *arguments)
    world.finish()
    check(world, steps)
    explored.append(len(steps))


@pytest.mark.xfail(
    strict=True,
    reason="The clean-up reads the AMI's protection from the inventory, written by enforcement when it handles the "
    "tag change: a protection tag set just before DeregisterImage, whose CreateTags event is handled after the "
    "deregistration's, is never seen (DescribeImages no longer shows the AMI) and the snapshots are deleted.",
)
def test_protection_set_just_before_deregistration_keeps_the_snapshots(deployed: GovernancePolicy) -> None:
    world = World(deployed, [False, False])
    for action, *arguments in [("protect", 0, True), ("deregister", 0), ("deliver", 1)]:
        world.play(action, *arguments)  # the DeregisterImage record is delivered before the CreateTags one
    world.finish()
    assert world.history.protected_when_deregistered[0] is True
    assert set(world.snapshots[0]) <= world.existing_snapshots()


def serialised_client_creation(monkeypatch: pytest.MonkeyPatch) -> None:
    """boto3's default session is not safe to create clients from in several threads at once (each Lambda
    process has its own): creating them is serialised, the calls they make are not."""
    lock = threading.Lock()
    client, resource = boto3.client, boto3.resource

    def locked_client(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return client(*args, **kwargs)

    def locked_resource(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return resource(*args, **kwargs)

    monkeypatch.setattr(boto3, "client", locked_client)
    monkeypatch.setattr(boto3, "resource", locked_resource)
