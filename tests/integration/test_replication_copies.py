"""The copy Lambda on moto: copy jobs from the copy queue make each region's copy exactly once (claimed in the
source's lineage, deferred when EC2 says later, adopted when a copy already exists, dropped when the approval was
withdrawn). The replicate Lambda's cases are in test_replication_approvals.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from ami_governance.adapters.inventory import Inventory
from ami_governance.models.policy import GovernancePolicy
from tests.integration.conftest import ACCOUNT, HOME, TABLE
from tests.integration.replication_support import (
    AP,
    APPROVER_ROLE,
    COPY_QUEUE,
    EU,
    GOOD_NAME,
    WITHDRAWN,
    P,
    Replication,
    remove_approval_tag,
    replication_policy,
)
from tests.support import fail_lambda_calls

pytestmark = pytest.mark.integration


def test_two_workers_with_the_same_job_copy_once(replication: Replication) -> None:
    source = replication.compliant_image()
    replication.approve(source)
    records = replication.jobs()

    replication.run_copies(records)
    duplicate = replication.run_copies(records)  # SQS delivers at least once

    assert {o["result"] for o in duplicate.get("outcomes", [])} <= {"skipped"}
    assert len(replication.replicas(source, EU)) == 1


def test_resource_limit_exceeded_for_one_region_defers_that_region_only(replication: Replication) -> None:
    source = replication.compliant_image()
    replication.approve(source)
    fail_lambda_calls("ec2", AP, "CopyImage", "ResourceLimitExceeded")

    first = replication.run_copies()

    assert len(first["batchItemFailures"]) == 1
    assert len(replication.replicas(source, EU)) == 1
    assert replication.replicas(source, AP) == []
    assert replication.item(source)["replicas"][AP]["state"] == "queued"
    assert replication.jobs() == []  # hidden for its backoff, not lost

    # Time passes: the deferred job becomes visible again.
    second = replication.run_copies(_all_jobs(replication))

    assert second["batchItemFailures"] == []
    assert len(replication.replicas(source, AP)) == 1
    assert len(replication.replicas(source, EU)) == 1


def _all_jobs(replication: Replication) -> list[dict[str, Any]]:
    """Make every hidden job visible (as when its backoff has passed) and receive it."""
    # Waiting out a real backoff would take minutes: moto's backend shortens it.
    from moto.sqs.models import sqs_backends

    queue = sqs_backends[ACCOUNT][HOME].queues[COPY_QUEUE]
    for message in queue._messages:
        message.change_visibility(0)
    return replication.jobs()


def test_copies_are_encrypted_with_the_regions_key(
    replication: Replication, policy_with: Callable[..., GovernancePolicy]
) -> None:
    kms = boto3.client("kms", region_name=EU)
    key_id = kms.create_key(Description="replicas")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/ami-replicas", TargetKeyId=key_id)
    replication.estate.set_policy(replication_policy(policy_with, kms_keys={EU: "alias/ami-replicas"}))
    source = replication.compliant_image()
    replication.approve(source)

    replication.run_copies()

    [replica] = replication.replicas(source, EU)
    snapshot_id = replica["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    snapshot = boto3.client("ec2", region_name=EU).describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]
    assert snapshot["Encrypted"] is True
    assert key_id in snapshot["KmsKeyId"]
    [unencrypted] = replication.replicas(source, AP)
    ap_snapshot = unencrypted["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    assert not boto3.client("ec2", region_name=AP).describe_snapshots(SnapshotIds=[ap_snapshot])["Snapshots"][0][
        "Encrypted"
    ]


def test_malformed_and_stale_copy_jobs(replication: Replication) -> None:
    sqs = boto3.client("sqs", region_name=HOME)
    sqs.send_message(QueueUrl=replication.queue_url, MessageBody="not json")
    stale = {
        "source_image_id": "ami-0123456789abcdef0",
        "source_region": HOME,
        "target_region": EU,
        "name": GOOD_NAME,
        "approved_by": APPROVER_ROLE,
        "approval_event_id": "old",
        "generation": 0,
    }
    sqs.send_message(QueueUrl=replication.queue_url, MessageBody=json.dumps(stale))

    result = replication.run_copies()

    results = sorted(o["result"] for o in result["outcomes"])
    assert results == ["malformed", "skipped"]
    assert len(result["batchItemFailures"]) == 1  # the malformed job stays until the dead-letter queue takes it
    assert replication.replicas("ami-0123456789abcdef0", EU) == []


def test_a_failure_after_the_claim_releases_it_and_the_job_is_retried(replication: Replication) -> None:
    source = replication.compliant_image()
    replication.approve(source)
    fail_lambda_calls("ec2", AP, "DescribeImages", "InternalError")

    first = replication.run_copies()

    assert len(first["batchItemFailures"]) == 1
    assert replication.item(source)["replicas"][AP]["state"] == "queued"  # released, not left claimed
    replication.run_copies(_all_jobs(replication))
    assert len(replication.replicas(source, AP)) == 1


def test_a_job_whose_copy_another_worker_holds_waits_instead_of_being_dropped(replication: Replication) -> None:
    source = replication.compliant_image()
    replication.approve(source)
    records = replication.jobs()
    [ap_job] = [r for r in records if json.loads(r["body"])["target_region"] == AP]

    claimed = Inventory(TABLE, HOME).claim_copy(
        source, HOME, AP, 0, "another-worker", now="2000-01-01T00:00:00Z", lease_until="2999-01-01T00:00:00Z"
    )
    assert claimed

    result = replication.run_copies([ap_job])

    assert result["batchItemFailures"] == [{"itemIdentifier": ap_job["messageId"]}]
    assert result["outcomes"][0]["reason"] == "another worker holds this copy"


def test_a_copy_made_earlier_by_this_system_is_adopted_not_copied_again(replication: Replication) -> None:
    source = replication.compliant_image()
    replication.approve(source)
    earlier = boto3.client("ec2", region_name=AP).copy_image(
        SourceImageId=source,
        SourceRegion=HOME,
        Name=GOOD_NAME,
        TagSpecifications=[
            {"ResourceType": "image", "Tags": [{"Key": f"{P}source-image", "Value": f"{HOME}/{source}"}]}
        ],
    )["ImageId"]

    result = replication.run_copies()

    assert {o["region"]: o["result"] for o in result["outcomes"]} == {EU: "copying", AP: "adopted"}
    assert [r["ImageId"] for r in replication.replicas(source, AP)] == [earlier]
    entry = replication.item(source)["replicas"][AP]
    assert (entry["image_id"], entry["state"], entry["adopted"]) == (earlier, "available", True)


def test_a_tag_removed_after_the_jobs_are_queued_stops_the_copies_that_have_not_started(
    replication: Replication,
) -> None:
    # Given an approval whose copy jobs are on the queue
    source = replication.compliant_image()
    replication.approve(source)
    replication.estate.notices()

    # When the approval tag is removed before the copy worker takes the jobs
    remove_approval_tag(source)
    result = replication.run_copies()

    # Then no copy is made: each job is dropped as withdrawn, its region recorded so, the answer updated
    assert {o["region"]: o["result"] for o in result["outcomes"]} == {EU: "withdrawn", AP: "withdrawn"}
    assert result["batchItemFailures"] == []
    assert replication.replicas(source, EU) == []
    assert replication.replicas(source, AP) == []
    entries = replication.item(source)["replicas"]
    assert {r: e["state"] for r, e in entries.items()} == {EU: "withdrawn", AP: "withdrawn"}
    assert replication.estate.tags_of(source)[f"{P}approval"] == f"{WITHDRAWN}; not copied to {AP}, {EU}"
    [notice] = replication.estate.notices()
    assert notice["subject"] == f"AMI {source} replicated to 0 of 2 regions, 2 withdrawn"
    assert notice["body"]["withdrawn"] == [AP, EU]

    # And approving again later copies both (with the same ClientToken generation: no copy was ever made)
    again = replication.approve(source, event_id="approval-2")
    assert sorted(again["images"][0]["queued"]) == [AP, EU]
    replication.run_copies()
    assert len(replication.replicas(source, EU)) == 1
    assert len(replication.replicas(source, AP)) == 1
    assert replication.item(source)["replicas"][EU]["generation"] == 0


def test_copies_made_before_the_tag_was_removed_stay(replication: Replication) -> None:
    # Given an approval whose copy to eu-west-1 has started
    source = replication.compliant_image()
    replication.approve(source)
    records = replication.jobs()
    [eu_job] = [r for r in records if json.loads(r["body"])["target_region"] == EU]
    [ap_job] = [r for r in records if json.loads(r["body"])["target_region"] == AP]
    replication.run_copies([eu_job])
    replication.estate.notices()

    # When the tag is removed before the other region's job is taken
    remove_approval_tag(source)
    result = replication.run_copies([ap_job])

    # Then that region is withdrawn, while the copy already made stays and settles as usual
    assert result["outcomes"][0]["result"] == "withdrawn"
    assert replication.replicas(source, AP) == []
    [eu_replica] = replication.replicas(source, EU)
    assert replication.estate.tags_of(source)[f"{P}approval"] == f"{WITHDRAWN}; not copied to {AP}"
    replication.settle(eu_replica["ImageId"], EU)
    assert replication.item(source)["replicas"][EU]["state"] == "available"
    [notice] = replication.estate.notices()
    assert notice["subject"] == f"AMI {source} replicated to 1 of 2 regions, 1 withdrawn"
    assert notice["body"]["replicas"] == {EU: eu_replica["ImageId"]}
