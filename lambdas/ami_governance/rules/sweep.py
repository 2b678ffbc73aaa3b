"""Pure planning of the sweep: which findings become which actions, and which of those a safety check refuses.

A finding only nominates. Every action is re-checked against the region's evidence itself (the scan's listings,
the references, the launch permissions, the inventory), so that a wrong finding cannot make the sweep destroy
what is in use: nothing at all in a region whose evidence is incomplete; never a finding whose evidence is
incomplete; never a protected AMI or snapshot; never an AMI anything references (or whose references are
unknown); never an AMI shared with another account unless the policy allows it (unknown sharing counts as
shared); never a snapshot an AMI uses, listed or sitting in the AMI Recycle Bin. Then the blast-radius cap: the
oldest resources first, the rest left for the next run.

The service (services/sweep.py) re-reads each resource from AWS right before acting: the plan is what the scan
allows, not a licence.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

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
from ami_governance.models.policy import GovernancePolicy, Mode
from ami_governance.models.scan import ImageRecord, SnapshotRecord
from ami_governance.rules.cleanup import image_named_in_description
from ami_governance.rules.tags import SystemTag, inherited_system_tags

# Finding details (Finding.detail) the sweep acts on.
NEVER_JUDGED = "never-judged"  # a non-compliant or unjudged finding: an AMI that carries no verdict tag
CLEANUP_DEFERRED = "cleanup-deferred"  # overdue: a clean-up left deferred
CLEANUP_DRY_RUN = "cleanup-dry-run"  # overdue: a clean-up left dry-run
# The inventory's clean-up statuses a retry takes up (services/cleanup.py leaves them for the sweep).
RETRYABLE_CLEANUP_STATUSES = frozenset({"deferred", "dry-run"})
CLEANUP_IN_PROGRESS_STATUSES = frozenset({"in-progress", "awaiting-call"})
# EC2 deregisters available and disabled AMIs; a pending or failed one is not the sweep's to touch.
DEREGISTERABLE_STATES = frozenset({"available", "disabled"})
DEREGISTER_AFTER = "deregister-after"
# Actions that change nothing but tags: the blast-radius cap counts the destructive ones.
UNCAPPED_KINDS = frozenset({ActionKind.JUDGE})


@dataclass(frozen=True)
class PlannedAction:
    """One action the sweep would take: planned, refused by a safety check (`refused`, the reason says which),
    or over the run's cap (`capped`). `since`: when the resource was made (the cap takes the oldest first)."""

    kind: ActionKind
    account_id: str
    region: str
    resource_id: str
    reason: str
    finding_kind: FindingKind
    refused: bool = False
    capped: bool = False
    since: datetime | None = None

    @property
    def planned(self) -> bool:
        return not self.refused and not self.capped


@dataclass(frozen=True)
class EstateIndex:
    """One region's evidence, indexed for the checks: what references each AMI, which AMIs use each snapshot,
    which AMI each snapshot was made for."""

    evidence: RegionEvidence
    images: dict[str, ImageRecord]
    snapshots: dict[str, SnapshotRecord]
    references: dict[str, tuple[str, ...]]
    snapshot_users: dict[str, tuple[str, ...]]
    made_for: dict[str, tuple[str, ...]]
    inventory: dict[str, InventoryRecord]
    permissions: dict[str, LaunchPermissions]
    recycle_bin_images: frozenset[str]
    unchecked: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(cls, policy: GovernancePolicy, evidence: RegionEvidence) -> EstateIndex:
        scan = evidence.scan
        snapshot_users: defaultdict[str, list[str]] = defaultdict(list)
        for image in scan.images:
            for snapshot_id in image.snapshot_ids:
                snapshot_users[snapshot_id].append(image.image_id)
        inventory = {record.image_id: record for record in evidence.inventory if record.region == scan.region}
        return cls(
            evidence=evidence,
            images={image.image_id: image for image in scan.images},
            snapshots={snapshot.snapshot_id: snapshot for snapshot in scan.snapshots},
            references=image_references(evidence),
            snapshot_users={snapshot: tuple(users) for snapshot, users in snapshot_users.items()},
            made_for=_made_for(policy, scan.snapshots, inventory.values()),
            inventory=inventory,
            permissions={p.image_id: p for p in evidence.launch_permissions},
            recycle_bin_images=frozenset(image.image_id for image in scan.recycle_bin_images),
            unchecked=frozenset(evidence.references.unchecked),
        )

    def image_protected(self, policy: GovernancePolicy, image_id: str) -> bool:
        image = self.images.get(image_id)
        record = self.inventory.get(image_id)
        return (image is not None and policy.protection_tag_key in image.tags) or (
            record is not None and record.protected
        )


