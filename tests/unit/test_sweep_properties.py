"""The sweep's plan over random estates and random findings, wrong ones included (orphaned, stale, unused or
overdue claims about resources that are in use): it never deregisters an AMI or deletes a snapshot that is
referenced, protected, used by another AMI (listed or in the Recycle Bin), or in a region whose scan was
incomplete, and it never plans more than the cap. The checks below are written from the estate, independently of
the rules' own index."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ami_governance.models.findings import (
    ActionKind,
    Finding,
    FindingKind,
    InventoryRecord,
    LaunchPermissions,
    RegionEvidence,
    ResourceType,
    VerifiedBy,
)
from ami_governance.models.policy import GovernancePolicy
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
from ami_governance.rules.sweep import CLEANUP_DEFERRED, CLEANUP_DRY_RUN, NEVER_JUDGED, plan_sweep
from tests.unit.test_sweep_plan import ACCOUNT, NOW, OTHER, PASSED, PROTECTED, policy

REGIONS = ("us-east-1", "eu-west-1")
IMAGE_IDS = tuple(f"ami-0{n:x}" for n in range(8))
SNAPSHOT_IDS = tuple(f"snap-0{n:x}" for n in range(8))
IMAGE_STATES = ("available", "disabled", "pending", "failed")
IMAGE_ID_TAG = "ami-governance:image-id"
# Built once: a policy is validated by pydantic, too slow to do in every example.
POLICIES = tuple(
    policy(mode=mode, cleanup_dry_run=False, max_actions_per_run=cap, allow_shared=shared)
    for mode in ("enforce", "audit")
    for cap in (1, 3, 25)
    for shared in (False, True)
)

ids = st.sampled_from(IMAGE_IDS)
snapshot_ids = st.sampled_from(SNAPSHOT_IDS)
owners = st.sampled_from((ACCOUNT, ACCOUNT, ACCOUNT, OTHER))


@st.composite
def images(draw: st.DrawFn) -> ImageRecord:
    if draw(st.booleans()):
        # One the sweep may act on, unless something else in the estate (a reference, a share) says otherwise.
        image_id = draw(ids)
        return ImageRecord(
            image_id=image_id,
            name="n",
            owner_id=ACCOUNT,
            state="available",
            creation_date=NOW - timedelta(days=draw(st.integers(0, 900))),
            tags={**PASSED, IMAGE_ID_TAG: image_id, **({PROTECTED: ""} if draw(st.integers(0, 5)) == 0 else {})},
            snapshots=tuple(ImageSnapshot(s) for s in draw(st.lists(snapshot_ids, max_size=2, unique=True))),
        )
    tags: dict[str, str] = {}
    if draw(st.booleans()):
        tags.update(PASSED)
    if draw(st.integers(0, 4)) == 0:
        tags[PROTECTED] = ""
    return ImageRecord(
        image_id=draw(ids),
        name="n",
        owner_id=draw(owners),
        state=draw(st.sampled_from(IMAGE_STATES)),
        creation_date=NOW - timedelta(days=draw(st.integers(0, 900))),
        tags=tags,
        snapshots=tuple(ImageSnapshot(s) for s in draw(st.lists(snapshot_ids, max_size=3, unique=True))),
        public=draw(st.integers(0, 5)) == 0,
    )


@st.composite
def snapshots(draw: st.DrawFn) -> SnapshotRecord:
    if draw(st.booleans()):
        # One the sweep may delete, unless a hazard drawn here or elsewhere in the estate says otherwise.
        hazards = draw(st.integers(0, 5))
        return SnapshotRecord(
            draw(snapshot_ids),
            ACCOUNT,
            "completed",
            8,
            start_time=NOW - timedelta(days=draw(st.integers(30, 400))),
            description=f"Created by CreateImage(i-0a) for {draw(ids)} from vol-0b" if hazards == 1 else "",
            tags={PROTECTED: ""} if hazards == 2 else {IMAGE_ID_TAG: draw(ids)} if hazards == 3 else {},
        )
    tags: dict[str, str] = {}
    if draw(st.integers(0, 4)) == 0:
        tags[PROTECTED] = "true"
    if draw(st.booleans()):
        tags[IMAGE_ID_TAG] = draw(ids)
    description = draw(
        st.sampled_from(
            (
                "",
                "Created by CreateImage(i-0a) for {} from vol-0b",
                "Copied for DestinationAmi {} from SourceAmi ami-0ff for SourceSnapshot snap-0ff. Task created on 1.",
            )
        )
    ).format(draw(ids))
    return SnapshotRecord(
        snapshot_id=draw(snapshot_ids),
        owner_id=draw(owners),
        state=draw(st.sampled_from(("completed", "completed", "pending", "error"))),
        volume_size_gib=8,
        start_time=NOW - timedelta(days=draw(st.integers(0, 400))),
        description=description,
        tags=tags,
        public=draw(st.integers(0, 6)) == 0,
    )


@st.composite
def permissions(draw: st.DrawFn, image_id: str) -> LaunchPermissions:
    verified = draw(
        st.sampled_from((VerifiedBy.INVENTORY, VerifiedBy.DESCRIBE, VerifiedBy.DESCRIBE, VerifiedBy.UNKNOWN))
    )
    return LaunchPermissions(
        image_id,
        verified,
        public=draw(st.integers(0, 9)) == 0,
        accounts=(draw(st.sampled_from((ACCOUNT, OTHER))),) if draw(st.integers(0, 4)) == 0 else (),
        organization_arns=("arn:aws:organizations::1:organization/o-1",) if draw(st.integers(0, 9)) == 0 else (),
        ou_arns=("arn:aws:organizations::1:ou/o-1/ou-1",) if draw(st.integers(0, 9)) == 0 else (),
    )


@st.composite
def evidences(draw: st.DrawFn, region: str) -> RegionEvidence:
    listed = {i.image_id: i for i in draw(st.lists(images(), min_size=2, max_size=6))}  # one record per id
    listed_snapshots = {s.snapshot_id: s for s in draw(st.lists(snapshots(), min_size=3, max_size=8))}
    # Per kind of reference (seven kinds): one AMI, a third of the time.
    used = st.integers(0, 2).flatmap(lambda n: st.lists(ids, min_size=1, max_size=1) if n == 0 else st.just([]))
    scan = RegionScan(
        account_id=ACCOUNT,
        region=region,
        scanned_at=NOW,
        images=tuple(listed.values()),
        snapshots=tuple(listed_snapshots.values()),
        instances=tuple(InstanceRecord(f"i-{n}", i, "stopped") for n, i in enumerate(draw(used))),
        launch_template_versions=tuple(
            LaunchTemplateVersionRecord(f"lt-{n}", "t", 1, True, True, i) for n, i in enumerate(draw(used))
        ),
        fleets=tuple(FleetRecord(f"fleet-{n}", "instant", "active", image_ids=(i,)) for n, i in enumerate(draw(used))),
        launch_configurations=tuple(LaunchConfigurationRecord(f"lc-{n}", i) for n, i in enumerate(draw(used))),
        image_parameters=tuple(ImageParameterRecord(f"/p/{n}", i) for n, i in enumerate(draw(used))),
        recycle_bin_images=tuple(
            RecycleBinImageRecord(i) for i in draw(st.lists(ids, max_size=3, unique=True)) if i not in listed
        ),
        listing_errors={"instances": "Throttling: Rate exceeded"} if draw(st.integers(0, 7)) == 0 else {},
    )
    # DescribeImageReferences confirms the candidates: often every listed AMI, sometimes any.
    checked = list(listed) if draw(st.booleans()) else draw(st.lists(ids, max_size=8, unique=True))
    unchecked = [draw(st.sampled_from(list(listed)))] if draw(st.integers(0, 5)) == 0 else []
    checked = [i for i in checked if i not in unchecked]
    references = ReferenceCheck(
        checked=tuple(checked),
        references=tuple(ImageReference(i, "imagebuilder:ImageRecipe", f"arn:r/{i}") for i in draw(used)),
        unchecked=tuple(unchecked),
        listing_errors={"image-references": "Throttling: x"} if unchecked else {},
    )
    metadata = InstanceImageMetadataScan(
        records=tuple(InstanceImageRecord(f"i-m{n}", "running", None, i) for n, i in enumerate(draw(used)))
    )
    inventory = tuple(
        InventoryRecord(
            image_id=i,
            region=region,
            snapshot_ids=tuple(draw(st.lists(snapshot_ids, max_size=3, unique=True))),
            protected=draw(st.integers(0, 4)) == 0,
            cleanup_status=draw(st.sampled_from((None, "deferred", "dry-run", "done", "in-progress"))),
        )
        for i in draw(st.lists(ids, max_size=5, unique=True))
    )
    known = [i for i in listed if draw(st.integers(0, 5)) > 0]
    return RegionEvidence(
        scan=scan,
        references=references,
        instance_images=metadata,
        launch_permissions=tuple(
            LaunchPermissions(i, VerifiedBy.INVENTORY) if draw(st.booleans()) else draw(permissions(i)) for i in known
        ),
        inventory=inventory,
        inventory_error="AccessDenied: no" if draw(st.integers(0, 9)) == 0 else None,
    )


@st.composite
def findings(draw: st.DrawFn, estate: tuple[RegionEvidence, ...]) -> Finding:
    kind, resource_type, detail = draw(
        st.sampled_from(
            (
                (FindingKind.OVERDUE, ResourceType.IMAGE, "deregister-after"),
                (FindingKind.OVERDUE, ResourceType.IMAGE, "deregister-after"),
                (FindingKind.OVERDUE, ResourceType.IMAGE, CLEANUP_DEFERRED),
                (FindingKind.OVERDUE, ResourceType.IMAGE, CLEANUP_DRY_RUN),
                (FindingKind.STALE, ResourceType.IMAGE, ""),
                (FindingKind.UNUSED, ResourceType.IMAGE, ""),
                (FindingKind.ORPHANED_SNAPSHOT, ResourceType.SNAPSHOT, ""),
                (FindingKind.ORPHANED_SNAPSHOT, ResourceType.SNAPSHOT, ""),
                (FindingKind.NON_COMPLIANT, ResourceType.IMAGE, NEVER_JUDGED),
                (FindingKind.EXPOSURE, ResourceType.IMAGE, "public-image"),
            )
        )
    )
    region = draw(st.sampled_from(REGIONS))
    # Mostly about resources the region lists (or, for a clean-up, records), sometimes about anything at all.
    (evidence,) = [e for e in estate if e.region == region]
    if resource_type is ResourceType.SNAPSHOT:
        known = [s.snapshot_id for s in evidence.scan.snapshots]
    elif detail.startswith("cleanup"):
        known = [r.image_id for r in evidence.inventory]
    else:
        known = [i.image_id for i in evidence.scan.images]
    anything = snapshot_ids if resource_type is ResourceType.SNAPSHOT else ids
    resource = draw(st.sampled_from(known) if known and draw(st.integers(0, 4)) > 0 else anything)
    return Finding(
        kind=kind,
        account_id=ACCOUNT,
        region=region,
        resource_type=resource_type,
        resource_id=resource,
        reason="r",
        fix="f",
        detail=detail,
        actionable=draw(st.integers(0, 9)) > 0,
    )


# ---- what the estate says, independently of the rules -------------------------------------------------------------


def referenced(evidence: RegionEvidence, image_id: str) -> bool:
    scan = evidence.scan
    return (
        any(i.image_id == image_id for i in scan.instances)
        or any(v.image_id == image_id for v in scan.launch_template_versions)
        or any(image_id in f.image_ids for f in scan.fleets)
        or any(c.image_id == image_id for c in scan.launch_configurations)
        or any(p.image_id == image_id for p in scan.image_parameters)
        or any(r.image_id == image_id for r in evidence.references.references)
        or any(r.image_id == image_id for r in evidence.instance_images.records)
        or image_id in evidence.references.unchecked
    )


def image_protected(evidence: RegionEvidence, image_id: str) -> bool:
    listed = [i for i in evidence.scan.images if i.image_id == image_id]
    return any(PROTECTED in i.tags for i in listed) or any(
        r.protected for r in evidence.inventory if r.image_id == image_id
    )


def shared(evidence: RegionEvidence, image: ImageRecord) -> bool:
    known = [p for p in evidence.launch_permissions if p.image_id == image.image_id]
    if image.public or not known:
        return True
    p = known[0]
    return (
        p.verified_by is VerifiedBy.UNKNOWN
        or p.public
        or any(a != ACCOUNT for a in p.accounts)
        or bool(p.organization_arns or p.ou_arns)
    )


def made_for(evidence: RegionEvidence, snapshot: SnapshotRecord) -> set[str]:
    linked = {r.image_id for r in evidence.inventory if snapshot.snapshot_id in r.snapshot_ids}
    linked |= {i for i in IMAGE_IDS if i in snapshot.description.split()}
    if IMAGE_ID_TAG in snapshot.tags:
        linked.add(snapshot.tags[IMAGE_ID_TAG])
    return linked


def assert_image_safe(evidence: RegionEvidence, image_id: str, allow_shared: bool) -> None:
    (image,) = [i for i in evidence.scan.images if i.image_id == image_id]
    assert image.owner_id == ACCOUNT
    assert image.state in ("available", "disabled")
    assert not referenced(evidence, image_id)
    assert not image_protected(evidence, image_id)
    assert allow_shared or not shared(evidence, image)


def assert_snapshot_safe(evidence: RegionEvidence, snapshot_id: str, allow_shared: bool) -> None:
    (snapshot,) = [s for s in evidence.scan.snapshots if s.snapshot_id == snapshot_id]
    assert snapshot.owner_id == ACCOUNT
    assert snapshot.state == "completed"
    assert PROTECTED not in snapshot.tags
    assert allow_shared or not snapshot.public
    assert not any(snapshot_id in i.snapshot_ids for i in evidence.scan.images)  # any AMI, disabled ones too
    linked = made_for(evidence, snapshot)
    in_bin = {i.image_id for i in evidence.scan.recycle_bin_images}
    assert not linked & in_bin
    assert not linked & {i.image_id for i in evidence.scan.images}
    assert not any(image_protected(evidence, i) for i in linked)


@st.composite
def estates(draw: st.DrawFn) -> tuple[tuple[RegionEvidence, ...], list[Finding]]:
    estate = (draw(evidences(REGIONS[0])), draw(evidences(REGIONS[1])))
    claims = draw(st.lists(findings(estate), min_size=3, max_size=25))
    # A stale AMI is acted on only when it is also unused: often claim both.
    partners = [replace(c, kind=FindingKind.UNUSED) for c in claims if c.kind is FindingKind.STALE]
    return estate, claims + [c for c in partners if draw(st.booleans())]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(policy_=st.sampled_from(POLICIES), drawn=estates())
def test_the_plan_never_destroys_what_is_in_use_and_never_exceeds_the_cap(
    policy_: GovernancePolicy, drawn: tuple[tuple[RegionEvidence, ...], list[Finding]]
) -> None:
    estate, claims = drawn
    actions = plan_sweep(policy_, claims, list(estate), NOW)
    by_region = {e.region: e for e in estate}
    allow_shared = policy_.report.sweep.allow_shared
    cap = policy_.report.sweep.max_actions_per_run
    destructive = [a for a in actions if a.planned and a.kind is not ActionKind.JUDGE]
    assert len(destructive) <= cap
    assert not any(a.capped for a in actions) or len(destructive) == cap
    for action in actions:
        evidence = by_region[action.region]
        assert evidence.complete  # nothing at all, not even a refusal, where the scan was incomplete
        if not action.planned:
            continue
        nominating = [c for c in claims if (c.region, c.resource_id) == (action.region, action.resource_id)]
        assert nominating
        assert all(c.actionable for c in nominating)
        if action.kind in (ActionKind.DEREGISTER_OVERDUE, ActionKind.DEREGISTER_STALE):
            assert_image_safe(evidence, action.resource_id, allow_shared)
        elif action.kind is ActionKind.DELETE_ORPHANED_SNAPSHOT:
            assert_snapshot_safe(evidence, action.resource_id, allow_shared)
            (snapshot,) = [s for s in evidence.scan.snapshots if s.snapshot_id == action.resource_id]
            assert snapshot.start_time is not None
            assert NOW - snapshot.start_time >= timedelta(days=30)
        elif action.kind is ActionKind.RETRY_CLEANUP:
            assert action.resource_id not in {i.image_id for i in evidence.scan.images}
            assert action.resource_id not in {i.image_id for i in evidence.scan.recycle_bin_images}
            assert not image_protected(evidence, action.resource_id)
        if action.kind is ActionKind.DEREGISTER_OVERDUE:
            assert policy_.mode.value == "enforce"
