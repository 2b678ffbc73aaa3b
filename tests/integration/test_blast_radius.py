"""Blast radius: every destructive path keeps to its cap on an estate far larger than the cap, reports the rest as
deferred (the clean-up's record) or capped (the sweep's actions), and the next runs carry on until done, each
within the cap; the protection tag always wins.

- clean-up: one deregistered AMI with 130 snapshots (13 protected), `cleanup.max_snapshots_per_event` = 50;
- sweep: 3,000 orphaned snapshots (300 protected) and 60 overdue AMIs (6 protected), two runs at the default
  `max_actions_per_run` of 25; then 600 orphans and 60 overdue AMIs at a cap of 200, run until done (every deletion
  is a handful of calls on moto: the full 3,000 to the end would take minutes);
- enforcement: one CreateTags naming 40 non-compliant AMIs in enforce mode, `remediation.max_images_per_event` = 10.

The estate is seeded on moto's backend objects (as scripts/report_benchmark.py does): thousands of API calls to
seed would take longer than the runs they feed.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ami_governance.adapters.ec2 import Ec2Images
from ami_governance.adapters.inventory import Inventory
from ami_governance.adapters.launch_permissions import LaunchPermissionReader
from ami_governance.adapters.notifications import Notifier
from ami_governance.adapters.scan import RegionScanner
from ami_governance.models.findings import (
    ActionStatus,
    FindingKind,
    SweepAction,
)
from ami_governance.models.policy import GovernancePolicy, parse_policy
from ami_governance.services.cleanup import CleanupService
from ami_governance.services.enforce import EnforcementService
from ami_governance.services.sweep import Sweeper
from tests.integration.conftest import ACCOUNT, HOME, TABLE, Estate, deregister_event, tags_event
from tests.integration.sweep_support import finding
from tests.integration.sweep_support import region_evidence as evidence

pytestmark = [pytest.mark.integration, pytest.mark.slow]

P = "ami-governance:"
PROTECTED = f"{P}protected"
NOW = datetime.now(UTC)
OLD = (NOW - timedelta(days=400)).replace(tzinfo=None)  # moto keeps naive UTC
OVERDUE_TAGS = {f"{P}compliance": "non-compliant", f"{P}remediation": "deregister-after 2026-01-01T00:00:00Z"}


class Counted:
    def __init__(self) -> None:
        self.metrics: list[tuple[str, int, dict[str, str]]] = []

    def __call__(self, name: str, value: int = 1, **dimensions: str) -> None:
        self.metrics.append((name, value, dimensions))


def policy_of(default_policy: GovernancePolicy, **changes: Any) -> GovernancePolicy:
    document = json.loads(default_policy.model_dump_json())
    document["mode"] = "enforce"
    document["cleanup"] = {**document["cleanup"], "dry_run": False, "max_snapshots_per_event": 50}
    document["report"]["sweep"] = {
        "enabled": True,
        "dry_run": False,
        "max_actions_per_run": 1000,
        "delete_orphaned_snapshots_after_days": 30,
    }
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = document
        for parent in parents:
            node = node[parent]
        node[leaf] = value
    return parse_policy(document)


def without_sweep(policy: GovernancePolicy) -> GovernancePolicy:
    """The policy the handlers load here: the sweep is driven below the report's handler (`services`), and a policy
    whose sweep acts, loaded by another handler, would be a variant in which the report's sweep grants go unused
    (tests/iam/usage.py)."""
    document = json.loads(policy.model_dump_json())
    document["report"]["sweep"] = {**document["report"]["sweep"], "enabled": False}
    return parse_policy(document)


def services(estate: Estate, policy: GovernancePolicy, count: Counted) -> tuple[Sweeper, CleanupService]:
    common: dict[str, Any] = {"policy": policy, "account_id": ACCOUNT, "count": count}
    inventory, notifier = Inventory(TABLE, HOME), Notifier(estate.topic_arn)
    cleanup = CleanupService(**common, snapshots_in=Ec2Images, inventory=inventory, notifier=notifier)
    enforcement = EnforcementService(
        **common, images_in=Ec2Images, inventory=inventory, notifier=notifier, permissions_in=LaunchPermissionReader
    )
    sweeper = Sweeper(
        **common,
        images_in=Ec2Images,
        references_in=lambda region: RegionScanner(ACCOUNT, region),
        permissions_for=LaunchPermissionReader,
        cleanup=cleanup,
        enforcement=enforcement,
    )
    return sweeper, cleanup


def backend() -> Any:
    from moto.ec2.models import ec2_backends

    return ec2_backends[ACCOUNT][HOME]


def seed_snapshots(count: int, description: str, protect_every: int = 0) -> list[str]:
    """`count` completed, 400-day-old snapshots; every `protect_every`-th carries the protection tag."""
    ec2 = backend()
    made = []
    for number in range(count):
        volume = ec2.create_volume(size=8, zone_name=f"{HOME}a")
        snapshot = ec2.create_snapshot(volume.id, description.format(number=number))
        snapshot.start_time = OLD
        if protect_every and number % protect_every == 0:
            ec2.create_tags([snapshot.id], {PROTECTED: "true"})
        made.append(snapshot.id)
    return made


def existing_snapshots() -> set[str]:
    return set(backend().snapshots)


def tally(actions: Sequence[SweepAction]) -> Counter[tuple[str, str]]:
    return Counter((a.kind.value, a.status.value) for a in actions)


# ---- the clean-up's per-event cap, then the sweep's retries --------------------------------------------------------


def test_one_deregistration_deletes_at_most_the_cap_and_the_sweep_finishes_the_rest(
    estate: Estate, default_policy: GovernancePolicy, invoke_cleanup: Any
) -> None:
    # Given a deregistered AMI whose inventory item records 130 snapshots, 13 of them protected, cap 50
    policy = policy_of(default_policy)
    estate.set_policy(without_sweep(policy))
    image_id = "ami-0b1a57ad1a5000001"
    snapshots = seed_snapshots(
        130, f"Created by CreateImage(i-0123456789abcdef0) for {image_id} from vol-{{number}}", 10
    )
    protected = set(snapshots[::10])
    Inventory(TABLE, HOME).record(
        image_id,
        HOME,
        {
            "account": ACCOUNT,
            "state": "available",
            "snapshot_ids": snapshots,
            "snapshot_sizes": dict.fromkeys(snapshots, 8),
            "protected": False,
        },
    )

    # When its deregistration is delivered (twice: the second delivery deletes nothing more)
    before = existing_snapshots()
    outcome = invoke_cleanup(deregister_event(image_id))
    again = invoke_cleanup(deregister_event(image_id))

    # Then exactly 50 are deleted, the other 67 deletable ones are kept as capped and the clean-up is deferred
    deleted = before - existing_snapshots()
    assert len(deleted) == 50
    assert not deleted & protected
    [cleanup] = outcome["images"]
    assert cleanup["result"] == "deferred"
    kept = Counter(s["outcome"] for s in cleanup["snapshots"] if s["outcome"].startswith("kept"))
    assert kept == {"kept: blast-radius cap of 50 reached": 67, f"kept: protected by {PROTECTED}": 13}
    assert again["images"][0]["result"] == "already-handled"
    item = Inventory(TABLE, HOME).get(image_id, HOME) or {}
    assert item["cleanup_status"] == "deferred"

    # And each sweep run retries it within the same cap until it is done: 50, then 17, then nothing to do
    per_run = []
    for _run in range(4):
        count = Counted()
        sweeper, _ = services(estate, policy, count)
        before = existing_snapshots()
        actions = sweeper.sweep([finding(FindingKind.OVERDUE, image_id, "cleanup-deferred")], evidence([image_id]))
        deleted = before - existing_snapshots()
        assert not deleted & protected
        per_run.append((len(deleted), [(a.kind.value, a.status.value) for a in actions if a.resource_id == image_id]))
    assert per_run == [
        (50, [("retry-cleanup", "done")]),
        (17, [("retry-cleanup", "done")]),
        (0, [("retry-cleanup", "skipped")]),
        (0, [("retry-cleanup", "skipped")]),
    ]
    assert existing_snapshots() & set(snapshots) == protected
    item = Inventory(TABLE, HOME).get(image_id, HOME) or {}
    assert item["cleanup_status"] == "done"
    outcomes = Counter(v["outcome"] for v in item["cleanup_snapshots"].values())
    assert outcomes == {"deleted": 117, f"kept: protected by {PROTECTED}": 13}


# ---- the sweep's per-run cap on 3,000 orphans and 60 overdue AMIs -------------------------------------------------


def seed_overdue_images(count: int, protect_every: int) -> list[str]:
    from moto.ec2.models.amis import Ami
    from moto.ec2.utils import random_ami_id

    ec2 = backend()
    made = []
    for number in range(count):
        image_id = random_ami_id()
        image = Ami(ec2, image_id, name=f"overdue-{number}", region_name=f"{HOME}a")
        image.creation_date = OLD
        ec2.amis[image_id] = image
        image.ebs_snapshot.start_time = OLD
        tags = {**OVERDUE_TAGS, f"{P}image-id": image_id}
        if number % protect_every == 0:
            tags[PROTECTED] = "true"
        ec2.create_tags([image_id], tags)
        made.append(image_id)
    return made


def test_the_sweep_keeps_to_its_cap_on_thousands_of_orphans(estate: Estate, default_policy: GovernancePolicy) -> None:
    # Given 3,000 orphaned snapshots (every 10th protected) and 60 overdue AMIs (every 10th protected)
    orphans = seed_snapshots(3000, "orphaned backup {number}", protect_every=10)
    overdue = seed_overdue_images(60, protect_every=10)
    findings = [finding(FindingKind.ORPHANED_SNAPSHOT, s) for s in orphans] + [
        finding(FindingKind.OVERDUE, i, "deregister-after") for i in overdue
    ]
    policy = policy_of(default_policy, report__sweep__max_actions_per_run=25)

    # When the sweep runs twice at the default cap of 25
    runs = []
    for _run in range(2):
        sweeper, _ = services(estate, policy, Counted())
        runs.append(sweeper.sweep(findings, evidence()))
    first, second = runs

    # Then each run does 25 (the oldest first), reports the other acceptable ones capped and skips the protected
    assert tally(first) == {
        ("deregister-overdue", "done"): 25,
        ("deregister-overdue", "capped"): 29,
        ("delete-orphaned-snapshot", "capped"): 2700,
        ("deregister-overdue", "skipped"): 6,
        ("delete-orphaned-snapshot", "skipped"): 300,
    }
    assert {a.reason for a in first if a.status is ActionStatus.CAPPED} == {"over the run's cap of 25 actions"}
    assert tally(second) == {
        ("deregister-overdue", "done"): 25,
        ("delete-orphaned-snapshot", "capped"): 2700,
        ("deregister-overdue", "capped"): 4,
        ("deregister-overdue", "skipped"): 31,  # the 25 gone since (not in the scan: refused by the plan) and 6
        ("delete-orphaned-snapshot", "skipped"): 300,
    }
    done = [{a.resource_id for a in run if a.status is ActionStatus.DONE} for run in runs]
    assert not done[0] & done[1]
    assert set(backend().amis) & set(overdue) == set(overdue) - done[0] - done[1]
    assert existing_snapshots() >= set(orphans)


def test_later_sweeps_finish_within_the_cap_and_never_touch_the_protected(
    estate: Estate, default_policy: GovernancePolicy
) -> None:
    # Given 600 orphaned snapshots and 60 overdue AMIs (every 10th of each protected), a cap of 200 per run
    orphans = seed_snapshots(600, "orphaned backup {number}", protect_every=10)
    overdue = seed_overdue_images(60, protect_every=10)
    protected = set(orphans[::10]) | set(overdue[::10])
    findings = [finding(FindingKind.ORPHANED_SNAPSHOT, s) for s in orphans] + [
        finding(FindingKind.OVERDUE, i, "deregister-after") for i in overdue
    ]
    policy = policy_of(default_policy, report__sweep__max_actions_per_run=200)

    # When the sweep runs (each over a fresh scan) until a run has nothing left to do
    per_run = []
    for _run in range(6):
        sweeper, _ = services(estate, policy, Counted())
        actions = sweeper.sweep(findings, evidence())
        done = {a.resource_id for a in actions if a.status is ActionStatus.DONE}
        assert not done & protected
        assert not [a for a in actions if a.status is ActionStatus.FAILED]
        per_run.append((len(done), sum(1 for a in actions if a.status is ActionStatus.CAPPED)))
        if not done:
            break

    # Then each run does at most 200, the rest capped for the next, and four runs (the last empty) finish
    assert per_run == [(200, 394), (200, 194), (194, 0), (0, 0)]
    assert set(backend().amis) & set(overdue) == set(overdue[::10])
    assert existing_snapshots() & set(orphans) == set(orphans[::10])
    assert tally(actions) == {("deregister-overdue", "skipped"): 60, ("delete-orphaned-snapshot", "skipped"): 600}


# ---- the remediation cap per event --------------------------------------------------------------------------------


def test_one_tag_event_remediates_at_most_the_cap_of_its_amis(
    estate: Estate, default_policy: GovernancePolicy, invoke: Any
) -> None:
    # Given 40 non-compliant AMIs (no required tags), 4 protected, in enforce mode with `disable`, cap 10
    policy = policy_of(
        default_policy,
        remediation__action="disable",
        remediation__grace_period_days=0,
        remediation__max_images_per_event=10,
    )
    estate.set_policy(without_sweep(policy))
    ec2 = estate.ec2()
    images = []
    for number in range(40):
        snapshot = seed_snapshots(1, "root {number}")[0]
        image_id = ec2.register_image(
            Name=f"Bad_Name_{number}",
            RootDeviceName="/dev/sda1",
            BlockDeviceMappings=[{"DeviceName": "/dev/sda1", "Ebs": {"SnapshotId": snapshot}}],
        )["ImageId"]
        images.append(image_id)
    protected = set(images[::10])
    ec2.create_tags(Resources=sorted(protected), Tags=[{"Key": PROTECTED, "Value": "true"}])

    # When one CreateTags event names all 40, delivered again in the same envelope, then in another (a CloudTrail
    # duplicate, or a redelivery after its idempotency record expired)
    event = tags_event("create_tags_mixed_resources", images, {"Team": "x"})
    invoke(event)
    disabled_once = remediated(estate, images)
    invoke(event)
    assert remediated(estate, images) == disabled_once  # the same envelope: answered from its idempotency record
    invoke({**event, "id": "another-envelope-of-the-same-call"})

    # Then each handled delivery remediates at most 10 (the second the next 10), never a protected AMI
    disabled = remediated(estate, images)
    assert len(disabled_once) == 10
    assert len(disabled) == 20
    assert disabled > disabled_once
    assert not disabled & protected
    states = Counter(
        image["State"] for image in estate.ec2().describe_images(ImageIds=images, IncludeDisabled=True)["Images"]
    )
    assert states == {"disabled": 20, "available": 20}


def remediated(estate: Estate, images: list[str]) -> set[str]:
    described = estate.ec2().describe_images(ImageIds=images, IncludeDisabled=True)["Images"]
    return {
        image["ImageId"]
        for image in described
        if {"Key": f"{P}remediation", "Value": "disabled"} in image.get("Tags", [])
    }
