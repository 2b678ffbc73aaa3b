"""Pure construction of the SNS notices: a short subject and a JSON body people and machines read."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ami_governance.models.image import Creator, ImageFacts, Verdict
from ami_governance.models.policy import GovernancePolicy, Mode
from ami_governance.rules.cleanup import monthly_cost
from ami_governance.rules.remediation import describe_intended

SNS_SUBJECT_MAX = 100
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")


@dataclass(frozen=True)
class Notice:
    subject: str
    body: dict[str, Any]


def _subject(text: str) -> str:
    # SNS subjects: ASCII, no control characters, at most 100 characters.
    clean = _UNPRINTABLE.sub("?", text)
    return clean if len(clean) <= SNS_SUBJECT_MAX else clean[: SNS_SUBJECT_MAX - 3] + "..."


def violation_notice(
    policy: GovernancePolicy, image: ImageFacts, verdict: Verdict, creator: Creator, remediation: str, event_id: str
) -> Notice:
    count = len(verdict.violations)
    return Notice(
        subject=_subject(
            f"AMI {image.image_id} in {image.region} is non-compliant ({count} violation{'' if count == 1 else 's'})"
        ),
        body={
            "kind": "ami-non-compliant",
            "image_id": image.image_id,
            "image_name": image.name,
            "region": image.region,
            "account": image.owner_id,
            "creator": creator.principal_arn,
            "creator_session": creator.session_arn,
            "mode": policy.mode.value,
            "violations": [
                {"kind": v.kind.value, "subject": v.subject, "problem": v.message} for v in verdict.violations
            ],
            "warnings": [{"kind": w.kind.value, "problem": w.message} for w in verdict.warnings],
            "how_to_fix": [v.fix for v in verdict.violations],
            "remediation": remediation
            if policy.mode is Mode.ENFORCE
            else f"none (audit mode; {describe_intended(policy)})",
            "event_id": event_id,
        },
    )


def resolved_notice(
    policy: GovernancePolicy, image: ImageFacts, verdict: Verdict, remediation: str, event_id: str
) -> Notice:
    return Notice(
        subject=_subject(f"AMI {image.image_id} in {image.region} is now {verdict.status.value}"),
        body={
            "kind": "ami-compliance-restored",
            "image_id": image.image_id,
            "image_name": image.name,
            "region": image.region,
            "account": image.owner_id,
            "compliance": verdict.status.value,
            "mode": policy.mode.value,
            "remediation": remediation or "none",
            "event_id": event_id,
        },
    )


def cleanup_notice(policy: GovernancePolicy, cleanup: Any, event_id: str) -> Notice:
    """One summary per deregistration: what happened to each snapshot, and what it saves."""
    dry_run = policy.cleanup.dry_run
    acted = [s for s in cleanup.snapshots if s.outcome in ("deleted", "would-delete")]
    kept = [s for s in cleanup.snapshots if s.outcome.startswith("kept")]
    verb = "would delete" if dry_run else "deleted"
    return Notice(
        subject=_subject(
            f"AMI {cleanup.image_id} deregistered in {cleanup.region}: {verb} {len(acted)} of "
            f"{len(cleanup.snapshots)} snapshots"
        ),
        body={
            "kind": "ami-snapshots-cleaned" if not dry_run else "ami-snapshots-cleanup-dry-run",
            "image_id": cleanup.image_id,
            "region": cleanup.region,
            "dry_run": dry_run,
            "found_by": cleanup.source,
            "snapshots": {s.snapshot_id: s.outcome for s in cleanup.snapshots},
            "kept": len(kept),
            "gb_freed" if not dry_run else "gb_that_would_be_freed": cleanup.gb_freed,
            "estimated_monthly_saving_usd_upper_bound": monthly_cost(
                cleanup.gb_freed, policy.cleanup.price_per_gb_month
            ),
            "note": "snapshots are incremental: blocks shared with other snapshots are still billed, so the saving is "
            "an upper bound",
            "replicas": cleanup.replicas,
            "event_id": event_id,
        },
    )
