"""Untrusted sources: instances and launch templates that launch from AMIs whose owner is not in
`report.trusted_owners` ('self' = the scanned account, 'amazon' and 'aws-marketplace' = the owner alias EC2 gives,
or account ids) — the community AMIs that should have been verified before use.

An instance's AMI owner comes from DescribeInstanceImageMetadata, which keeps it after the AMI is gone. A launch
template version names only an AMI id: its owner is known when the AMI is in this account's listing (the scan lists
owner self) or some instance's metadata names it; otherwise nothing is claimed (no finding: an unknown owner is not
an untrusted one). Terminated and shutting-down instances launch nothing any more and are left out.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from ami_governance.models.findings import Finding, FindingKind, RegionEvidence, ResourceType
from ami_governance.models.policy import GovernancePolicy
from ami_governance.models.scan import InstanceImageRecord, LaunchTemplateVersionRecord, Listing
from ami_governance.rules.findings.index import RegionIndex, age_days

GONE_STATES = frozenset({"terminated", "shutting-down"})
INSTANCE, LAUNCH_TEMPLATE = "instance", "launch-template"
Owner = tuple[str | None, str | None]  # (owner account id, owner alias)


def trusted(policy: GovernancePolicy, account_id: str, owner: Owner) -> bool | None:
    """Whether an AMI owner is trusted; None when the owner is not known."""
    owner_id, alias = owner
    if owner_id is None and alias is None:
        return None
    owners = policy.report.trusted_owners
    return (
        ("self" in owners and owner_id == account_id)
        or (alias is not None and alias in owners and alias in {"amazon", "aws-marketplace"})
        or (owner_id is not None and owner_id in owners)
    )


def known_owners(index: RegionIndex) -> dict[str, Owner]:
    owners: dict[str, Owner] = {
        record.image_id: (record.image_owner_id, record.image_owner_alias)
        for record in index.evidence.instance_images.records
        if record.image_owner_id or record.image_owner_alias
    }
    owners.update({image_id: (image.owner_id, None) for image_id, image in index.images.items()})
    return owners


def _describe(owner: Owner) -> str:
    owner_id, alias = owner
    return f"{owner_id} ({alias})" if owner_id and alias else str(owner_id or alias)


def find_untrusted_sources(
    policy: GovernancePolicy, evidence: RegionEvidence, now: datetime, index: RegionIndex | None = None
) -> list[Finding]:
    index = index or RegionIndex.of(evidence)
    trusted_list = ", ".join(policy.report.trusted_owners)
    findings = [
        _instance(index, record, trusted_list, now)
        for record in evidence.instance_images.records
        if record.state not in GONE_STATES
        and trusted(policy, index.account_id, (record.image_owner_id, record.image_owner_alias)) is False
    ]
    if not index.failed((Listing.IMAGES, Listing.INSTANCE_IMAGE_METADATA)):
        findings.extend(_launch_templates(policy, index, trusted_list))
    return findings


def _instance(index: RegionIndex, record: InstanceImageRecord, trusted_list: str, now: datetime) -> Finding:
    owner = _describe((record.image_owner_id, record.image_owner_alias))
    name = f" ({record.image_name})" if record.image_name else ""
    return Finding(
        kind=FindingKind.UNTRUSTED_SOURCE,
        account_id=index.account_id,
        region=index.region,
        resource_type=ResourceType.INSTANCE,
        resource_id=record.instance_id,
        reason=f"launched from {record.image_id}{name}, owned by {owner}: not a trusted owner ({trusted_list})",
        fix=(
            "replace the instance with one launched from an AMI of a trusted owner, or, once the AMI is vetted, add "
            "its owner to report.trusted_owners"
        ),
        detail=INSTANCE,
        age_days=age_days(record.launch_time, now),
        related_ids=(record.image_id,),
    )


def _launch_templates(policy: GovernancePolicy, index: RegionIndex, trusted_list: str) -> list[Finding]:
    """One finding per template, naming each of its versions that launches an AMI of a known, untrusted owner.
    (Both listings are needed to know owners: a failed one would turn a known owner into an unknown one.)"""
    owners = known_owners(index)
    untrusted: defaultdict[str, list[tuple[LaunchTemplateVersionRecord, Owner]]] = defaultdict(list)
    for version in index.evidence.scan.launch_template_versions:
        owner = owners.get(version.image_id or "")
        if owner is not None and trusted(policy, index.account_id, owner) is False:
            untrusted[version.template_id].append((version, owner))
    findings = []
    for template_id, found in untrusted.items():
        versions = sorted({v.version: (v, owner) for v, owner in found}.values(), key=lambda item: item[0].version)
        said = "; ".join(
            f"version {v.version} launches {v.image_id}, owned by {_describe(owner)}" for v, owner in versions
        )
        findings.append(
            Finding(
                kind=FindingKind.UNTRUSTED_SOURCE,
                account_id=index.account_id,
                region=index.region,
                resource_type=ResourceType.LAUNCH_TEMPLATE,
                resource_id=template_id,
                reason=f"{said}: not a trusted owner ({trusted_list})",
                fix=(
                    f"aws ec2 create-launch-template-version --region {index.region} --launch-template-id "
                    f"{template_id} --source-version <version> --launch-template-data ImageId=<trusted AMI>, "
                    "then make it the default; or add the owner to report.trusted_owners once vetted"
                ),
                name=versions[0][0].template_name,
                detail=LAUNCH_TEMPLATE,
                related_ids=tuple(dict.fromkeys(v.image_id or "" for v, _ in versions)),
            )
        )
    return findings
