"""Pure construction of the SNS notices: a short subject and a JSON body people and machines read."""

from __future__ import annotations

import re
from typing import Any

from ami_governance.models.cleanup import ImageCleanup, OutcomeKind
from ami_governance.models.image import Creator, ImageFacts, Verdict
from ami_governance.models.notices import Notice
from ami_governance.models.policy import GovernancePolicy, Mode
from ami_governance.rules.cleanup import monthly_cost
from ami_governance.rules.remediation import describe_intended

SNS_SUBJECT_MAX = 100
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")


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


def cleanup_notice(policy: GovernancePolicy, cleanup: ImageCleanup, event_id: str) -> Notice:
    """One summary per deregistration: what happened to each snapshot, and what it saves. Snapshots that
    DeregisterImage deleted itself (DeleteAssociatedSnapshots) count as freed, in dry-run too: they are gone."""
    dry_run = policy.cleanup.dry_run
    by_ec2 = [s for s in cleanup.snapshots if s.kind is OutcomeKind.DELETED_BY_DEREGISTER_IMAGE]
    kept = [s for s in cleanup.snapshots if s.kind is OutcomeKind.KEPT]
    if dry_run:
        acted = [s for s in cleanup.snapshots if s.kind is OutcomeKind.WOULD_DELETE]
        summary = f"would delete {len(acted)} of {len(cleanup.snapshots)} snapshots"
        summary += f", EC2 deleted {len(by_ec2)}" if by_ec2 else ""  # (SNS subjects: 100 characters)
        gb: dict[str, int] = {"gb_that_would_be_freed": cleanup.gb_freed - cleanup.gb_freed_by_deregister_image}
    else:
        acted = [s for s in cleanup.snapshots if s.kind is OutcomeKind.DELETED] + by_ec2
        summary = f"deleted {len(acted)} of {len(cleanup.snapshots)} snapshots"
        gb = {"gb_freed": cleanup.gb_freed}
    if by_ec2:
        gb["gb_freed_by_deregister_image"] = cleanup.gb_freed_by_deregister_image
    return Notice(
        subject=_subject(f"AMI {cleanup.image_id} deregistered in {cleanup.region}: {summary}"),
        body={
            "kind": "ami-snapshots-cleaned" if not dry_run else "ami-snapshots-cleanup-dry-run",
            "image_id": cleanup.image_id,
            "region": cleanup.region,
            "dry_run": dry_run,
            "found_by": cleanup.source,
            "snapshots": {s.snapshot_id: s.outcome for s in cleanup.snapshots},
            "kept": len(kept),
            **gb,
            "estimated_monthly_saving_usd_upper_bound": monthly_cost(
                cleanup.gb_freed, policy.cleanup.price_per_gb_month
            ),
            "note": "snapshots are incremental: blocks shared with other snapshots are still billed, so the saving is "
            "an upper bound",
            "replicas": cleanup.replicas,
            "event_id": event_id,
        },
    )


def approval_rejected_notice(image: ImageFacts, reason: str, caller: str | None, event_id: str) -> Notice:
    return Notice(
        subject=_subject(f"Approval of AMI {image.image_id} in {image.region} rejected: no copies"),
        body={
            "kind": "ami-approval-rejected",
            "image_id": image.image_id,
            "image_name": image.name,
            "region": image.region,
            "account": image.owner_id,
            "caller": caller,
            "reason": reason,
            "event_id": event_id,
        },
    )


def replica_failed_notice(
    source_image_id: str, source_region: str, replica_id: str, region: str, error: str, event_id: str
) -> Notice:
    return Notice(
        subject=_subject(f"Copy of AMI {source_image_id} to {region} failed"),
        body={
            "kind": "ami-replica-failed",
            "source_image_id": source_image_id,
            "source_region": source_region,
            "replica_id": replica_id,
            "region": region,
            "error": error,
            "how_to_fix": "fix the cause (for a KMS error: the key must be enabled and its key policy must let the "
            "copy role use it), then set the approval tag again: only the missing regions are copied",
            "event_id": event_id,
        },
    )


def replicated_notice(
    source_image_id: str, source_region: str, name: str, replicas: dict[str, Any], targets: list[str], event_id: str
) -> Notice:
    """One summary when every target region of a replication round is done (available, failed, or withdrawn:
    the approval tag was removed before that region's copy started)."""

    def in_state(state: str) -> dict[str, Any]:
        return {r: replicas[r] for r in targets if (replicas.get(r) or {}).get("state") == state}

    done, withdrawn = in_state("available"), in_state("withdrawn")
    failed = {r: replicas[r] for r in targets if r not in done and r not in withdrawn}
    if failed or withdrawn:
        outcome = f"{len(done)} of {len(targets)} regions"
        outcome += f", {len(failed)} failed" if failed else ""
        outcome += f", {len(withdrawn)} withdrawn" if withdrawn else ""
    else:
        outcome = f"{len(targets)} region{'' if len(targets) == 1 else 's'}"
    body: dict[str, Any] = {
        "kind": "ami-replicated" if not (failed or withdrawn) else "ami-replicated-partially",
        "source_image_id": source_image_id,
        "source_region": source_region,
        "image_name": name,
        "replicas": {r: entry.get("image_id") for r, entry in done.items()},
        "failed": {r: entry.get("error", "failed") for r, entry in failed.items()},
        "event_id": event_id,
    }
    if withdrawn:
        body["withdrawn"] = sorted(withdrawn)
    return Notice(subject=_subject(f"AMI {source_image_id} replicated to {outcome}"), body=body)