def image_references(evidence: RegionEvidence) -> dict[str, tuple[str, ...]]:
    """AMI id -> what references it, in words: instances (every state, also from the instance image metadata),
    launch template versions, fleets, launch configurations, SSM parameters, and DescribeImageReferences."""
    scan = evidence.scan
    found: defaultdict[str, list[str]] = defaultdict(list)
    for instance in scan.instances:
        found[instance.image_id].append(f"instance {instance.instance_id} ({instance.state})")
    for record in evidence.instance_images.records:
        found[record.image_id].append(f"instance {record.instance_id} ({record.state})")
    for version in scan.launch_template_versions:
        if version.image_id:
            found[version.image_id].append(f"launch template {version.template_id} version {version.version}")
    for fleet in scan.fleets:
        for image_id in fleet.image_ids:
            found[image_id].append(f"fleet {fleet.fleet_id}")
    for configuration in scan.launch_configurations:
        found[configuration.image_id].append(f"launch configuration {configuration.name}")
    for parameter in scan.image_parameters:
        found[parameter.image_id].append(f"SSM parameter {parameter.name}")
    for reference in evidence.references.references:
        found[reference.image_id].append(f"{reference.resource_type} {reference.arn}")
    return {image_id: tuple(dict.fromkeys(users)) for image_id, users in found.items()}


def shared_with_others(permissions: LaunchPermissions | None, account_id: str, public: bool = False) -> bool:
    """Whether an AMI's launch permissions reach beyond its own account. Unknown (no read, or a failed one)
    counts as shared: the sweep acts only on what it knows."""
    if public or permissions is None or permissions.verified_by is VerifiedBy.UNKNOWN:
        return True
    others = [account for account in permissions.accounts if account != account_id]
    return permissions.public or bool(others or permissions.organization_arns or permissions.ou_arns)


def own_tags(
    policy: GovernancePolicy, tags: Mapping[str, str], image_id: str, source: tuple[str | None, str | None]
) -> dict[str, str]:
    """An AMI's tags without the governance tags a copy inherited from its source (CopyImageTags): a copy of an
    AMI past its deadline is not past any deadline itself, and a copy of a judged AMI was never judged."""
    inherited = inherited_system_tags(policy, tags, image_id, source)
    return {key: value for key, value in tags.items() if key not in inherited}


def image_own_tags(policy: GovernancePolicy, image: ImageRecord) -> dict[str, str]:
    return own_tags(policy, image.tags, image.image_id, (image.source_image_region, image.source_image_id))


