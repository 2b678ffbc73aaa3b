"""The sweep's plan, table-tested: which findings become which actions, each safety check that refuses one, and
the blast-radius cap. Findings are built by hand, wrong ones included: the plan re-checks the evidence."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ami_governance.models.findings import (
    Finding,
    FindingKind,
    InventoryRecord,
    LaunchPermissions,
    RegionEvidence,
    ResourceType,
    VerifiedBy,
)
from ami_governance.models.policy import GovernancePolicy, load_policy_file, parse_policy
from ami_governance.models.scan import (
    FleetRecord,
    ImageParameterRecord,
    ImageRecord,
    ImageReference,
    ImageSnapshot,
    InstanceImageMetadataScan,
    InstanceImageRecord,
    InstanceRecord,
    LaunchConfigurationRecord,
    LaunchTemplateVersionRecord,
    RecycleBinImageRecord,
    ReferenceCheck,
    RegionScan,
    SnapshotRecord,
)
from ami_governance.rules.sweep import PlannedAction, deregister_deadline, plan_sweep, shared_with_others
from tests.conftest import POLICY_FILE

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
ACCOUNT = "123456789012"
OTHER = "210987654321"
REGION = "us-east-1"
P = "ami-governance:"
PROTECTED = f"{P}protected"
PASSED = {f"{P}remediation": "deregister-after 2026-11-20T10:00:00Z", f"{P}compliance": "non-compliant"}


def policy(mode: str = "enforce", cleanup_dry_run: bool = True, **sweep: Any) -> GovernancePolicy:
    document = load_policy_file(POLICY_FILE).model_dump(mode="json")
    document["mode"] = mode
    document["cleanup"]["dry_run"] = cleanup_dry_run
    document["report"]["sweep"] = {
        "enabled": True,
        "dry_run": False,
        "max_actions_per_run": 25,
        "delete_orphaned_snapshots_after_days": 30,
        "deregister_stale_unused": True,
        **sweep,
    }
    return parse_policy(document)


def image(image_id: str = "ami-1", days_old: int = 400, state: str = "available", **kwargs: Any) -> ImageRecord:
    snapshots = kwargs.pop("snapshots", (f"snap-{image_id[4:]}",))
    # The governance tags of an AMI this system judged come with `image-id` = its own id (else they are a copy's).
    own = {f"{P}image-id": image_id} if kwargs.pop("own", True) else {}
    kwargs["tags"] = {**own, **kwargs.get("tags", {})}
    return ImageRecord(
        image_id=image_id,
        name=f"app-al2023-1.0.{image_id[4:]}",
        owner_id=kwargs.pop("owner_id", ACCOUNT),
        state=state,
        creation_date=NOW - timedelta(days=days_old),
        snapshots=tuple(ImageSnapshot(s, 8) for s in snapshots),
        **kwargs,
    )


def snapshot(snapshot_id: str = "snap-9", days_old: int = 60, **kwargs: Any) -> SnapshotRecord:
    return SnapshotRecord(
        snapshot_id=snapshot_id,
        owner_id=kwargs.pop("owner_id", ACCOUNT),
        state=kwargs.pop("state", "completed"),
        volume_size_gib=8,
        start_time=NOW - timedelta(days=days_old),
        **kwargs,
    )


def private(image_id: str) -> LaunchPermissions:
    return LaunchPermissions(image_id, VerifiedBy.INVENTORY)


def evidence(
    images: tuple[ImageRecord, ...] = (),
    snapshots: tuple[SnapshotRecord, ...] = (),
    *,
    region: str = REGION,
    checked: tuple[str, ...] | None = None,
    permissions: tuple[LaunchPermissions, ...] | None = None,
    **scan: Any,
) -> RegionEvidence:
    references = scan.pop(
        "references", ReferenceCheck(checked=checked if checked is not None else tuple(i.image_id for i in images))
    )
    instance_images = scan.pop("instance_images", InstanceImageMetadataScan())
    return RegionEvidence(
        scan=RegionScan(account_id=ACCOUNT, region=region, scanned_at=NOW, images=images, snapshots=snapshots, **scan),
        references=references,
        instance_images=instance_images,
        launch_permissions=permissions if permissions is not None else tuple(private(i.image_id) for i in images),
        inventory=(),
    )


def finding(kind: FindingKind, resource_id: str, *, region: str = REGION, **kwargs: Any) -> Finding:
    resource_type = ResourceType.SNAPSHOT if resource_id.startswith("snap-") else ResourceType.IMAGE
    return Finding(
        kind=kind,
        account_id=ACCOUNT,
        region=region,
        resource_type=resource_type,
        resource_id=resource_id,
        reason="r",
        fix="f",
        **kwargs,
    )


def overdue(image_id: str = "ami-1", **kwargs: Any) -> Finding:
    return finding(FindingKind.OVERDUE, image_id, detail="deregister-after", **kwargs)


def orphan(snapshot_id: str = "snap-9", **kwargs: Any) -> Finding:
    return finding(FindingKind.ORPHANED_SNAPSHOT, snapshot_id, **kwargs)


def stale_unused(image_id: str = "ami-1") -> list[Finding]:
    return [finding(FindingKind.STALE, image_id), finding(FindingKind.UNUSED, image_id)]


def summary(actions: list[PlannedAction]) -> list[tuple[str, str, str]]:
    """(kind, resource, planned | capped | the refusal)."""
    return [
        (a.kind.value, a.resource_id, "planned" if a.planned else "capped" if a.capped else a.reason) for a in actions
    ]


# ---- what each finding becomes -------------------------------------------------------------------------------


def test_each_kind_of_finding_becomes_its_action() -> None:
    ev = evidence((image("ami-1", tags=PASSED), image("ami-2")), (snapshot("snap-9"),))
    findings = [overdue("ami-1"), *stale_unused("ami-2"), orphan("snap-9")]
    assert summary(plan_sweep(policy(), findings, [ev], NOW)) == [
        ("deregister-overdue", "ami-1", "planned"),
        ("deregister-stale", "ami-2", "planned"),
        ("delete-orphaned-snapshot", "snap-9", "planned"),
    ]


def test_nothing_when_the_sweep_is_off() -> None:
    ev = evidence((image("ami-1", tags=PASSED),))
    assert plan_sweep(policy(enabled=False), [overdue("ami-1")], [ev], NOW) == []


@pytest.mark.parametrize(
    ("options", "findings", "expected"),
    [
        ({"mode": "audit"}, [overdue("ami-1")], []),  # deadlines are acted on in enforce mode only
        ({"deregister_overdue": False}, [overdue("ami-1")], []),
        ({"deregister_stale_unused": False}, stale_unused("ami-1"), []),
        ({}, [finding(FindingKind.STALE, "ami-1")], []),  # stale but not unused
        ({}, [finding(FindingKind.UNUSED, "ami-1")], []),  # unused but not stale
        ({"delete_orphaned_snapshots_after_days": None}, [orphan("snap-9")], []),
        ({"delete_orphaned_snapshots_after_days": 90}, [orphan("snap-9")], []),  # 60 days old: not yet due
        ({}, [finding(FindingKind.EXPOSURE, "ami-1"), finding(FindingKind.NON_COMPLIANT, "ami-1")], []),
    ],
)
def test_options_and_kinds_that_nominate_nothing(
    options: dict[str, Any], findings: list[Finding], expected: list[Any]
) -> None:
    mode = options.pop("mode", "enforce")
    ev = evidence((image("ami-1", tags=PASSED),), (snapshot("snap-9"),))
    assert summary(plan_sweep(policy(mode=mode, **options), findings, [ev], NOW)) == expected


def test_duplicate_findings_give_one_action() -> None:
    ev = evidence((image("ami-1", tags=PASSED),))
    assert summary(plan_sweep(policy(), [overdue(), overdue()], [ev], NOW)) == [
        ("deregister-overdue", "ami-1", "planned")
    ]


# ---- the safety checks, on the evidence rather than the finding ----------------------------------------------


def test_nothing_at_all_in_a_region_whose_evidence_is_incomplete() -> None:
    broken = evidence(
        (image("ami-1", tags=PASSED),), (snapshot("snap-9"),), listing_errors={"instances": "Throttling: x"}
    )
    fine = evidence((image("ami-2", tags=PASSED),), region="eu-west-1")
    findings = [overdue("ami-1"), orphan("snap-9"), overdue("ami-2", region="eu-west-1")]
    assert summary(plan_sweep(policy(), findings, [broken, fine], NOW)) == [("deregister-overdue", "ami-2", "planned")]


def test_nothing_in_a_region_without_evidence() -> None:
    assert plan_sweep(policy(), [overdue("ami-1", region="eu-west-1")], [evidence()], NOW) == []


def test_an_incomplete_reference_check_or_inventory_read_makes_the_region_incomplete() -> None:
    refs = ReferenceCheck(checked=(), unchecked=("ami-1",), listing_errors={"image-references": "Throttling: x"})
    ev = evidence((image("ami-1", tags=PASSED),), references=refs)
    assert plan_sweep(policy(), [overdue()], [ev], NOW) == []
    no_inventory = replace(evidence((image("ami-1", tags=PASSED),)), inventory_error="AccessDenied: no")
    assert plan_sweep(policy(), [overdue()], [no_inventory], NOW) == []


LT = LaunchTemplateVersionRecord("lt-1", "web", 3, default=False, latest=False, image_id="ami-1")


@pytest.mark.parametrize(
    ("scan", "refusal"),
    [
        ({"instances": (InstanceRecord("i-1", "ami-1", "stopped"),)}, "referenced by instance i-1 (stopped)"),
        ({"launch_template_versions": (LT,)}, "referenced by launch template lt-1 version 3"),
        (
            {"image_parameters": (ImageParameterRecord("/golden/web", "ami-1"),)},
            "referenced by SSM parameter /golden/web",
        ),
        (
            {"launch_configurations": (LaunchConfigurationRecord("lc-web", "ami-1"),)},
            "referenced by launch configuration lc-web",
        ),
        (
            {"fleets": (FleetRecord("fleet-1", "instant", "active", image_ids=("ami-1",)),)},
            "referenced by fleet fleet-1",
        ),
        (
            {
                "references": ReferenceCheck(
                    checked=("ami-1",), references=(ImageReference("ami-1", "imagebuilder:ImageRecipe", "arn:r"),)
                )
            },
            "referenced by imagebuilder:ImageRecipe arn:r",
        ),
        (
            {
                "instance_images": InstanceImageMetadataScan(
                    records=(InstanceImageRecord("i-7", "terminated", None, "ami-1"),)
                )
            },
            "referenced by instance i-7 (terminated)",
        ),
    ],
)
def test_a_referenced_ami_is_never_deregistered(scan: dict[str, Any], refusal: str) -> None:
    """The finding says overdue / stale and unused; the scan shows a use: the scan wins."""
    ev = evidence((image("ami-1", tags=PASSED),), **scan)
    for findings in ([overdue()], stale_unused()):
        (action,) = plan_sweep(policy(), findings, [ev], NOW)
        assert (action.refused, action.reason) == (True, refusal)


@pytest.mark.parametrize(
    ("ami", "permissions", "record", "refusal"),
    [
        (image("ami-1", tags={**PASSED, PROTECTED: ""}), None, None, f"protected by {PROTECTED}"),
        (
            image("ami-1", tags=PASSED),
            None,
            InventoryRecord("ami-1", REGION, protected=True),
            f"protected by {PROTECTED}",
        ),
        (image("ami-1", tags=PASSED, owner_id=OTHER), None, None, f"owned by account {OTHER}"),
        (image("ami-1", tags=PASSED, state="pending"), None, None, "the AMI is pending"),
        (image("ami-1", tags=PASSED, public=True), None, None, "shared"),
        (
            image("ami-1", tags=PASSED),
            LaunchPermissions("ami-1", VerifiedBy.DESCRIBE, accounts=(OTHER,)),
            None,
            "shared",
        ),
        (
            image("ami-1", tags=PASSED),
            LaunchPermissions("ami-1", VerifiedBy.DESCRIBE, ou_arns=("arn:ou",)),
            None,
            "shared",
        ),
        (
            image("ami-1", tags=PASSED),
            LaunchPermissions("ami-1", VerifiedBy.DESCRIBE, organization_arns=("arn:o",)),
            None,
            "shared",
        ),
        (image("ami-1", tags=PASSED), LaunchPermissions("ami-1", VerifiedBy.UNKNOWN), None, "shared"),
        (
            image("ami-1", tags={f"{P}remediation": "deregister-after 2026-12-01T00:00:00Z"}),
            None,
            None,
            "has not passed",
        ),
        (
            image("ami-1", tags={f"{P}remediation": "disabled"}),
            None,
            None,
            "no deregister-after deadline of its own on the AMI",
        ),
    ],
)
def test_overdue_amis_the_evidence_refuses(
    ami: ImageRecord, permissions: LaunchPermissions | None, record: InventoryRecord | None, refusal: str
) -> None:
    ev = replace(
        evidence((ami,), permissions=(permissions,) if permissions else None),
        inventory=(record,) if record else (),
    )
    (action,) = plan_sweep(policy(), [overdue()], [ev], NOW)
    assert action.refused
    assert refusal in action.reason


def test_an_ami_without_launch_permissions_in_the_evidence_counts_as_shared() -> None:
    ev = evidence((image("ami-1", tags=PASSED),), permissions=())
    (action,) = plan_sweep(policy(), [overdue()], [ev], NOW)
    assert action.refused
    assert action.reason.startswith("shared with other accounts")
    (allowed,) = plan_sweep(policy(allow_shared=True), [overdue()], [ev], NOW)
    assert allowed.planned


def test_an_own_account_in_the_launch_permissions_is_not_sharing() -> None:
    assert not shared_with_others(LaunchPermissions("ami-1", VerifiedBy.DESCRIBE, accounts=(ACCOUNT,)), ACCOUNT)
    assert shared_with_others(LaunchPermissions("ami-1", VerifiedBy.DESCRIBE, public=True), ACCOUNT)


def test_a_stale_ami_not_confirmed_by_describe_image_references_is_kept() -> None:
    ev = evidence((image("ami-1"),), checked=())
    (action,) = plan_sweep(policy(), stale_unused(), [ev], NOW)
    assert (action.refused, action.reason) == (True, "not confirmed unreferenced by DescribeImageReferences")


def test_a_finding_whose_evidence_is_incomplete_is_not_acted_on() -> None:
    ev = evidence((image("ami-1", tags=PASSED),), (snapshot("snap-9"),))
    actions = plan_sweep(policy(), [overdue(actionable=False), orphan(actionable=False)], [ev], NOW)
    assert summary(actions) == [
        ("deregister-overdue", "ami-1", "the finding's evidence is incomplete"),
        ("delete-orphaned-snapshot", "snap-9", "the finding's evidence is incomplete"),
    ]
    # one such duplicate is enough
    (action,) = plan_sweep(policy(), [overdue(), overdue(actionable=False)], [ev], NOW)
    assert action.refused


def test_a_deregister_after_tag_that_is_not_a_time_is_no_deadline() -> None:
    bad = policy()
    assert deregister_deadline(bad, {f"{P}remediation": "deregister-after soon"}) is None
    assert deregister_deadline(bad, {f"{P}remediation": "deregister-after 2026-11-20T10:00:00"}) is None  # naive
    assert deregister_deadline(bad, PASSED) == datetime(2026, 11, 20, 10, tzinfo=UTC)


BIN = RecycleBinImageRecord("ami-0dead")


@pytest.mark.parametrize(
    ("images", "snap", "inventory", "bin_images", "refusal"),
    [
        ((image("ami-1", snapshots=("snap-9",)),), snapshot(), (), (), "used by ami-1"),
        ((image("ami-1", state="disabled", snapshots=("snap-9",)),), snapshot(), (), (), "used by ami-1"),
        ((), snapshot(tags={PROTECTED: "yes"}), (), (), f"protected by {PROTECTED}"),
        ((), snapshot(owner_id=OTHER), (), (), f"owned by account {OTHER}"),
        ((), snapshot(state="pending"), (), (), "the snapshot is pending"),
        ((), snapshot(public=True), (), (), "public (restorable by everyone)"),
        (
            (),
            snapshot(description="Created by CreateImage(i-1) for ami-0dead from vol-1"),
            (),
            (BIN,),
            "made for ami-0dead, which is in the AMI Recycle Bin (a restore needs it)",
        ),
        (
            (),
            snapshot(
                description="Copied for DestinationAmi ami-0dead from SourceAmi ami-0abc for SourceSnapshot snap-1. x"
            ),
            (),
            (BIN,),
            "made for ami-0dead, which is in the AMI Recycle Bin (a restore needs it)",
        ),
        ((), snapshot(), (InventoryRecord("ami-0dead", REGION, snapshot_ids=("snap-9",)),), (BIN,), "Recycle Bin"),
        ((), snapshot(tags={f"{P}image-id": "ami-0dead"}), (), (BIN,), "Recycle Bin"),
        (
            (image("ami-2", snapshots=()),),
            snapshot(tags={f"{P}image-id": "ami-2"}),
            (),
            (),
            "made for ami-2, which still exists",
        ),
        (
            (),
            snapshot(),
            (InventoryRecord("ami-old", REGION, snapshot_ids=("snap-9",), protected=True),),
            (),
            "made for ami-old, which was protected",
        ),
        (
            (),
            snapshot(),
            (InventoryRecord("ami-old", REGION, snapshot_ids=("snap-9",), cleanup_status="in-progress"),),
            (),
            "the clean-up of ami-old is in progress",
        ),
    ],
)
def test_orphaned_snapshots_the_evidence_refuses(
    images: tuple[ImageRecord, ...],
    snap: SnapshotRecord,
    inventory: tuple[InventoryRecord, ...],
    bin_images: tuple[RecycleBinImageRecord, ...],
    refusal: str,
) -> None:
    ev = replace(evidence(images, (snap,), recycle_bin_images=bin_images), inventory=inventory)
    (action,) = plan_sweep(policy(), [orphan()], [ev], NOW)
    assert action.refused
    assert refusal in action.reason


def test_an_orphan_the_listing_does_not_show_is_refused() -> None:
    (action,) = plan_sweep(policy(), [orphan("snap-404")], [evidence()], NOW)
    assert (action.refused, action.reason) == (True, "not in the scan's snapshot listing")


# ---- clean-ups left deferred or dry-run ------------------------------------------------------------------------


def deferred(image_id: str = "ami-0dead", status: str = "deferred", **kwargs: Any) -> InventoryRecord:
    return InventoryRecord(
        image_id, REGION, cleanup_status=status, cleanup_at="2026-11-01T00:00:00Z", snapshot_ids=("snap-9",), **kwargs
    )


def retry_finding(image_id: str = "ami-0dead", detail: str = "cleanup-deferred") -> Finding:
    return finding(FindingKind.OVERDUE, image_id, detail=detail)


@pytest.mark.parametrize(
    ("record", "cleanup_dry_run", "images", "bin_images", "expected"),
    [
        (deferred(), True, (), (), "planned"),
        (deferred(status="dry-run"), False, (), (), "planned"),
        (
            deferred(status="dry-run"),
            True,
            (),
            (),
            "the clean-up policy is still dry-run: a retry would only report again",
        ),
        (deferred(status="done"), False, (), (), "the clean-up is done"),
        (None, False, (), (), "no inventory record of the clean-up"),
        (deferred(), False, (image("ami-0dead"),), (), "the AMI is still registered"),
        (deferred(), False, (), (BIN,), "the AMI is in the AMI Recycle Bin (a restore needs its snapshots)"),
        (deferred(protected=True), False, (), (), f"protected by {PROTECTED}"),
    ],
)
def test_retries_of_clean_ups(
    record: InventoryRecord | None,
    cleanup_dry_run: bool,
    images: tuple[ImageRecord, ...],
    bin_images: tuple[RecycleBinImageRecord, ...],
    expected: str,
) -> None:
    ev = replace(evidence(images, recycle_bin_images=bin_images), inventory=(record,) if record else ())
    (action,) = plan_sweep(policy(cleanup_dry_run=cleanup_dry_run), [retry_finding()], [ev], NOW)
    assert summary([action]) == [("retry-cleanup", "ami-0dead", expected)]


def test_retries_need_the_option() -> None:
    ev = replace(evidence(), inventory=(deferred(),))
    assert plan_sweep(policy(retry_deferred_cleanups=False), [retry_finding()], [ev], NOW) == []
    # in audit mode too: a retry is the clean-up's own work, under its own dry-run
    assert summary(plan_sweep(policy(mode="audit"), [retry_finding()], [ev], NOW)) == [
        ("retry-cleanup", "ami-0dead", "planned")
    ]


def test_an_orphan_of_a_retried_clean_up_is_left_to_the_retry() -> None:
    ev = replace(evidence((), (snapshot("snap-9"),)), inventory=(deferred(),))
    assert summary(plan_sweep(policy(), [orphan("snap-9"), retry_finding()], [ev], NOW)) == [
        ("delete-orphaned-snapshot", "snap-9", "left to the clean-up retry of ami-0dead"),
        ("retry-cleanup", "ami-0dead", "planned"),
    ]


# ---- AMIs never judged --------------------------------------------------------------------------------------


def test_a_copy_is_not_past_its_sources_deadline_and_its_inherited_verdict_is_no_judgment() -> None:
    copy = image("ami-2", tags=PASSED, own=False, source_image_id="ami-1", source_image_region="eu-west-1")
    findings = [overdue("ami-2"), finding(FindingKind.NON_COMPLIANT, "ami-2", detail="never-judged")]
    assert summary(plan_sweep(policy(), findings, [evidence((copy,))], NOW)) == [
        ("deregister-overdue", "ami-2", "no deregister-after deadline of its own on the AMI"),
        ("judge", "ami-2", "planned"),
    ]


def test_never_judged_amis_are_judged_and_never_capped() -> None:
    images = (*tuple(image(f"ami-{n}") for n in range(5)), image("ami-9", tags={f"{P}compliance": "compliant"}))
    kinds = (FindingKind.NON_COMPLIANT, FindingKind.UNJUDGED)  # non-compliant now, or compliant and only untagged
    findings = [finding(kinds[n % 2], i.image_id, detail="never-judged") for n, i in enumerate(images)]
    actions = plan_sweep(policy(max_actions_per_run=1), findings, [evidence(images)], NOW)
    assert summary(actions) == [
        *[("judge", f"ami-{n}", "planned") for n in range(5)],
        ("judge", "ami-9", "already judged"),
    ]


# ---- the blast-radius cap ---------------------------------------------------------------------------------------


def test_the_cap_takes_the_oldest_first_then_by_id_and_marks_the_rest() -> None:
    images = (
        image("ami-a", days_old=100, tags=PASSED),
        image("ami-b", days_old=300, tags=PASSED),
        image("ami-c", days_old=300, tags=PASSED),
        image("ami-d", days_old=200, tags={**PASSED, PROTECTED: ""}),
    )
    snaps = (snapshot("snap-1", days_old=250), snapshot("snap-2", days_old=40))
    findings = [orphan("snap-2"), *(overdue(i.image_id) for i in reversed(images)), orphan("snap-1")]
    actions = plan_sweep(policy(max_actions_per_run=3), findings, [evidence(images, snaps)], NOW)
    assert summary(actions) == [
        ("deregister-overdue", "ami-b", "planned"),
        ("deregister-overdue", "ami-c", "planned"),
        ("delete-orphaned-snapshot", "snap-1", "planned"),
        ("deregister-overdue", "ami-d", f"protected by {PROTECTED}"),  # refusals do not use up the cap
        ("deregister-overdue", "ami-a", "capped"),
        ("delete-orphaned-snapshot", "snap-2", "capped"),
    ]
    assert actions[4].reason == "over the run's cap of 3 actions"


def test_the_cap_is_per_run_across_regions_and_the_plan_is_deterministic() -> None:
    us = evidence((image("ami-1", days_old=50, tags=PASSED),))
    eu = evidence((image("ami-2", days_old=60, tags=PASSED),), region="eu-west-1")
    findings = [overdue("ami-1"), overdue("ami-2", region="eu-west-1")]
    first = plan_sweep(policy(max_actions_per_run=1), findings, [us, eu], NOW)
    again = plan_sweep(policy(max_actions_per_run=1), list(reversed(findings)), [eu, us], NOW)
    assert first == again
    assert summary(first) == [("deregister-overdue", "ami-2", "planned"), ("deregister-overdue", "ami-1", "capped")]
