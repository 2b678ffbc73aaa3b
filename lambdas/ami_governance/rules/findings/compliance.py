"""Non-compliant AMIs, judged again now with enforcement's own rules and the current policy (so a policy change
shows up), and AMIs never judged at all (imported, or made before the deployment).

The view judged is enforcement's: the tags a copy inherited from its source (CopyImageTags) are left out
(`inherited_system_tags`), the subject is built by `subject_from` (provenance tags give the creator, so
exemptions by creator still apply) and `evaluate` gives the verdict.
"""

from __future__ import annotations

from datetime import datetime

from ami_governance.models.findings import Finding, FindingKind, RegionEvidence
from ami_governance.models.image import ComplianceStatus, Verdict
from ami_governance.models.policy import GovernancePolicy
from ami_governance.models.scan import ImageRecord, Listing
from ami_governance.rules.compliance import evaluate
from ami_governance.rules.findings.index import GOVERNED_STATES, INVENTORY, RegionIndex, image_finding
from ami_governance.rules.tags import SystemTag, inherited_system_tags, subject_from

VIOLATIONS, VERDICT_CHANGED, NEVER_JUDGED = "violations", "verdict-changed", "never-judged"


def own_tags(policy: GovernancePolicy, image: ImageRecord) -> dict[str, str]:
    """The AMI's tags without the governance tags a copy inherited from its source."""
    inherited = inherited_system_tags(
        policy, image.tags, image.image_id, (image.source_image_region, image.source_image_id)
    )
    return {key: value for key, value in image.tags.items() if key not in inherited}


def judge(policy: GovernancePolicy, image: ImageRecord) -> Verdict:
    """The verdict enforcement would give the AMI now (its recorded provenance names the creator)."""
    return evaluate(policy, subject_from(policy, image.name, own_tags(policy, image)))


def recorded_verdict(policy: GovernancePolicy, index: RegionIndex, image: ImageRecord) -> str | None:
    """The verdict enforcement recorded: the AMI's own compliance tag, else the inventory's."""
    tagged = own_tags(policy, image).get(policy.tag_key(SystemTag.COMPLIANCE))
    record = index.inventory.get(image.image_id)
    return tagged or (record.compliance if record else None)


def find_non_compliant(
    policy: GovernancePolicy, evidence: RegionEvidence, now: datetime, index: RegionIndex | None = None
) -> list[Finding]:
    index = index or RegionIndex.of(evidence)
    if index.failed((Listing.IMAGES,)):
        return []
    # "Never judged" rests on the inventory having no verdict: unknown when it could not be read.
    judged_known = not index.failed((INVENTORY,))
    findings = []
    for image in index.images.values():
        if image.state not in GOVERNED_STATES:
            continue
        verdict = judge(policy, image)
        recorded = recorded_verdict(policy, index, image)
        if recorded is None and judged_known:
            findings.append(_never_judged(policy, index, image, verdict, now))
        elif verdict.status is ComplianceStatus.NON_COMPLIANT:
            findings.append(_non_compliant(policy, index, image, verdict, recorded, now))
    return findings


def _non_compliant(
    policy: GovernancePolicy,
    index: RegionIndex,
    image: ImageRecord,
    verdict: Verdict,
    recorded: str | None,
    now: datetime,
) -> Finding:
    changed = recorded is not None and recorded != ComplianceStatus.NON_COMPLIANT.value
    reason = "; ".join(v.message for v in verdict.violations)
    if changed:
        reason += f" (recorded as {recorded}: the policy changed since it was judged)"
    fix = "; ".join(dict.fromkeys(v.fix for v in verdict.violations))
    detail = VERDICT_CHANGED if changed else VIOLATIONS
    return image_finding(policy, index, image, now, FindingKind.NON_COMPLIANT, detail, reason, fix)


def _never_judged(
    policy: GovernancePolicy, index: RegionIndex, image: ImageRecord, verdict: Verdict, now: datetime
) -> Finding:
    key = policy.tag_key(SystemTag.COMPLIANCE)
    now_judged = verdict.status.value
    if verdict.violations:
        now_judged += ": " + "; ".join(v.message for v in verdict.violations)
    reason = f"never judged (no {key} tag, no verdict in the inventory); judged now: {now_judged}"
    fix = (
        "the report's sweep judges it and writes its verdict tags (report.sweep.enabled); or change any of its "
        "tags so that enforcement judges it"
    )
    # Non-compliant now: a non-compliant finding like any other. Compliant now: only its verdict tags are missing,
    # which is no breach of the policy (counted apart, so the non-compliant total means what it says).
    kind = FindingKind.NON_COMPLIANT if verdict.status is ComplianceStatus.NON_COMPLIANT else FindingKind.UNJUDGED
    return image_finding(policy, index, image, now, kind, NEVER_JUDGED, reason, fix)
