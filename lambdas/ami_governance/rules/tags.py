"""Pure rules for the tags this system writes: provenance, verdict, and what changed.

Every key is `<tag_prefix><name>`; the names below are the only ones the Lambdas write, which is
what lets a tag-change event caused by our own writes be recognised and dropped (no loop).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from ami_governance.models.events import CREATE_IMAGE, CloudTrailDetail
from ami_governance.models.image import ComplianceStatus, Creator, EvaluationSubject, ImageFacts, Verdict
from ami_governance.models.policy import TAG_VALUE_MAX_LENGTH, GovernancePolicy


class SystemTag(StrEnum):
    COMPLIANCE = "compliance"
    VIOLATIONS = "violations"
    WARNINGS = "warnings"
    EXEMPTION = "exemption"
    REMEDIATION = "remediation"
    CREATED_BY = "created-by"
    CREATED_BY_SESSION = "created-by-session"
    INVOKED_BY = "invoked-by"
    CREATED_AT = "created-at"
    CREATED_BY_EVENT = "created-by-event"
    SOURCE_INSTANCE = "source-instance"
    SOURCE_IMAGE = "source-image"  # '<region>/<ami id>' of the AMI this one was copied from
    SOURCE_REGION = "source-region"  # on a replica: its source's region
    NO_REBOOT = "no-reboot"
    IMAGE_ID = "image-id"
    APPROVED_BY = "approved-by"  # on an approved AMI and its replicas: who approved it
    APPROVAL = "approval"  # on an AMI someone tried to approve: the answer (approved / pending / rejected: why)
    CLEANUP = "cleanup"  # on a snapshot, right before the clean-up deletes it (the Recycle Bin rule matches it)


NONE_VALUE = "none"


def system_tag_keys(policy: GovernancePolicy) -> frozenset[str]:
    return frozenset(policy.tag_key(tag) for tag in SystemTag)


# EC2 allows 50 user tags per resource ('aws:' tags do not count).
MAX_TAGS_PER_RESOURCE = 50
# When the budget is short, the tags that matter most are written first.
TAG_PRIORITY = (
    SystemTag.COMPLIANCE,
    SystemTag.REMEDIATION,
    SystemTag.VIOLATIONS,
    SystemTag.EXEMPTION,
    SystemTag.CREATED_BY,
    SystemTag.CREATED_BY_EVENT,
    SystemTag.WARNINGS,
    SystemTag.CREATED_AT,
    SystemTag.INVOKED_BY,
    SystemTag.CREATED_BY_SESSION,
    SystemTag.SOURCE_IMAGE,
    SystemTag.SOURCE_INSTANCE,
    SystemTag.NO_REBOOT,
    SystemTag.IMAGE_ID,
)
# Verdict keys that must go when the verdict no longer has them (an exempt AMI has no violations...).
VERDICT_TAGS = (SystemTag.VIOLATIONS, SystemTag.WARNINGS, SystemTag.EXEMPTION)


def only_system_tags_changed(policy: GovernancePolicy, keys: Iterable[str]) -> bool:
    """True when a tag change touched nothing but keys this system writes (our own echo)."""
    keys = list(keys)
    return bool(keys) and set(keys) <= system_tag_keys(policy)


def fit_tag_value(value: str) -> str:
    """Clamp to the 256-character EC2 tag value limit, marking the cut."""
    if len(value) <= TAG_VALUE_MAX_LENGTH:
        return value
    return value[: TAG_VALUE_MAX_LENGTH - 1] + "…"


def summarise(items: Iterable[str], limit: int = TAG_VALUE_MAX_LENGTH) -> str:
    """Join items with '; ', dropping whole items from the end (with a count) so it fits `limit`."""
    items = list(items)
    if not items:
        return NONE_VALUE
    for shown in range(len(items), 0, -1):
        text = "; ".join(items[:shown])
        hidden = len(items) - shown
        if hidden:
            text += f"; +{hidden} more"
        if len(text) <= limit:
            return text
    return fit_tag_value(f"+{len(items)} violations")[:limit]


def provenance_tags(policy: GovernancePolicy, detail: CloudTrailDetail) -> dict[str, str]:
    """Who made the AMI, when, from what, and which CloudTrail event said so."""
    identity = detail.user_identity
    params = detail.request_parameters
    tags: dict[str, str] = {
        SystemTag.CREATED_AT: iso_timestamp(detail.event_time),
        SystemTag.CREATED_BY_EVENT: detail.event_id,
    }
    principal = identity.principal_arn
    if principal:
        tags[SystemTag.CREATED_BY] = principal
    if identity.arn and identity.arn != principal:
        tags[SystemTag.CREATED_BY_SESSION] = identity.arn
    if identity.invoked_by:
        tags[SystemTag.INVOKED_BY] = identity.invoked_by
    if params is not None:
        if params.instance_id:
            tags[SystemTag.SOURCE_INSTANCE] = params.instance_id
        if params.source_image_id:
            source_region = params.source_region or detail.aws_region
            tags[SystemTag.SOURCE_IMAGE] = f"{source_region}/{params.source_image_id}"
        if detail.event_name == CREATE_IMAGE and params.no_reboot and params.instance_id:
            tags[SystemTag.NO_REBOOT] = "true"
    return {policy.tag_key(name): fit_tag_value(value) for name, value in tags.items()}


def creation_claims_refuted(detail: CloudTrailDetail, image: ImageFacts) -> dict[str, tuple[str, str]]:
    """Claim -> (what the creation event says, what EC2 shows) for each claim of the event about the AMI that EC2
    contradicts; empty when none is. A copy names its source (`SourceImageId`, `SourceImageRegion`), an AMI that
    CreateImage made its instance (`SourceInstanceId`); claims EC2 does not show (the creator above all) cannot be
    contradicted here."""
    refuted: dict[str, tuple[str, str]] = {}
    params = detail.request_parameters
    claimed_instance, shown_instance = (params.instance_id if params else None), image.source_instance_id
    if claimed_instance and shown_instance and claimed_instance != shown_instance:
        refuted["source-instance"] = (claimed_instance, shown_instance)
    if params is not None and params.source_image_id and image.source_image_id:
        claimed = lineage_value(params.source_region or detail.aws_region, params.source_image_id)
        shown = lineage_value(image.source_region or image.region, image.source_image_id)
        if claimed != shown:
            refuted["source-image"] = (claimed, shown)
    return refuted


# Who made the AMI and which event said so: written once, by the first creation event handled, and read back
# for every later judgement (see `recorded_provenance`).
CREATOR_TAGS = (SystemTag.CREATED_BY, SystemTag.CREATED_BY_SESSION, SystemTag.INVOKED_BY)
PROVENANCE_RECORD_TAGS = (SystemTag.CREATED_BY_EVENT, SystemTag.CREATED_AT, *CREATOR_TAGS)


def recorded_provenance(policy: GovernancePolicy, own_tags: Mapping[str, str]) -> dict[str, str]:
    """The provenance an AMI already carries as its own (`own_tags`: without the tags a copy inherited from its
    source). Empty until a creation event has been handled: only then is provenance written."""
    keys = {policy.tag_key(name) for name in PROVENANCE_RECORD_TAGS}
    return {key: value for key, value in own_tags.items() if key in keys}


def creator_conflict(
    policy: GovernancePolicy, recorded: Mapping[str, str], event_provenance: Mapping[str, str]
) -> dict[str, tuple[str | None, str | None]]:
    """Creator tag -> (recorded value, the event's value), where a later creation event names another creator
    than the one recorded (a CopyImage repeated with the same ClientToken by someone else gets the same AMI)."""
    conflict: dict[str, tuple[str | None, str | None]] = {}
    for name in CREATOR_TAGS:
        key = policy.tag_key(name)
        if recorded.get(key) != event_provenance.get(key):
            conflict[key] = (recorded.get(key), event_provenance.get(key))
    return conflict


def verdict_tags(policy: GovernancePolicy, verdict: Verdict) -> dict[str, str]:
    tags = {SystemTag.COMPLIANCE: verdict.status.value}
    if verdict.status is ComplianceStatus.EXEMPT:
        tags[SystemTag.EXEMPTION] = fit_tag_value(verdict.exemption or "exempt")
    else:
        tags[SystemTag.VIOLATIONS] = summarise(v.short for v in verdict.violations)
        tags[SystemTag.WARNINGS] = summarise(w.short for w in verdict.warnings)
    return {policy.tag_key(name): value for name, value in tags.items()}


def subject_from(
    policy: GovernancePolicy,
    name: str,
    image_tags: Mapping[str, str],
    requested_tags: Mapping[str, str] | None = None,
    provenance: Mapping[str, str] | None = None,
) -> EvaluationSubject:
    """Build what the rules judge from the image's tags, the tags the call asked for, and provenance.

    The image's own tags win; the event's tagSpecificationSet fills in for a just-created image whose
    tags are not visible yet. Provenance comes from the event where there is one, else from the
    provenance tags written earlier (so a later tag change is judged with the same creator).
    """
    merged = {**(requested_tags or {}), **image_tags}
    known = {**merged, **(provenance or {})}
    user_tags = {key: value for key, value in merged.items() if not key.startswith(policy.tag_prefix)}
    # Exemption tags may live under the system prefix (e.g. '<prefix>exempt'); keep those visible.
    user_tags.update({key: merged[key] for key in policy.exemptions.tags if key in merged})
    creator = Creator(
        principal_arn=known.get(policy.tag_key(SystemTag.CREATED_BY)),
        session_arn=known.get(policy.tag_key(SystemTag.CREATED_BY_SESSION)),
        invoked_by=known.get(policy.tag_key(SystemTag.INVOKED_BY)),
    )
    no_reboot = known.get(policy.tag_key(SystemTag.NO_REBOOT)) == "true"
    return EvaluationSubject(name=name, tags=user_tags, creator=creator, no_reboot=no_reboot)


# Written by replication on the copy itself (CopyImage TagSpecifications), so they describe the copy.
LINEAGE_TAGS = (SystemTag.SOURCE_IMAGE, SystemTag.SOURCE_REGION, SystemTag.APPROVED_BY)


def lineage_value(source_region: str, source_image_id: str) -> str:
    return f"{source_region}/{source_image_id}"


def inherited_system_tags(
    policy: GovernancePolicy,
    tags: Mapping[str, str],
    image_id: str,
    source: tuple[str | None, str | None] = (None, None),
) -> frozenset[str]:
    """System tags an AMI carries that were not written for it: `CopyImage` with `CopyImageTags` copies the
    source's verdict and provenance, which say nothing about the copy. Every AMI this system judges carries
    `<prefix>image-id` = its own id; tags that come without it, or with another AMI's id, are inherited.

    The exception is a replica's lineage: replication writes `source-image` (and `source-region`,
    `approved-by`) on the copy as it creates it. Those stay when `source-image` names the AMI's real source
    (`source` = EC2's SourceImageRegion and SourceImageId), which a tag copied from elsewhere cannot."""
    if tags.get(policy.tag_key(SystemTag.IMAGE_ID)) == image_id:
        return frozenset()
    inherited = {key for key in tags if key in system_tag_keys(policy)}
    source_region, source_image_id = source
    real_source = lineage_value(source_region, source_image_id) if source_region and source_image_id else None
    if real_source and tags.get(policy.tag_key(SystemTag.SOURCE_IMAGE)) == real_source:
        inherited -= {policy.tag_key(name) for name in LINEAGE_TAGS}
    return frozenset(inherited)


@dataclass(frozen=True)
class TagChange:
    """What to write and what to delete so that an AMI carries exactly the governance tags it should."""

    to_write: dict[str, str]
    to_delete: frozenset[str] = frozenset()
    dropped: tuple[str, ...] = ()  # keys left out because the resource would exceed the tag limit

    def __bool__(self) -> bool:
        return bool(self.to_write or self.to_delete)


def tags_to_write(
    policy: GovernancePolicy,
    current: Mapping[str, str],
    desired: Mapping[str, str],
    obsolete: Iterable[str] = (),
) -> TagChange:
    """Only the keys whose value differs (a repeated event writes nothing), the obsolete keys still present
    (stale verdict keys, tags inherited from a copy's source), and never more than the tag limit allows."""
    verdict_keys = {policy.tag_key(name) for name in VERDICT_TAGS}
    removable = (set(obsolete) | verdict_keys) & set(current)
    to_delete = frozenset(key for key in removable if key not in desired)
    to_write = {key: value for key, value in desired.items() if current.get(key) != value}
    counted = {key for key in current if not key.startswith("aws:")} - to_delete
    rank = {policy.tag_key(name): index for index, name in enumerate(TAG_PRIORITY)}
    dropped: list[str] = []
    for key in sorted(to_write, key=lambda k: rank.get(k, len(rank)), reverse=True):
        if len(counted | set(to_write)) <= MAX_TAGS_PER_RESOURCE:
            break
        if key not in counted:  # replacing a value costs nothing; only new keys count
            dropped.append(key)
            del to_write[key]
    return TagChange(to_write, to_delete, tuple(dropped))


def iso_timestamp(moment: datetime) -> str:
    """UTC to the second, as CloudTrail writes eventTime (and as tags and the inventory store times)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