def deregister_deadline(policy: GovernancePolicy, tags: Mapping[str, str]) -> datetime | None:
    """The deadline the enforce path tagged (`deregister-after <ISO time>`) among an AMI's own tags, or None."""
    value = tags.get(policy.tag_key(SystemTag.REMEDIATION), "")
    head, _, stamp = value.partition(" ")
    if head != DEREGISTER_AFTER or not stamp:
        return None
    try:
        deadline = datetime.fromisoformat(stamp.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return deadline if deadline.tzinfo is not None else None


def plan_sweep(
    policy: GovernancePolicy, findings: Sequence[Finding], evidences: Sequence[RegionEvidence], now: datetime
) -> list[PlannedAction]:
    """Every action the findings nominate and the evidence allows, in the order the cap takes them (oldest
    resource first, then id), refusals included (reported as skipped, with the check that refused)."""
    sweep = policy.report.sweep
    if not sweep.enabled:
        return []
    indexes = {(e.account_id, e.region): EstateIndex.of(policy, e) for e in evidences}
    unused = {
        (f.account_id, f.region, f.resource_id) for f in findings if f.kind is FindingKind.UNUSED and f.actionable
    }
    doubtful = {(f.account_id, f.region, f.resource_id) for f in findings if not f.actionable}
    actions: dict[tuple[ActionKind, str, str, str], PlannedAction] = {}
    for finding in findings:
        index = indexes.get((finding.account_id, finding.region))
        if index is None or not index.evidence.complete:
            continue  # no action at all in a region whose evidence is incomplete (or missing)
        kind = _nominated(policy, finding, index, unused, now)
        if kind is None:
            continue
        key = (kind, finding.account_id, finding.region, finding.resource_id)
        if key in actions:
            continue
        # Any finding about the resource resting on incomplete evidence holds back every action on it.
        uncertain = (finding.account_id, finding.region, finding.resource_id) in doubtful
        refusal = "the finding's evidence is incomplete" if uncertain else None
        refusal = refusal or _refusal(policy, kind, finding.resource_id, index, now)
        actions[key] = PlannedAction(
            kind=kind,
            account_id=finding.account_id,
            region=finding.region,
            resource_id=finding.resource_id,
            reason=refusal or _intent(policy, kind, finding.resource_id, index),
            finding_kind=finding.kind,
            refused=refusal is not None,
            since=_since(kind, finding.resource_id, index),
        )
    ordered = _leave_to_retries(sorted(actions.values(), key=_order), indexes)
    return _cap(ordered, sweep.max_actions_per_run)


def _nominated(  # noqa: PLR0911 - one return per finding kind and option
    policy: GovernancePolicy,
    finding: Finding,
    index: EstateIndex,
    unused: set[tuple[str, str, str]],
    now: datetime,
) -> ActionKind | None:
    """The action a finding nominates under the policy's sweep options, or None."""
    sweep = policy.report.sweep
    if finding.kind is FindingKind.OVERDUE and finding.resource_type is ResourceType.IMAGE:
        if finding.detail.startswith("cleanup"):
            return ActionKind.RETRY_CLEANUP if sweep.retry_deferred_cleanups else None
        enforce = policy.mode is Mode.ENFORCE
        return ActionKind.DEREGISTER_OVERDUE if enforce and sweep.deregister_overdue else None
    if finding.kind is FindingKind.ORPHANED_SNAPSHOT and finding.resource_type is ResourceType.SNAPSHOT:
        days = sweep.delete_orphaned_snapshots_after_days
        if days is None:
            return None
        snapshot = index.snapshots.get(finding.resource_id)
        # Age from the listing, not from the finding: a snapshot not yet due is no action (nor a refusal).
        if snapshot is not None and snapshot.start_time is not None and now - snapshot.start_time < timedelta(days):
            return None
        return ActionKind.DELETE_ORPHANED_SNAPSHOT
    if finding.kind is FindingKind.STALE and finding.resource_type is ResourceType.IMAGE:
        also_unused = (finding.account_id, finding.region, finding.resource_id) in unused
        return ActionKind.DEREGISTER_STALE if sweep.deregister_stale_unused and also_unused else None
    if (
        finding.kind in (FindingKind.NON_COMPLIANT, FindingKind.UNJUDGED)
        and finding.resource_type is ResourceType.IMAGE
        and finding.detail == NEVER_JUDGED
    ):
        return ActionKind.JUDGE
    return None


def _refusal(
    policy: GovernancePolicy, kind: ActionKind, resource_id: str, index: EstateIndex, now: datetime
) -> str | None:
    if kind in (ActionKind.DEREGISTER_OVERDUE, ActionKind.DEREGISTER_STALE):
        return _image_refusal(policy, kind, resource_id, index, now)
    if kind is ActionKind.DELETE_ORPHANED_SNAPSHOT:
        return snapshot_refusal(policy, resource_id, index, now)
    if kind is ActionKind.RETRY_CLEANUP:
        return _retry_refusal(policy, resource_id, index)
    return _judge_refusal(policy, resource_id, index)


def _image_refusal(  # noqa: PLR0911 - one return per safety check, in the order they apply
    policy: GovernancePolicy, kind: ActionKind, image_id: str, index: EstateIndex, now: datetime
) -> str | None:
    image = index.images.get(image_id)
    if image is None:
        return "not in the scan's image listing"
    if image.owner_id != index.evidence.account_id:
        return f"owned by account {image.owner_id}"
    if image.state not in DEREGISTERABLE_STATES:
        return f"the AMI is {image.state}"
    if index.image_protected(policy, image_id):
        return f"protected by {policy.protection_tag_key}"
    users = index.references.get(image_id)
    if users:
        return f"referenced by {', '.join(users[:3])}" + (f" and {len(users) - 3} more" if len(users) > 3 else "")
    if image_id in index.unchecked:
        return "its references could not be checked (DescribeImageReferences failed)"
    if not policy.report.sweep.allow_shared and shared_with_others(
        index.permissions.get(image_id), index.evidence.account_id, image.public
    ):
        return "shared with other accounts (or its sharing is unknown) and the policy does not allow shared AMIs"
    if kind is ActionKind.DEREGISTER_STALE and image_id not in index.evidence.references.checked:
        return "not confirmed unreferenced by DescribeImageReferences"
    if kind is ActionKind.DEREGISTER_OVERDUE:
        deadline = deregister_deadline(policy, image_own_tags(policy, image))
        if deadline is None:
            return "no deregister-after deadline of its own on the AMI"
        if deadline > now:
            return f"its deadline {deadline.isoformat()} has not passed"
    return None


def snapshot_refusal(  # noqa: PLR0911 - one return per safety check, in the order they apply
    policy: GovernancePolicy, snapshot_id: str, index: EstateIndex, now: datetime
) -> str | None:
    """Why an orphaned snapshot may not be deleted, or None. Public so that the property tests can name it."""
    snapshot = index.snapshots.get(snapshot_id)
    if snapshot is None:
        return "not in the scan's snapshot listing"
    if snapshot.owner_id != index.evidence.account_id:
        return f"owned by account {snapshot.owner_id}"
    if snapshot.state != "completed":
        return f"the snapshot is {snapshot.state}"
    if policy.protection_tag_key in snapshot.tags:
        return f"protected by {policy.protection_tag_key}"
    users = index.snapshot_users.get(snapshot_id)
    if users:
        return f"used by {', '.join(sorted(users))}"
    made_for = index.made_for.get(snapshot_id, ())
    in_bin = sorted(image_id for image_id in made_for if image_id in index.recycle_bin_images)
    if in_bin:
        return f"made for {', '.join(in_bin)}, which is in the AMI Recycle Bin (a restore needs it)"
    listed = sorted(image_id for image_id in made_for if image_id in index.images)
    if listed:
        return f"made for {', '.join(listed)}, which still exists"
    protected = sorted(image_id for image_id in made_for if index.image_protected(policy, image_id))
    if protected:
        return f"made for {', '.join(protected)}, which was protected"
    cleaning = sorted(
        image_id
        for image_id in made_for
        if (record := index.inventory.get(image_id)) and record.cleanup_status in CLEANUP_IN_PROGRESS_STATUSES
    )
    if cleaning:
        return f"the clean-up of {', '.join(cleaning)} is in progress"
    if snapshot.public and not policy.report.sweep.allow_shared:
        return "public (restorable by everyone) and the policy does not allow shared resources"
    days = policy.report.sweep.delete_orphaned_snapshots_after_days
    if days is None or snapshot.start_time is None or now - snapshot.start_time < timedelta(days=days):
        return "its age is unknown or under the policy's days"
    return None


def _retry_refusal(policy: GovernancePolicy, image_id: str, index: EstateIndex) -> str | None:  # noqa: PLR0911
    record = index.inventory.get(image_id)
    if record is None:
        return "no inventory record of the clean-up"
    if record.cleanup_status not in RETRYABLE_CLEANUP_STATUSES:
        return f"the clean-up is {record.cleanup_status or 'not recorded'}"
    if record.cleanup_status == "dry-run" and policy.cleanup.dry_run:
        return "the clean-up policy is still dry-run: a retry would only report again"
    if image_id in index.images:
        return "the AMI is still registered"
    if image_id in index.recycle_bin_images:
        return "the AMI is in the AMI Recycle Bin (a restore needs its snapshots)"
    if record.protected:
        return f"protected by {policy.protection_tag_key}"
    return None


def _judge_refusal(policy: GovernancePolicy, image_id: str, index: EstateIndex) -> str | None:
    image = index.images.get(image_id)
    if image is None:
        return "not in the scan's image listing"
    if image.owner_id != index.evidence.account_id:
        return f"owned by account {image.owner_id}"
    if policy.tag_key(SystemTag.COMPLIANCE) in image_own_tags(policy, image):
        return "already judged"
    return None


def _intent(policy: GovernancePolicy, kind: ActionKind, resource_id: str, index: EstateIndex) -> str:
    if kind is ActionKind.DEREGISTER_OVERDUE:
        deadline = deregister_deadline(policy, image_own_tags(policy, index.images[resource_id]))
        return f"deregister: past its deadline {deadline.isoformat() if deadline else ''}".rstrip()
    if kind is ActionKind.DEREGISTER_STALE:
        return "deregister: stale under the retention rules and unused"
    if kind is ActionKind.DELETE_ORPHANED_SNAPSHOT:
        days = policy.report.sweep.delete_orphaned_snapshots_after_days
        return f"delete: orphaned and older than {days} days"
    if kind is ActionKind.RETRY_CLEANUP:
        record = index.inventory[resource_id]
        return f"retry the clean-up left {record.cleanup_status}"
    return "judge: no event ever judged this AMI"


def _since(kind: ActionKind, resource_id: str, index: EstateIndex) -> datetime | None:
    if kind is ActionKind.DELETE_ORPHANED_SNAPSHOT:
        snapshot = index.snapshots.get(resource_id)
        return snapshot.start_time if snapshot else None
    if kind is ActionKind.RETRY_CLEANUP:
        record = index.inventory.get(resource_id)
        return _parse(record.cleanup_at) if record else None
    image = index.images.get(resource_id)
    return image.creation_date if image else None


def _parse(stamp: str | None) -> datetime | None:
    if not stamp:
        return None
    try:
        parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _order(action: PlannedAction) -> tuple[bool, datetime, str, str, str, str]:
    # Oldest first; unknown ages after the known ones; then by id, so that every run takes the same ones.
    since = action.since.astimezone(UTC).replace(tzinfo=None) if action.since else datetime.max
    return (action.since is None, since, action.resource_id, action.kind.value, action.account_id, action.region)


def _leave_to_retries(actions: list[PlannedAction], indexes: dict[tuple[str, str], EstateIndex]) -> list[PlannedAction]:
    """A snapshot of an AMI whose clean-up is retried is the retry's: deleting it directly as well would race
    the clean-up service and bypass its record."""
    retried: dict[tuple[str, str, str], str] = {}
    for action in actions:
        if action.kind is ActionKind.RETRY_CLEANUP and action.planned:
            record = indexes[(action.account_id, action.region)].inventory[action.resource_id]
            for snapshot_id in (*record.snapshot_ids, *record.cleanup_snapshots):
                retried[(action.account_id, action.region, snapshot_id)] = action.resource_id
    result = []
    for action in actions:
        owner = retried.get((action.account_id, action.region, action.resource_id))
        if action.kind is ActionKind.DELETE_ORPHANED_SNAPSHOT and action.planned and owner:
            result.append(replace(action, refused=True, reason=f"left to the clean-up retry of {owner}"))
        else:
            result.append(action)
    return result


def _cap(actions: Iterable[PlannedAction], cap: int) -> list[PlannedAction]:
    taken = 0
    result = []
    for action in actions:
        if action.planned and action.kind not in UNCAPPED_KINDS:
            if taken >= cap:
                result.append(replace(action, capped=True, reason=f"over the run's cap of {cap} actions"))
                continue
            taken += 1
        result.append(action)
    return result


def _made_for(
    policy: GovernancePolicy, snapshots: Iterable[SnapshotRecord], inventory: Iterable[InventoryRecord]
) -> dict[str, tuple[str, ...]]:
    """Snapshot -> the AMIs it was made for: its description (both AWS formats), the image-id tag the enforce
    path writes, and the inventory's record of each AMI's snapshots."""
    found: defaultdict[str, list[str]] = defaultdict(list)
    tag = policy.tag_key(SystemTag.IMAGE_ID)
    for snapshot in snapshots:
        named = image_named_in_description(snapshot.description)
        if named:
            found[snapshot.snapshot_id].append(named)
        if snapshot.tags.get(tag):
            found[snapshot.snapshot_id].append(snapshot.tags[tag])
    for record in inventory:
        for snapshot_id in record.snapshot_ids:
            found[snapshot_id].append(record.image_id)
    return {snapshot_id: tuple(dict.fromkeys(images)) for snapshot_id, images in found.items()}
