"""The sweep on moto: a small estate scanned, findings built by hand (wrong ones included), then the sweep. Dry-run
changes nothing; a real run deregisters and deletes exactly the planned resources, skips one protected after the
scan, leaves one over the cap, retries a deferred clean-up through the clean-up service, judges an AMI no event
judged; a second run right after the first does nothing."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from ami_governance.adapters.ec2 import Ec2Images
from ami_governance.adapters.inventory import Inventory
from ami_governance.adapters.launch_permissions import LaunchPermissionReader
from ami_governance.adapters.notifications import Notifier
from ami_governance.adapters.scan import RegionScanner
from ami_governance.models.findings import (
    ActionStatus,
    Finding,
    FindingKind,
    RegionEvidence,
    SweepAction,
)
from ami_governance.models.policy import GovernancePolicy, parse_policy
from ami_governance.rules.findings import find_all
from ami_governance.services.cleanup import CleanupService
from ami_governance.services.enforce import EnforcementService
from ami_governance.services.sweep import Sweeper
from emulator.moto_extensions.control import set_creation_dates
from tests.integration.conftest import ACCOUNT, HOME, TABLE, Estate
from tests.integration.sweep_support import finding, region_evidence

P = "ami-governance:"
PROTECTED = f"{P}protected"
OVERDUE_TAGS = {f"{P}compliance": "non-compliant", f"{P}remediation": "deregister-after 2026-01-01T00:00:00Z"}
NOW = datetime.now(UTC)


def days_ago(days: int) -> datetime:
    return NOW - timedelta(days=days)


@dataclass
class Counted:
    metrics: list[tuple[str, int, dict[str, str]]] = field(default_factory=list)

    def __call__(self, name: str, value: int = 1, **dimensions: str) -> None:
        self.metrics.append((name, value, dimensions))


def sweep_policy(default_policy: GovernancePolicy, **sweep: Any) -> GovernancePolicy:
    document = json.loads(default_policy.model_dump_json())
    document["mode"] = "enforce"
    document["cleanup"]["dry_run"] = False
    document["report"]["sweep"] = {
        "enabled": True,
        "dry_run": False,
        "max_actions_per_run": 4,
        "delete_orphaned_snapshots_after_days": 30,
        **sweep,
    }
    return parse_policy(document)


def sweeper(estate: Estate, policy: GovernancePolicy, count: Counted) -> Sweeper:
    inventory = Inventory(TABLE, HOME)
    notifier = Notifier(estate.topic_arn)
    common: dict[str, Any] = {"policy": policy, "account_id": ACCOUNT, "count": count}
    return Sweeper(
        **common,
        images_in=Ec2Images,
        references_in=lambda region: RegionScanner(ACCOUNT, region),
        permissions_for=LaunchPermissionReader,
        cleanup=CleanupService(**common, snapshots_in=Ec2Images, inventory=inventory, notifier=notifier),
        enforcement=EnforcementService(
            **common,
            images_in=Ec2Images,
            inventory=inventory,
            notifier=notifier,
            permissions_in=LaunchPermissionReader,
        ),
    )


@dataclass
class Seeded:
    overdue: str
    protected_later: str
    referenced: str
    never_judged: str
    deregistered: str
    orphan_old: str
    orphan_newer: str
    used: str
    retried_snapshot: str
    snapshots_of_overdue: list[str]


def snapshot(estate: Estate, tags: dict[str, str] | None = None) -> str:
    ec2 = estate.ec2()
    volume = ec2.create_volume(Size=8, AvailabilityZone=f"{HOME}a")["VolumeId"]
    request: dict[str, Any] = {"VolumeId": volume}
    if tags:
        request["TagSpecifications"] = [
            {"ResourceType": "snapshot", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        ]
    return str(ec2.create_snapshot(**request)["SnapshotId"])


def register(estate: Estate, name: str, tags: dict[str, str] | None = None) -> tuple[str, str]:
    """An AMI registered from a new snapshot (no instance refers to it); returns (image id, snapshot id)."""
    snapshot_id = snapshot(estate)
    ec2 = estate.ec2()
    image_id = str(
        ec2.register_image(
            Name=name,
            RootDeviceName="/dev/sda1",
            BlockDeviceMappings=[{"DeviceName": "/dev/sda1", "Ebs": {"SnapshotId": snapshot_id}}],
        )["ImageId"]
    )
    if tags:
        # As the enforce path leaves a judged AMI: its governance tags with `image-id` naming itself.
        tags = {**tags, f"{P}image-id": image_id}
        ec2.create_tags(Resources=[image_id], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    return image_id, snapshot_id


def seed(estate: Estate) -> Seeded:
    ec2 = estate.ec2()
    overdue, overdue_snapshot = register(estate, "overdue", OVERDUE_TAGS)
    protected_later, _ = register(estate, "protected-later", OVERDUE_TAGS)
    referenced, _ = register(estate, "referenced", OVERDUE_TAGS)
    ec2.create_launch_template(LaunchTemplateName="web", LaunchTemplateData={"ImageId": referenced})
    never_judged, _ = register(estate, "imported-long-ago")
    used = snapshot(estate)
    ec2.register_image(
        Name="user",
        RootDeviceName="/dev/sda1",
        BlockDeviceMappings=[{"DeviceName": "/dev/sda1", "Ebs": {"SnapshotId": used}}],
    )
    orphan_old, orphan_newer, retried_snapshot = snapshot(estate), snapshot(estate), snapshot(estate)
    set_creation_dates(
        ACCOUNT,
        HOME,
        images={overdue: days_ago(400), protected_later: days_ago(300), referenced: days_ago(350)},
        snapshots={
            orphan_old: days_ago(200),
            orphan_newer: days_ago(100),
            used: days_ago(500),
            retried_snapshot: days_ago(90),
        },
    )
    # A clean-up left deferred (its snapshot was too young then): the AMI is gone, its record says what to retry.
    deregistered = "ami-0feedfacecafe0001"
    at = days_ago(250).strftime("%Y-%m-%dT%H:%M:%SZ")
    Inventory(TABLE, HOME).record(
        deregistered,
        HOME,
        {
            "account": ACCOUNT,
            "state": "deregistered",
            "snapshot_ids": [retried_snapshot],
            "snapshot_sizes": {retried_snapshot: 8},
            "protected": False,
            "cleanup_status": "deferred",
            "cleanup_at": at,
            "cleanup_snapshots": {retried_snapshot: {"outcome": "kept: younger than 7 days", "size_gb": 8, "at": at}},
        },
    )
    return Seeded(
        overdue, protected_later, referenced, never_judged, deregistered, orphan_old, orphan_newer, used,
        retried_snapshot, [overdue_snapshot],
    )  # fmt: skip


def evidence(estate: Estate) -> list[RegionEvidence]:
    # The deregistered AMI's item too: the sweep retries its clean-up.
    return region_evidence(["ami-0feedfacecafe0001"])


def findings(s: Seeded) -> list[Finding]:
    return [
        finding(FindingKind.OVERDUE, s.overdue, "deregister-after"),
        finding(FindingKind.OVERDUE, s.protected_later, "deregister-after"),
        finding(FindingKind.OVERDUE, s.referenced, "deregister-after"),  # wrong: a launch template uses it
        finding(FindingKind.ORPHANED_SNAPSHOT, s.orphan_old),
        finding(FindingKind.ORPHANED_SNAPSHOT, s.orphan_newer),
        finding(FindingKind.ORPHANED_SNAPSHOT, s.used),  # wrong: an AMI uses it
        finding(FindingKind.OVERDUE, s.deregistered, "cleanup-deferred"),
        finding(FindingKind.NON_COMPLIANT, s.never_judged, "never-judged"),
    ]


def outcome(actions: Sequence[SweepAction]) -> dict[str, tuple[str, str]]:
    return {a.resource_id: (a.kind.value, a.status.value) for a in actions}


def image_exists(estate: Estate, image_id: str) -> bool:
    return bool(
        estate.ec2().describe_images(
            Owners=["self"], IncludeDisabled=True, Filters=[{"Name": "image-id", "Values": [image_id]}]
        )["Images"]
    )


def snapshot_exists(estate: Estate, snapshot_id: str) -> bool:
    found = estate.ec2().describe_snapshots(
        OwnerIds=["self"], Filters=[{"Name": "snapshot-id", "Values": [snapshot_id]}]
    )
    return bool(found["Snapshots"])


def test_dry_run_reports_what_it_would_do_and_changes_nothing(estate: Estate, default_policy: GovernancePolicy) -> None:
    s = seed(estate)
    count = Counted()
    actions = sweeper(estate, sweep_policy(default_policy, dry_run=True), count).sweep(findings(s), evidence(estate))
    assert outcome(actions) == {
        s.overdue: ("deregister-overdue", "would-do"),
        s.referenced: ("deregister-overdue", "skipped"),
        s.protected_later: ("deregister-overdue", "would-do"),
        s.deregistered: ("retry-cleanup", "would-do"),
        s.orphan_old: ("delete-orphaned-snapshot", "would-do"),
        s.orphan_newer: ("delete-orphaned-snapshot", "capped"),
        s.used: ("delete-orphaned-snapshot", "skipped"),
        s.never_judged: ("judge", "would-do"),
    }
    assert all(image_exists(estate, i) for i in (s.overdue, s.protected_later, s.referenced))
    assert all(snapshot_exists(estate, x) for x in (s.orphan_old, s.orphan_newer, s.used, s.retried_snapshot))
    assert estate.tags_of(s.never_judged) == {}
    assert Inventory(TABLE, HOME).get(s.deregistered, HOME)["cleanup_status"] == "deferred"  # type: ignore[index]


def test_a_real_run_does_exactly_the_plan_and_a_second_run_nothing(
    estate: Estate, default_policy: GovernancePolicy
) -> None:
    s = seed(estate)
    policy = sweep_policy(default_policy)
    count = Counted()
    scanned = evidence(estate)
    # Protected between the scan and the sweep: AWS's state wins over the scan's.
    estate.ec2().create_tags(Resources=[s.protected_later], Tags=[{"Key": PROTECTED, "Value": "yes"}])

    actions = sweeper(estate, policy, count).sweep(findings(s), scanned)

    assert outcome(actions) == {
        s.overdue: ("deregister-overdue", "done"),
        s.protected_later: ("deregister-overdue", "skipped"),
        s.referenced: ("deregister-overdue", "skipped"),
        s.deregistered: ("retry-cleanup", "done"),
        s.orphan_old: ("delete-orphaned-snapshot", "done"),
        s.orphan_newer: ("delete-orphaned-snapshot", "capped"),
        s.used: ("delete-orphaned-snapshot", "skipped"),
        s.never_judged: ("judge", "done"),
    }
    reasons = {a.resource_id: a.reason for a in actions}
    assert reasons[s.protected_later] == f"protected by {PROTECTED} (tagged since the scan)"
    assert reasons[s.referenced].startswith("referenced by launch template lt-")
    assert reasons[s.used].startswith("used by ami-")
    assert reasons[s.orphan_newer] == "over the run's cap of 4 actions"
    assert reasons[s.deregistered] == "clean-up cleaned: 1 snapshot(s) deleted, 0 kept, 8 GB freed"
    assert not image_exists(estate, s.overdue)
    # The deregistered AMI's snapshots are the clean-up Lambda's (its deregistration event), not the sweep's.
    assert all(snapshot_exists(estate, x) for x in s.snapshots_of_overdue)
    assert image_exists(estate, s.protected_later)
    assert image_exists(estate, s.referenced)
    assert not snapshot_exists(estate, s.orphan_old)
    assert not snapshot_exists(estate, s.retried_snapshot)
    assert snapshot_exists(estate, s.orphan_newer)
    assert snapshot_exists(estate, s.used)
    assert estate.tags_of(s.never_judged)[f"{P}compliance"] == "non-compliant"
    assert Inventory(TABLE, HOME).get(s.deregistered, HOME)["cleanup_status"] == "done"  # type: ignore[index]
    sweeps = sorted((d["kind"], d["status"], v) for name, v, d in count.metrics if name == "SweepActions")
    assert sweeps == [
        ("delete-orphaned-snapshot", "capped", 1),
        ("delete-orphaned-snapshot", "done", 1),
        ("delete-orphaned-snapshot", "skipped", 1),
        ("deregister-overdue", "done", 1),
        ("deregister-overdue", "skipped", 2),
        ("judge", "done", 1),
        ("retry-cleanup", "done", 1),
    ]

    # Right after, with the same (now stale) findings over a fresh scan: only the capped one is left to do...
    again = sweeper(estate, policy, Counted()).sweep(findings(s), evidence(estate))
    assert [(a.resource_id, a.status) for a in again if a.status is not ActionStatus.SKIPPED] == [
        (s.orphan_newer, ActionStatus.DONE)
    ]
    skipped = {a.resource_id: a.reason for a in again if a.status is ActionStatus.SKIPPED}
    assert skipped == {
        s.overdue: "not in the scan's image listing",
        s.protected_later: f"protected by {PROTECTED}",
        s.referenced: skipped[s.referenced],
        s.deregistered: "the clean-up is done",
        s.orphan_old: "not in the scan's snapshot listing",
        s.used: skipped[s.used],
        s.never_judged: "already judged",
    }
    # ... and after that, nothing at all.
    third = sweeper(estate, policy, Counted()).sweep(findings(s), evidence(estate))
    assert [a for a in third if a.status is not ActionStatus.SKIPPED] == []


def test_a_failed_call_is_reported_failed_with_awss_code(
    estate: Estate, default_policy: GovernancePolicy, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = seed(estate)

    def refuse(self: Ec2Images, snapshot_id: str) -> None:
        raise ClientError({"Error": {"Code": "UnauthorizedOperation", "Message": "no"}}, "DeleteSnapshot")

    monkeypatch.setattr(Ec2Images, "delete_snapshot", refuse)
    actions = sweeper(estate, sweep_policy(default_policy), Counted()).sweep(
        [finding(FindingKind.ORPHANED_SNAPSHOT, s.orphan_old)], evidence(estate)
    )
    assert [(a.status, a.reason) for a in actions] == [
        (ActionStatus.FAILED, "DeleteSnapshot failed: UnauthorizedOperation")
    ]
    assert snapshot_exists(estate, s.orphan_old)


def test_a_sweep_that_is_off_does_nothing(estate: Estate, default_policy: GovernancePolicy) -> None:
    s = seed(estate)
    assert (
        sweeper(estate, sweep_policy(default_policy, enabled=False), Counted()).sweep(findings(s), evidence(estate))
        == ()
    )


def test_the_reports_own_findings_of_the_estate_give_the_same_plan(
    estate: Estate, default_policy: GovernancePolicy
) -> None:
    """The findings of rules/findings on the seeded estate nominate what the hand-built ones do, and the plan's
    checks refuse the same ones (the deregister-after AMI a launch template uses)."""
    s = seed(estate)
    policy = sweep_policy(default_policy)
    scanned = evidence(estate)
    plan = sweeper(estate, policy, Counted()).plan(find_all(policy, scanned, datetime.now(UTC)), scanned)
    mine = {s.overdue, s.protected_later, s.referenced, s.deregistered, s.retried_snapshot, s.never_judged}
    assert {(a.kind.value, a.resource_id, a.planned) for a in plan if a.resource_id in mine} == {
        ("deregister-overdue", s.overdue, True),
        ("deregister-overdue", s.protected_later, True),
        ("deregister-overdue", s.referenced, False),
        ("retry-cleanup", s.deregistered, True),
        ("delete-orphaned-snapshot", s.retried_snapshot, False),  # the retry's
        ("judge", s.never_judged, True),
    }
