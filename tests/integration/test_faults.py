"""Every capability under injected AWS faults (tests/faults.py): 30 % of the Lambda code's calls throttled, failing
with 5xx, timing out before they are sent, or losing their response after AWS applied them.

Each scenario runs twice on fresh moto accounts: once without faults (the state it should reach) and once with
them, delivered as AWS delivers (asynchronous invocation: 2 retries, then the dead-letter list; the copy queue: batch
item failures, received again up to its maxReceiveCount, then its DLQ). Then:

- every event ended `success` or in a dead-letter list, and what succeeded is done: the state of every resource no
  dead letter concerns equals the fault-free run's (ids mapped to labels, so the two accounts compare);
- nothing the fault-free run keeps was deleted, deregistered or disabled, dead letters or not;
- a fault-free redrive of the dead letters (what the DLQ alarm asks an operator to do) reaches the fault-free state:
  no event was left half-done in a way its own retry cannot finish;
- retries redo no completed work: one replica per target region, each deletion once, each notice of the
  fault-free run at least once, and a notice more only for an invocation that was retried (SNS has no idempotent
  publish: a publish whose response is lost and then retried is a second notice on AWS too; the services notify
  after the state change, so a retry re-notifies at most once per attempt).

Report and sweep: under faults a region whose listing failed is reported incomplete, never as empty, and the
sweep acts only on complete regions, never on more than the fault-free run does.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ami_governance.models.policy import GovernancePolicy, load_policy_file, parse_policy
from ami_governance.services import wiring
from emulator.inbox import read_notices
from tests.conftest import POLICY_FILE
from tests.faults import AsyncDelivery, CopyQueueDelivery, clock_advanced, injecting_faults
from tests.integration.conftest import PUBLIC_AMI, deregister_event
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

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HOME, EU, AP = "us-east-1", "eu-west-1", "ap-southeast-2"
P = "ami-governance:"
RATE = 0.3
SEEDS = (1, 2, 3)
GOOD_TAGS = {"Owner": "team-payments", "Environment": "prod", "CostCenter": "CC-1234", "Application": "payments-api"}
APPROVER_ROLE = f"arn:aws:iam::{MOTO_ACCOUNT}:role/AmiApprover"
# An operator redrives a DLQ after its alarm: by then the claims of failed runs (16-minute leases) have expired.
REDRIVE_AFTER = timedelta(minutes=30)
ID = re.compile(r"\b(?:ami|snap|i|vol)-[0-9a-f]{8,17}\b")


def fault_policy() -> GovernancePolicy:
    """Enforce mode (remediation disables), real deletions, replication to two regions."""
    document = json.loads(load_policy_file(POLICY_FILE).model_dump_json())
    document.update(mode="enforce", governed_regions=[HOME, EU, AP])
    document["cleanup"]["dry_run"] = False
    document["approval"] = {"approvers": ["arn:aws:iam::*:role/AmiApprover"]}
    document["replication"] = {"regions": [EU, AP], "kms_keys": {}, "share_with": {"accounts": []}}
    return parse_policy(document)


# ---- one account, its Lambdas and its deliveries --------------------------------------------------------------


@dataclass
class World:
    inbox_url: str
    queue_url: str
    delivery: AsyncDelivery = field(default_factory=AsyncDelivery)
    labels: dict[str, str] = field(default_factory=dict)  # resource id -> label, to compare two accounts
    copies: CopyQueueDelivery | None = None
    notices: list[dict[str, Any]] = field(default_factory=list)
    clients: dict[tuple[str, str], Any] = field(default_factory=dict)
    announced: set[str] = field(default_factory=set)  # replicas whose `available` state change was sent

    def client(self, service: str, region: str = HOME) -> Any:
        """The test's own clients, made once (making a client costs more than most moto calls)."""
        if (service, region) not in self.clients:
            self.clients[(service, region)] = boto3.client(service, region_name=region)  # type: ignore[call-overload]
        return self.clients[(service, region)]

    def ec2(self, region: str = HOME) -> Any:
        return self.client("ec2", region)

    # the functions, as their handlers
    def enforce(self, event: dict[str, Any]) -> Any:
        from handlers.enforce import handler

        return handler(event, FakeLambdaContext())  # type: ignore[arg-type]

    def cleanup(self, event: dict[str, Any]) -> Any:
        from handlers.cleanup import handler

        return handler(event, FakeLambdaContext(function_name="ami-governance-cleanup"))  # type: ignore[arg-type]

    def replicate(self, event: dict[str, Any]) -> Any:
        from handlers.replicate import handler

        return handler(event, FakeLambdaContext(function_name="ami-governance-replicate"))  # type: ignore[arg-type]

    def copy(self, event: dict[str, Any]) -> dict[str, Any]:
        from handlers.copy import handler

        return handler(event, FakeLambdaContext(function_name="ami-governance-copy"))  # type: ignore[arg-type,no-any-return]

    def deliver(self, function: str, event: dict[str, Any]) -> None:
        handlers = {"enforce": self.enforce, "cleanup": self.cleanup, "replicate": self.replicate}
        self.delivery.deliver(function, handlers[function], event)

    def drain_copies(self) -> None:
        """The copy queue's jobs, then each new replica's `available` state change, as EC2 sends it."""
        if self.copies is None:
            self.copies = CopyQueueDelivery(self.queue_url, self.copy, sqs=self.client("sqs"))
        self.copies.drain()
        for region in (EU, AP):
            for image in self.ec2(region).describe_images(Owners=["self"])["Images"]:
                if image["ImageId"] not in self.announced:
                    self.announced.add(image["ImageId"])
                    event = state_event(image["ImageId"], region=region)
                    self.deliver("replicate", _event_id(event, f"available-{image['ImageId']}"))

    # the account's resources
    def create_image(self, label: str, name: str, tags: dict[str, str]) -> tuple[str, str]:
        instance = self.ec2().run_instances(ImageId=PUBLIC_AMI, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
        request: dict[str, Any] = {"InstanceId": instance, "Name": name}
        if tags:
            request["TagSpecifications"] = [
                {"ResourceType": "image", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
            ]
        image = self.ec2().create_image(**request)["ImageId"]
        self.labels[image], self.labels[instance] = label, f"instance of {label}"
        described = self.ec2().describe_images(ImageIds=[image])["Images"][0]
        for n, mapping in enumerate(described.get("BlockDeviceMappings", [])):
            snapshot = mapping.get("Ebs", {}).get("SnapshotId")
            if snapshot:
                self.labels[snapshot] = f"snapshot {n} of {label}"
        return str(image), str(instance)

    def id_of(self, label: str) -> str:
        return next(i for i, lab in self.labels.items() if lab == label)

    def label(self, text: str) -> str:
        return ID.sub(lambda m: self.labels.get(m.group(0), "<unlabelled>"), text)

    def read_notices(self) -> None:
        self.notices += read_notices(self.inbox_url, self.client("sqs"))


@contextmanager
def account(monkeypatch: pytest.MonkeyPatch, policy: GovernancePolicy) -> Iterator[World]:
    with mock_aws():
        wiring.reset()
        resources = create_home_resources(policy.model_dump_json(), POLICY_PARAMETER, INVENTORY_TABLE, HOME)
        queue_url = boto3.client("sqs", region_name=HOME).create_queue(QueueName="copy-jobs")["QueueUrl"]
        monkeypatch.setenv("NOTIFICATION_TOPIC_ARN", resources.topic_arn)
        monkeypatch.setenv("COPY_QUEUE_URL", queue_url)
        wiring.reset()
        yield World(resources.inbox_url, queue_url)
        wiring.reset()


# ---- the state two accounts are compared by --------------------------------------------------------------------

# Tags whose value is the time of the judgement, not part of the outcome.
TIME_TAGS = {f"{P}evaluated-at"}
# Inventory attributes that are bookkeeping of a run (times, run ids), not its outcome.
BOOKKEEPING = re.compile(
    r"(^|_)(at|date|time|until|owner|updated|ttl|expires|run_id|last_event_id|adopted|claim\w*|version)$"
)


def _labelled(world: World, value: Any) -> Any:
    if isinstance(value, str):
        return world.label(value)
    if isinstance(value, dict):
        return {
            world.label(str(k)): _labelled(world, v) for k, v in sorted(value.items()) if not BOOKKEEPING.search(str(k))
        }
    if isinstance(value, list | tuple | set):
        items = [_labelled(world, v) for v in value]
        return sorted(items, key=repr) if isinstance(value, set) else items
    return value


def state_of(world: World) -> dict[str, Any]:
    """Every labelled AMI's state and tags, every labelled snapshot's existence, the replicas per source and
    region, and the inventory: ids replaced by labels."""
    images: dict[str, Any] = {}
    replicas: Counter[str] = Counter()
    for region in (HOME, EU, AP):
        ec2 = world.ec2(region)
        for image in ec2.describe_images(Owners=["self"], IncludeDisabled=True)["Images"]:
            source = image.get("SourceImageId")
            if source and image["ImageId"] not in world.labels:
                world.labels[image["ImageId"]] = f"replica of {world.labels.get(source, source)} in {region}"
            if source:
                replicas[f"{world.labels.get(source, source)} -> {region}"] += 1
            # (a replica's copy of its source's approval tag is the source's as CopyImageTags found it: when)
            skipped = TIME_TAGS | ({f"{P}approval"} if source else set())
            tags = {t["Key"]: t["Value"] for t in image.get("Tags", []) if t["Key"] not in skipped}
            images[world.labels.get(image["ImageId"], image["ImageId"])] = {
                "state": image["State"],
                "tags": _labelled(world, tags),
            }
    snapshots = {}
    existing = {s["SnapshotId"] for s in world.ec2().describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    for snapshot_id, label in world.labels.items():
        if snapshot_id.startswith("snap-"):
            snapshots[label] = snapshot_id in existing
    items = world.client("dynamodb").scan(TableName=INVENTORY_TABLE)["Items"]
    inventory = {}
    for item in items:
        plain = {k: _plain(v) for k, v in item.items()}
        label = world.label(str(plain.get("image_id")))
        # What the AMI's events decided, not what they happened to see on the way: a dead-lettered creation
        # event redriven after the AMI was deregistered finds nothing to record, and the clean-up then worked
        # from the snapshots' descriptions; the snapshots' fate is the same, and compared.
        outcome = CLEANUP_OUTCOME if label not in images else CLEANUP_OUTCOME | JUDGEMENT_OUTCOME
        inventory[f"{label} in {plain.get('region')}"] = _labelled(
            world, {k: v for k, v in plain.items() if k in outcome}
        )
    return {"images": images, "replicas": dict(replicas), "snapshots": snapshots, "inventory": inventory}


CLEANUP_OUTCOME = frozenset({"cleanup_status", "cleanup_snapshots", "cleanup_gb"})
JUDGEMENT_OUTCOME = frozenset({"compliance", "violations", "replicas", "replication_announced", "approval"})


def _plain(value: dict[str, Any]) -> Any:
    from boto3.dynamodb.types import TypeDeserializer

    return TypeDeserializer().deserialize(value)


def notice_keys(world: World) -> Counter[str]:
    world.read_notices()
    return Counter(world.label(f"{n['body'].get('kind')}: {n.get('subject', '')}") for n in world.notices)


def diff(expected: dict[str, Any], actual: dict[str, Any], path: str = "") -> list[str]:
    if isinstance(expected, dict) and isinstance(actual, dict):
        out: list[str] = []
        for key in sorted(set(expected) | set(actual), key=str):
            out += diff(expected.get(key, "<absent>"), actual.get(key, "<absent>"), f"{path}/{key}")
        return out
    return [] if expected == actual else [f"{path}: expected {expected!r}, got {actual!r}"]


# ---- scenarios: each drives one capability (and what it needs before) through the deliveries ---------------------


def approval_event(image_id: str, event_id: str) -> dict[str, Any]:
    event = tags_event("create_tags_approval", [image_id], {f"{P}approved": "true"})
    event["id"] = f"envelope-{event_id}"
    event["detail"]["eventID"] = event_id
    identity = event["detail"]["userIdentity"]
    identity["arn"] = f"arn:aws:sts::{MOTO_ACCOUNT}:assumed-role/AmiApprover/lead"
    identity["sessionContext"]["sessionIssuer"]["arn"] = APPROVER_ROLE
    return event


def _event_id(event: dict[str, Any], name: str) -> dict[str, Any]:
    event["id"] = name
    return event


def new_images(world: World, count: int = 4) -> list[str]:
    """`count` AMIs created and announced (CloudTrail, then available): the even ones compliant, the odd ones not
    (the odd ones' owners then fix their tags)."""
    images = []
    for n in range(count):
        name = f"payments-api-al2023-1.{n}.0" if n % 2 == 0 else f"Bad Name {n}"
        tags = GOOD_TAGS if n % 2 == 0 else {"Owner": "team-payments"}
        image, instance = world.create_image(f"image {n}", name, tags)
        world.deliver("enforce", _event_id(create_image_event(image, instance, name=name, tags=tags), f"create-{n}"))
        world.deliver("enforce", _event_id(state_event(image), f"available-{n}"))
        images.append(image)
    return images


def scenario_enforce(world: World) -> None:
    images = new_images(world)
    fix = {"Environment": "dev", "CostCenter": "CC-0001"}
    world.ec2().create_tags(Resources=[images[1]], Tags=[{"Key": k, "Value": v} for k, v in fix.items()])
    world.deliver("enforce", _event_id(tags_event("create_tags_mixed_resources", [images[1]], fix), "fix-1"))


def scenario_cleanup(world: World) -> None:
    images = new_images(world)
    for n, image in enumerate(images):
        world.ec2().deregister_image(ImageId=image)
        world.deliver("cleanup", _event_id(deregister_event(image), f"deregister-{n}"))
        world.deliver("cleanup", _event_id(state_event(image, "deregistered"), f"deregistered-{n}"))


def scenario_replication(world: World) -> None:
    images = new_images(world)
    for n in (0, 2):
        world.ec2().create_tags(Resources=[images[n]], Tags=[{"Key": f"{P}approved", "Value": "true"}])
        world.deliver("replicate", approval_event(images[n], f"approval-{n}"))
    world.drain_copies()


SCENARIOS: dict[str, Callable[[World], None]] = {
    "enforce": scenario_enforce,
    "cleanup": scenario_cleanup,
    "replicate-and-copy": scenario_replication,
}


@dataclass
class Faulted:
    expected: dict[str, Any]
    expected_notices: Counter[str]
    before_redrive: dict[str, Any]
    after_redrive: dict[str, Any]
    notices: Counter[str]
    world: World
    summary: dict[str, Any]


_fault_free: dict[str, tuple[dict[str, Any], Counter[str]]] = {}


def fault_free(
    monkeypatch: pytest.MonkeyPatch, scenario: Callable[[World], None]
) -> tuple[dict[str, Any], Counter[str]]:
    """The state and notices the scenario reaches without faults (once per scenario: it is deterministic)."""
    if scenario.__name__ not in _fault_free:
        with account(monkeypatch, fault_policy()) as clean:
            scenario(clean)
            assert clean.delivery.count("dead-lettered") == 0, clean.delivery.outcomes
            _fault_free[scenario.__name__] = state_of(clean), notice_keys(clean)
    return _fault_free[scenario.__name__]


def run_scenario(
    monkeypatch: pytest.MonkeyPatch, scenario: Callable[[World], None], seed: int, rate: float = RATE
) -> Faulted:
    policy = fault_policy()
    expected, expected_notices = fault_free(monkeypatch, scenario)
    with account(monkeypatch, policy) as world:
        with injecting_faults(rate, seed) as injector:
            scenario(world)
            before = state_of(world)
            injector.enabled = False
            with clock_advanced(REDRIVE_AFTER):
                world.delivery.redrive()
                if world.copies is not None:
                    world.drain_copies()
        after = state_of(world)
        return Faulted(expected, expected_notices, before, after, notice_keys(world), world, injector.summary())


def superseded(notice: str, sent: Counter[str]) -> bool:
    """Whether another verdict notice about the same AMI was sent (`ami-non-compliant: AMI <label> in <region> …`)."""
    subject = notice.split(" is non-compliant", 1)[0]
    return any(other != notice and other.startswith(subject + " is non-compliant") for other in sent)


def deleted_or_disabled(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """What the fault-free run keeps and the faulted one lost (a replica not made yet is not lost)."""
    lost = [s for s, kept in expected["snapshots"].items() if kept and not actual["snapshots"].get(s)]
    for label, image in expected["images"].items():
        now = actual["images"].get(label)
        if now is None and label.startswith("replica of "):
            continue
        if now is None or (image["state"] == "available" and now["state"] != "available"):
            lost.append(f"{label}: {image['state']} -> {now and now['state']}")
    return lost


def labels_in_dead_letters(world: World, dead: list[dict[str, Any]]) -> set[str]:
    return {world.label(m) for event in dead for m in ID.findall(json.dumps(event))}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("capability", list(SCENARIOS))
def test_under_faults_every_event_is_done_or_dead_lettered_and_nothing_kept_is_lost(
    monkeypatch: pytest.MonkeyPatch, capability: str, seed: int
) -> None:
    result = run_scenario(monkeypatch, SCENARIOS[capability], seed)
    world = result.world

    # Faults were injected, and every event ended done or dead-lettered
    assert result.summary["injected"] > 0
    assert {o.outcome for o in world.delivery.outcomes} <= {"success", "dead-lettered"}
    # Nothing the fault-free run keeps was lost, even before the dead letters were redriven
    assert deleted_or_disabled(result.expected, result.before_redrive) == []
    # The fault-free redrive of the dead letters reaches the fault-free state
    differences = diff(result.expected, result.after_redrive)
    assert differences == [], "\n".join(differences)
    # Every notice of the fault-free run was sent; a duplicate only for a retried invocation
    # (but for an AMI deregistered before its dead-lettered judgement was redriven: gone, it is judged no more)
    images = [label for rid, label in world.labels.items() if rid.startswith("ami-")]
    gone = [f"{label} " for label in images if label not in result.after_redrive["images"]]
    # (or for one whose dead-lettered judgement was redriven after its owner fixed some tags: its verdict notice
    # then says what is still wrong, the earlier list of violations no longer holds)
    missing = result.expected_notices - result.notices
    assert [n for n in missing if not (n.startswith("ami-non-compliant:") and (
        any(g in n for g in gone) or superseded(n, result.notices)))] == []  # fmt: skip
    extra = sum((result.notices - result.expected_notices).values())
    assert extra <= world.delivery.retries() + (world.copies.invocations if world.copies else 0)


# ---- report and sweep ----------------------------------------------------------------------------------------------


def sweep_policy(dry_run: bool) -> GovernancePolicy:
    document = json.loads(fault_policy().model_dump_json())
    document["governed_regions"] = [HOME, EU]
    document["replication"]["regions"] = [EU]
    document["report"]["sweep"] = {
        "enabled": True,
        "dry_run": dry_run,
        "max_actions_per_run": 25,
        "delete_orphaned_snapshots_after_days": 30,
    }
    return parse_policy(document)


def orphans(world: World, per_region: int = 3) -> None:
    """Snapshots no AMI uses, 60 days old: what the sweep deletes (the report finds them either way)."""
    from datetime import UTC, datetime

    from emulator.moto_extensions.control import set_snapshot_start_time

    for region in (HOME, EU):
        ec2 = world.ec2(region)
        for n in range(per_region):
            volume = ec2.create_volume(Size=8, AvailabilityZone=f"{region}a")["VolumeId"]
            # Made for an AMI that is gone, as EC2 describes CreateImage's snapshots
            gone = f"ami-0{n:016x}"
            description = f"Created by CreateImage(i-0{n:016x}) for {gone} from {volume}"
            snapshot = ec2.create_snapshot(VolumeId=volume, Description=description)["SnapshotId"]
            set_snapshot_start_time(MOTO_ACCOUNT, region, snapshot, datetime.now(UTC) - timedelta(days=60))


def report_run(world: World) -> Any:
    from ami_governance.services.wiring import report_service

    arn = f"arn:aws:lambda:{HOME}:{MOTO_ACCOUNT}:function:ami-governance-report"
    return report_service(arn, lambda *_, **__: None).run(None)


# At 30 % nearly every scan has a failed listing in each region; 3 % leaves some regions complete.
@pytest.mark.parametrize("rate", [RATE, 0.03])
@pytest.mark.parametrize("seed", SEEDS)
def test_under_faults_the_report_marks_failed_listings_incomplete_and_the_sweep_acts_only_on_complete_evidence(
    monkeypatch: pytest.MonkeyPatch, seed: int, rate: float
) -> None:
    monkeypatch.setenv("REPORTS_BUCKET_NAME", "ami-governance-reports")
    # Given the same estate twice: the fault-free report (its sweep a dry run) says what a full scan finds
    with account(monkeypatch, sweep_policy(dry_run=True)) as clean:
        orphans(clean)
        expected = report_run(clean)
    planned = {(a.region, a.kind, a.finding_kind) for a in expected.actions if a.status.value == "would-do"}
    planned_ids = [a for a in expected.actions if a.status.value == "would-do"]
    found = Counter((f.region, f.kind.value) for f in expected.findings)
    assert expected.complete
    assert len(planned) > 0, (expected.actions, found)

    with account(monkeypatch, sweep_policy(dry_run=False)) as world:
        orphans(world)
        before = sum(len(world.ec2(r).describe_snapshots(OwnerIds=["self"])["Snapshots"]) for r in (HOME, EU))
        # When the scheduled report runs with its sweep on, under faults, retried as an asynchronous invocation
        reports: list[Any] = []
        with injecting_faults(rate, seed) as injector:
            outcome = world.delivery.deliver("report", lambda _: reports.append(report_run(world)), {"id": "cron"})
        after = sum(len(world.ec2(r).describe_snapshots(OwnerIds=["self"])["Snapshots"]) for r in (HOME, EU))
        summary = injector.summary()

    assert summary["injected"] > 0
    assert outcome.outcome in ("success", "dead-lettered")
    # Then nothing was deleted beyond what the fault-free plan deletes, whatever the attempts did
    assert before - after <= len([a for a in expected.actions if a.status.value == "would-do"])
    if not reports:
        return  # every attempt failed before its report (the policy could not be read): in the DLQ
    [report] = reports
    print(
        f"report seed {seed}: {summary['calls']} calls, {summary['by_kind']}; attempts {outcome.attempts}; "
        f"incomplete {[r.region for r in report.regions if not r.complete]}; "
        f"sweep done {len([a for a in report.actions if a.status.value == 'done'])} of {len(planned_ids)}"
    )
    # And a region whose listing failed is incomplete (with the error), never reported as empty, and the others
    # report exactly what the fault-free scan found
    for region in report.regions:
        counted = Counter((f.region, f.kind.value) for f in report.findings if f.region == region.region)
        if region.complete:
            assert counted == Counter({k: n for k, n in found.items() if k[0] == region.region})
        else:
            assert region.errors != {}
    # And the sweep did nothing in an incomplete region, and nothing the fault-free plan did not hold
    complete = {r.region for r in report.regions if r.complete}
    done = [a for a in report.actions if a.status.value == "done"]
    assert all(a.region in complete for a in done), done
    assert {(a.region, a.kind, a.finding_kind) for a in done} <= planned
