"""Reports built by hand for the output tests: one finding of every kind, shaped like the findings rules make them,
over three regions of which one could not be fully scanned, plus the sweep's actions."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from ami_governance.models.findings import (
    ActionKind,
    ActionStatus,
    Finding,
    FindingKind,
    RegionStatus,
    Report,
    ResourceType,
    SweepAction,
)

ACCOUNT = "123456789012"
GENERATED_AT = datetime(2026, 12, 1, 6, 0, 12, tzinfo=UTC)
RUN_ID = "20261201T060012Z-3f2a9c"

REGIONS = (
    RegionStatus(
        account_id=ACCOUNT,
        region="us-east-1",
        complete=True,
        images=412,
        snapshots=1310,
        instances=57,
        verified_by={"inventory": 398, "describe": 14},
        api_calls=23,
    ),
    RegionStatus(
        account_id=ACCOUNT,
        region="eu-west-1",
        complete=True,
        images=88,
        snapshots=240,
        instances=12,
        verified_by={"inventory": 80, "describe": 8},
        api_calls=17,
    ),
    RegionStatus(
        account_id=ACCOUNT,
        region="ap-southeast-2",
        complete=False,
        errors={
            "snapshots": "RequestLimitExceeded: Request limit exceeded.",
            "images": "UnauthorizedOperation: You are not authorized to perform this operation.",
        },
        images=0,
        snapshots=0,
        instances=3,
        api_calls=9,
    ),
)

FINDINGS = (
    Finding(
        kind=FindingKind.ORPHANED_SNAPSHOT,
        account_id=ACCOUNT,
        region="us-east-1",
        resource_type=ResourceType.SNAPSHOT,
        resource_id="snap-0a1b2c3d4e5f60718",
        name="",
        detail="create-image",
        owner_tags={"team": "payments", "Owner": "alice@example.com"},
        age_days=143,
        size_gib=200,
        monthly_cost=10.0,
        reason="Made by CreateImage for ami-0f00dfeedcafe0001, which no longer exists; no AMI uses it.",
        fix="Delete it (aws ec2 delete-snapshot --snapshot-id snap-0a1b2c3d4e5f60718), or tag it "
        "ami-governance:protected=true to keep it.",
        related_ids=("ami-0f00dfeedcafe0001",),
    ),
    Finding(
        kind=FindingKind.ORPHANED_SNAPSHOT,
        account_id=ACCOUNT,
        region="eu-west-1",
        resource_type=ResourceType.SNAPSHOT,
        resource_id="snap-0ffee11223344aabb",
        detail="copy-image",
        age_days=61,
        size_gib=50,
        monthly_cost=2.5,
        reason="Copied for ami-0c0ffee000000abcd from ami-0a11ce0000000beef (us-east-1); that AMI no longer exists.",
        fix="Delete it, or tag it ami-governance:protected=true to keep it.",
        related_ids=("ami-0c0ffee000000abcd",),
    ),
    Finding(
        kind=FindingKind.STALE,
        account_id=ACCOUNT,
        region="us-east-1",
        resource_type=ResourceType.IMAGE,
        resource_id="ami-0123456789abcdef0",
        name="web-al2023-2026-03-04",
        detail="beyond-keep-newest",
        owner_tags={"team": "web"},
        age_days=272,
        size_gib=30,
        monthly_cost=1.5,
        reason="Family web/al2023 keeps the 3 newest AMIs; this one is the 5th newest and nothing uses it.",
        fix="Deregister it with its snapshots, or tag it ami-governance:protected=true.",
        related_ids=("snap-0aaa111122223333a",),
    ),
    Finding(
        kind=FindingKind.UNUSED,
        account_id=ACCOUNT,
        region="us-east-1",
        resource_type=ResourceType.IMAGE,
        resource_id="ami-0fedcba9876543210",
        name="batch-ubuntu24-2026-05-11",
        owner_tags={"team": "data"},
        age_days=204,
        size_gib=16,
        monthly_cost=0.8,
        reason="Not launched for 180 days (last launch 2026-05-20) and DescribeImageReferences finds no instance, "
        "launch template or SSM parameter using it.",
        fix="Deregister it if it is no longer needed; otherwise launch or reference it, or raise report.unused_days.",
        related_ids=("snap-0bbb111122223333b",),
    ),
    Finding(
        kind=FindingKind.NON_COMPLIANT,
        account_id=ACCOUNT,
        region="eu-west-1",
        resource_type=ResourceType.IMAGE,
        resource_id="ami-0badc0de000000001",
        name="test image, do not use",
        detail="never-judged",
        age_days=12,
        size_gib=8,
        monthly_cost=0.4,
        reason="Name 'test image, do not use' does not match the naming convention; required tag Owner is missing.",
        fix="Copy it under a conforming name (e.g. app-os-YYYY-MM-DD) and add the Owner tag.",
    ),
    Finding(
        kind=FindingKind.DRIFT,
        account_id=ACCOUNT,
        region="eu-west-1",
        resource_type=ResourceType.IMAGE,
        resource_id="ami-0a11ce0000000beef",
        name="api-al2023-2026-11-20",
        detail="missing-replica",
        reason="Approved on 2026-11-21 for eu-west-1, but no replica exists there.",
        fix="Re-apply the approval tag to queue the copy again, or remove eu-west-1 from the replication targets.",
    ),
    Finding(
        kind=FindingKind.EXPOSURE,
        account_id=ACCOUNT,
        region="us-east-1",
        resource_type=ResourceType.IMAGE,
        resource_id="ami-0feedface0000cafe",
        name='=HYPERLINK("http://evil.example","click")',
        detail="public-image",
        owner_tags={"team": "-ops"},
        age_days=30,
        size_gib=8,
        monthly_cost=0.4,
        reason="The AMI is public: anyone can launch it and read its snapshots' data.",
        fix="aws ec2 modify-image-attribute --image-id ami-0feedface0000cafe --launch-permission "
        '"Remove=[{Group=all}]"',
    ),
    Finding(
        kind=FindingKind.EXPOSURE,
        account_id=ACCOUNT,
        region="eu-west-1",
        resource_type=ResourceType.REGION,
        resource_id="eu-west-1",
        detail="snapshot-block-public-access-off",
        reason="Snapshot block public access is 'unblocked' in eu-west-1: a snapshot can be made public.",
        fix="aws ec2 enable-snapshot-block-public-access --state block-all-sharing --region eu-west-1",
    ),
    Finding(
        kind=FindingKind.UNTRUSTED_SOURCE,
        account_id=ACCOUNT,
        region="ap-southeast-2",
        resource_type=ResourceType.INSTANCE,
        resource_id="i-0123abcd4567ef890",
        name="<script>alert('x')</script>",
        detail="instance",
        age_days=3,
        reason="Runs ami-0c0mmun1ty000001, owned by 999988887777, which is not a trusted owner.",
        fix="Rebuild it from an AMI of a trusted owner, or add 999988887777 to report.trusted_owners once verified.",
        actionable=False,
        related_ids=("ami-0c0mmun1ty000001",),
    ),
    Finding(
        kind=FindingKind.OVERDUE,
        account_id=ACCOUNT,
        region="us-east-1",
        resource_type=ResourceType.IMAGE,
        resource_id="ami-0dead1ine0000f00d",
        name="legacy-centos7-2024-01-02",
        detail="deregister-after",
        owner_tags={"team": "legacy"},
        age_days=699,
        size_gib=40,
        monthly_cost=2.0,
        reason="Tagged ami-governance:deregister-after=2026-11-15; that date has passed.",
        fix="Deregister it, or remove the tag after fixing its compliance.",
        related_ids=("snap-0ccc111122223333c", "snap-0ddd111122223333d"),
    ),
)

ACTIONS = (
    SweepAction(
        kind=ActionKind.DEREGISTER_OVERDUE,
        account_id=ACCOUNT,
        region="us-east-1",
        resource_id="ami-0dead1ine0000f00d",
        status=ActionStatus.WOULD_DO,
        reason="dry-run: past its deregister-after deadline (2026-11-15)",
        finding_kind=FindingKind.OVERDUE,
    ),
    SweepAction(
        kind=ActionKind.DELETE_ORPHANED_SNAPSHOT,
        account_id=ACCOUNT,
        region="us-east-1",
        resource_id="snap-0a1b2c3d4e5f60718",
        status=ActionStatus.WOULD_DO,
        reason="dry-run: orphaned for 143 days (policy: 30)",
        finding_kind=FindingKind.ORPHANED_SNAPSHOT,
    ),
    SweepAction(
        kind=ActionKind.DELETE_ORPHANED_SNAPSHOT,
        account_id=ACCOUNT,
        region="eu-west-1",
        resource_id="snap-0ffee11223344aabb",
        status=ActionStatus.CAPPED,
        reason="over the run's cap of 1 action",
        finding_kind=FindingKind.ORPHANED_SNAPSHOT,
    ),
)


def sample_report() -> Report:
    return Report(
        run_id=RUN_ID,
        generated_at=GENERATED_AT,
        mode="enforce",
        sweep="dry-run",
        regions=REGIONS,
        findings=FINDINGS,
        actions=ACTIONS,
    )


def complete_report() -> Report:
    """Two complete regions, no incomplete one, no sweep."""
    return replace(
        sample_report(),
        regions=REGIONS[:2],
        findings=tuple(f for f in FINDINGS if f.region != "ap-southeast-2"),
        actions=(),
        sweep="off",
    )


def empty_report() -> Report:
    return Report(run_id="empty-run", generated_at=GENERATED_AT, mode="audit", sweep="off", regions=REGIONS[:1])
