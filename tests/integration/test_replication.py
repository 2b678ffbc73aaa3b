"""Approval-gated replication on moto: the replicate Lambda on approvals and AMI state changes, the copy Lambda
on the copy queue, lineage in the inventory, sharing, notices.

moto's CopyImage is completed by emulator/moto_extensions.py (ClientToken, CopyImageTags, TagSpecifications,
SourceImageId and its filter, KMS): these tests rely on that, as the emulator does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from ami_governance.models.policy import GovernancePolicy
from ami_governance.services import wiring
from tests.integration.conftest import ACCOUNT, HOME, Estate, create_image_event, state_event, tags_event
from tests.support import FakeLambdaContext, fail_lambda_calls, receive_as_sqs_event_records

P = "ami-governance:"
EU, AP = "eu-west-1", "ap-southeast-2"
APPROVER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/AmiApprover"
CONSUMER_ACCOUNT = "210987654321"
GOOD_NAME = "payments-api-al2023-1.4.0"
GOOD_TAGS = {"Owner": "team-payments", "Environment": "prod", "CostCenter": "CC-1234", "Application": "payments-api"}


@dataclass
class Replication:
    estate: Estate
    queue_url: str
    enforce: Callable[[dict[str, Any]], dict[str, Any]]
    replicate: Callable[[dict[str, Any]], dict[str, Any]]
    copy: Callable[[dict[str, Any]], dict[str, Any]]

    def compliant_image(self, name: str = GOOD_NAME, tags: dict[str, str] | None = None) -> str:
        image_id, instance_id = self.estate.create_image(name, tags if tags is not None else GOOD_TAGS)
        self.enforce(create_image_event(image_id, instance_id, name=name, tags=tags if tags is not None else GOOD_TAGS))
        return image_id

    def approve(self, image_id: str, caller_role: str = APPROVER_ROLE, event_id: str = "approval-1") -> dict[str, Any]:
        boto3.client("ec2", region_name=HOME).create_tags(
            Resources=[image_id], Tags=[{"Key": f"{P}approved", "Value": "true"}]
        )
        return self.replicate(approval_event(image_id, caller_role, event_id))

    def jobs(self) -> list[dict[str, Any]]:
        """Receive what the copy queue holds, as Lambda's SQS event records."""
        return receive_as_sqs_event_records(boto3.client("sqs", region_name=HOME), self.queue_url)

    def run_copies(self, records: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """One copy Lambda invocation over the queue's jobs; successes are deleted as Lambda's poller does."""
        records = self.jobs() if records is None else records
        result = self.copy({"Records": records})
        failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
        sqs = boto3.client("sqs", region_name=HOME)
        for record in records:
            if record["messageId"] not in failed:
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=record["receiptHandle"])
        return result

    def replicas(self, source_id: str, region: str) -> list[dict[str, Any]]:
        images = boto3.client("ec2", region_name=region).describe_images(
            Owners=["self"], Filters=[{"Name": "source-image-id", "Values": [source_id]}]
        )["Images"]
        return list(images)

    def settle(self, replica_id: str, region: str, state: str = "available", error: str | None = None) -> Any:
        event = state_event(replica_id, state, region=region)
        if error:
            event["detail"]["ErrorMessage"] = error
        return self.replicate(event)

    def item(self, image_id: str, region: str = HOME) -> dict[str, Any]:
        from ami_governance.adapters.inventory import Inventory

        found = Inventory("ami-governance-inventory", HOME).get(image_id, region)
        assert found is not None
        return found

    def queued(self) -> int:
        attributes = boto3.client("sqs", region_name=HOME).get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"])


def approval_event(image_id: str, caller_role: str, event_id: str) -> dict[str, Any]:
    event = tags_event("create_tags_approval", [image_id], {f"{P}approved": "true"})
    event["id"] = f"envelope-{event_id}"
    role_name = caller_role.rsplit("/", 1)[-1]
    identity = event["detail"]["userIdentity"]
    identity["arn"] = f"arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/someone"
    identity["sessionContext"]["sessionIssuer"]["arn"] = caller_role
    event["detail"]["eventID"] = event_id
    return event


def replication_policy(policy_with: Callable[..., GovernancePolicy], **replication: Any) -> GovernancePolicy:
    return policy_with(
        governed_regions=[HOME, EU, AP],
        approval={"approvers": ["arn:aws:iam::*:role/AmiApprover"]},
        replication={"regions": [EU, AP], "share_with": {"accounts": [CONSUMER_ACCOUNT]}, **replication},
    )


def _last_batch_result(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    return _RESULTS[-1]


_RESULTS: list[dict[str, Any]] = []


@pytest.fixture(autouse=True)
def _record_batch_results(monkeypatch: pytest.MonkeyPatch) -> None:
    from ami_governance.services.copy import CopyService

    original = CopyService.handle_batch

    def recorded(self: CopyService, event: Any) -> dict[str, Any]:
        result = original(self, event)
        _RESULTS.append(result)
        return result

    monkeypatch.setattr(CopyService, "handle_batch", recorded)


@pytest.fixture
def replication(
    estate: Estate,
    monkeypatch: pytest.MonkeyPatch,
    policy_with: Callable[..., GovernancePolicy],
    invoke: Callable[[dict[str, Any]], dict[str, Any]],
) -> Replication:
    from handlers.copy import handler as copy_handler
    from handlers.replicate import handler as replicate_handler

    sqs = boto3.client("sqs", region_name=HOME)
    queue_url = sqs.create_queue(QueueName="ami-governance-copy-jobs")["QueueUrl"]
    monkeypatch.setenv("COPY_QUEUE_URL", queue_url)
    estate.set_policy(replication_policy(policy_with))

    def replicate(event: dict[str, Any]) -> dict[str, Any]:
        return replicate_handler(event, FakeLambdaContext(function_name="ami-governance-replicate"))  # type: ignore[arg-type]

    def copy(event: dict[str, Any]) -> dict[str, Any]:
        # The handler answers Lambda with the failed ids only; the service's result also says what each job did.
        response = copy_handler(event, FakeLambdaContext(function_name="ami-governance-copy"))  # type: ignore[arg-type]
        assert set(response) == {"batchItemFailures"}
        return dict(_last_batch_result(monkeypatch))

    return Replication(estate, queue_url, invoke, replicate, copy)


def test_an_allowed_approval_copies_to_every_target_region_with_tags_lineage_and_sharing(
    replication: Replication,
) -> None:
    source = replication.compliant_image()

    outcome = replication.approve(source)

    assert outcome["images"][0]["result"] == "approved"
    assert sorted(outcome["images"][0]["queued"]) == [AP, EU]
    assert replication.estate.tags_of(source)[f"{P}approval"] == f"approved: copying to {EU}, {AP}"
    assert replication.estate.tags_of(source)[f"{P}approved-by"] == APPROVER_ROLE

    result = replication.run_copies()

    assert result["batchItemFailures"] == []
    replica_ids = {}
    for region in (EU, AP):
        [replica] = replication.replicas(source, region)
        tags = {t["Key"]: t["Value"] for t in replica.get("Tags", [])}
        assert tags[f"{P}source-image"] == f"{HOME}/{source}"
        assert tags[f"{P}source-region"] == HOME
        assert tags[f"{P}approved-by"] == APPROVER_ROLE
        assert tags["Owner"] == "team-payments"  # CopyImageTags brought the source's user tags
        assert replica["Name"] == GOOD_NAME
        replica_ids[region] = replica["ImageId"]
    item = replication.item(source)
    assert {r: e["image_id"] for r, e in item["replicas"].items()} == replica_ids
    assert {e["state"] for e in item["replicas"].values()} == {"copying"}
    assert replication.item(replica_ids[EU], EU)["replica_of"] == f"{HOME}/{source}"

    replication.estate.notices()  # the verdict notices so far are not under test
    replication.settle(replica_ids[EU], EU)
    assert replication.estate.notices() == []  # one region is not the round
    replication.settle(replica_ids[AP], AP)

    item = replication.item(source)
    assert {e["state"] for e in item["replicas"].values()} == {"available"}
    assert all("available_at" in e for e in item["replicas"].values())
    [notice] = replication.estate.notices()
    assert notice["body"]["kind"] == "ami-replicated"
    assert notice["body"]["replicas"] == replica_ids
    permissions = boto3.client("ec2", region_name=EU).describe_image_attribute(
        ImageId=replica_ids[EU], Attribute="launchPermission"
    )["LaunchPermissions"]
    assert {"UserId": CONSUMER_ACCOUNT} in permissions


def test_an_approval_by_anyone_else_is_rejected_and_copies_nothing(replication: Replication) -> None:
    source = replication.compliant_image()
    replication.estate.notices()

    outcome = replication.approve(source, caller_role=f"arn:aws:iam::{ACCOUNT}:role/Developer")

    assert outcome["images"][0]["result"] == "rejected"
    answer = replication.estate.tags_of(source)[f"{P}approval"]
    assert answer == f"rejected: arn:aws:iam::{ACCOUNT}:role/Developer is not allowed to approve AMIs"
    [notice] = replication.estate.notices()
    assert notice["body"]["kind"] == "ami-approval-rejected"
    assert replication.queued() == 0
    assert replication.replicas(source, EU) == []
    assert "replicas" not in replication.item(source)


def test_a_non_compliant_ami_cannot_be_approved(replication: Replication) -> None:
    source = replication.compliant_image(name="Not A Good Name")
    replication.estate.notices()

    outcome = replication.approve(source)

    assert outcome["images"][0]["reason"] == "the AMI is non-compliant"
    assert replication.estate.tags_of(source)[f"{P}approval"] == "rejected: the AMI is non-compliant"
    assert [n["body"]["kind"] for n in replication.estate.notices()] == ["ami-approval-rejected"]
    assert replication.queued() == 0


def test_an_approval_of_a_pending_ami_is_honoured_when_it_becomes_available(replication: Replication) -> None:
    from emulator.moto_extensions import set_image_state

    source = replication.compliant_image()
    set_image_state(ACCOUNT, HOME, source, "pending")

    outcome = replication.approve(source)

    assert outcome["images"][0]["result"] == "pending"
    assert replication.estate.tags_of(source)[f"{P}approval"] == "pending: copies start when the AMI is available"
    assert replication.queued() == 0

    set_image_state(ACCOUNT, HOME, source, "available")
    handled = replication.replicate(state_event(source, "available"))

    assert sorted(handled["images"][0]["queued"]) == [AP, EU]
    replication.run_copies()
    assert len(replication.replicas(source, EU)) == 1
    assert len(replication.replicas(source, AP)) == 1


def test_the_same_approval_delivered_three_times_makes_one_copy_per_region(replication: Replication) -> None:
    source = replication.compliant_image()

    replication.approve(source, event_id="approval-1")
    replication.replicate(approval_event(source, APPROVER_ROLE, "approval-1"))  # a repeat before any copy
    first_jobs = replication.jobs()
    replication.replicate(approval_event(source, APPROVER_ROLE, "approval-1"))  # a repeat while jobs are in flight
    replication.run_copies(first_jobs)
    replication.run_copies()  # whatever the repeats queued

    assert len(replication.replicas(source, EU)) == 1
    assert len(replication.replicas(source, AP)) == 1
    # A second approval by someone else, later, finds every region replicated.
    again = replication.approve(source, event_id="approval-2")
    assert again["images"][0]["queued"] == []
    answer = replication.estate.tags_of(source)[f"{P}approval"]
    assert answer == f"approved: nothing new to copy ({AP} available, {EU} available)"


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

    queue = sqs_backends[ACCOUNT][HOME].queues["ami-governance-copy-jobs"]
    for message in queue._messages:
        message.change_visibility(0)
    return replication.jobs()


def test_a_failed_replica_is_notified_and_recorded(replication: Replication) -> None:
    source = replication.compliant_image()
    replication.approve(source)
    replication.run_copies()
    eu_replica = replication.replicas(source, EU)[0]["ImageId"]
    ap_replica = replication.replicas(source, AP)[0]["ImageId"]
    replication.estate.notices()

    replication.settle(eu_replica, EU, "failed", error="The KMS key alias/ami-replicas is disabled")
    replication.settle(eu_replica, EU, "failed", error="The KMS key alias/ami-replicas is disabled")  # repeated
    replication.settle(ap_replica, AP)

    entry = replication.item(source)["replicas"][EU]
    assert entry["state"] == "failed"
    assert entry["error"] == "The KMS key alias/ami-replicas is disabled"
    notices = replication.estate.notices()
    assert [n["body"]["kind"] for n in notices] == ["ami-replica-failed", "ami-replicated-partially"]
    assert notices[0]["body"]["error"] == "The KMS key alias/ami-replicas is disabled"
    assert notices[1]["body"]["failed"] == {EU: "The KMS key alias/ami-replicas is disabled"}


def test_a_replica_deregistered_by_hand_is_drift_and_reapproval_copies_only_it(replication: Replication) -> None:
    source = replication.compliant_image()
    replication.approve(source)
    replication.run_copies()
    eu_replica = replication.replicas(source, EU)[0]["ImageId"]
    boto3.client("ec2", region_name=EU).deregister_image(ImageId=eu_replica)

    replication.settle(eu_replica, EU, "deregistered")

    assert replication.item(source)["replicas"][EU]["state"] == "deregistered"
    assert replication.item(eu_replica, EU)["state"] == "deregistered"

    again = replication.approve(source, event_id="approval-2")
    assert again["images"][0]["queued"] == [EU]
    replication.run_copies()
    [new_replica] = replication.replicas(source, EU)
    assert new_replica["ImageId"] != eu_replica
    assert len(replication.replicas(source, AP)) == 1
    assert replication.item(source)["replicas"][EU]["generation"] == 1


def test_a_new_target_region_is_copied_on_reapproval(
    replication: Replication, policy_with: Callable[..., GovernancePolicy]
) -> None:
    replication.estate.set_policy(replication_policy(policy_with, regions=[EU]))
    source = replication.compliant_image()
    replication.approve(source)
    replication.run_copies()
    replication.estate.set_policy(replication_policy(policy_with))

    again = replication.approve(source, event_id="approval-2")

    assert again["images"][0]["queued"] == [AP]
    replication.run_copies()
    assert len(replication.replicas(source, EU)) == 1
    assert len(replication.replicas(source, AP)) == 1


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


def test_a_replica_cannot_be_approved_itself(replication: Replication) -> None:
    source = replication.compliant_image()
    replication.approve(source)
    replication.run_copies()
    eu_replica = replication.replicas(source, EU)[0]["ImageId"]

    event = approval_event(eu_replica, APPROVER_ROLE, "approval-replica")
    event["region"] = EU
    event["detail"]["awsRegion"] = EU
    outcome = replication.replicate(event)

    assert outcome["images"][0]["result"] == "rejected"
    assert outcome["images"][0]["reason"] == f"the AMI is a replica of {HOME}/{source}: approve that"


def test_an_approval_with_another_value_or_a_failed_call_is_ignored(replication: Replication) -> None:
    source = replication.compliant_image()
    not_approving = tags_event("create_tags_approval", [source], {f"{P}approved": "false"})
    failed = approval_event(source, APPROVER_ROLE, "approval-failed")
    failed["detail"]["errorCode"] = "Client.UnauthorizedOperation"

    assert replication.replicate(not_approving)["reason"] == "the tag change does not approve"
    assert replication.replicate(failed)["status"] == "ignored"
    assert replication.queued() == 0


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


def test_replication_is_off_for_events_of_an_ungoverned_region(replication: Replication) -> None:
    event = state_event("ami-0123456789abcdef0", "available", region="sa-east-1")

    assert replication.replicate(event)["reason"] == "region sa-east-1 is not governed by the policy"
    wiring.reset()


def test_cascade_deregisters_the_replicas_replication_recorded(
    replication: Replication,
    policy_with: Callable[..., GovernancePolicy],
    invoke_cleanup: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
    from tests.integration.conftest import deregister_event

    source = replication.compliant_image()
    replication.approve(source)
    replication.run_copies()
    eu_replica = replication.replicas(source, EU)[0]["ImageId"]
    replication.settle(eu_replica, EU, "failed", error="KMS key disabled")
    ap_replica = replication.replicas(source, AP)[0]["ImageId"]
    replication.settle(ap_replica, AP)
    document = json.loads(replication_policy(policy_with).model_dump_json())
    document["cleanup"].update(dry_run=False, cascade_to_replicas=True)
    replication.estate.set_policy(GovernancePolicy.model_validate(document))
    boto3.client("ec2", region_name=HOME).deregister_image(ImageId=source)

    outcome = invoke_cleanup(deregister_event(source))

    replicas = outcome["images"][0]["replicas"]
    assert replicas[ap_replica] == f"deregistered in {AP}"
    assert replicas[eu_replica] == f"deregistered in {EU}"
    assert replication.replicas(source, AP) == []


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
    from ami_governance.adapters.inventory import Inventory

    claimed = Inventory("ami-governance-inventory", HOME).claim_copy(
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


def test_an_ami_with_forged_lineage_tags_is_neither_shared_nor_recorded(replication: Replication) -> None:
    source = replication.compliant_image()
    replication.approve(source)
    replication.run_copies()
    forged = boto3.client("ec2", region_name=EU).copy_image(
        SourceImageId=source, SourceRegion=HOME, Name="hand copy", CopyImageTags=True
    )["ImageId"]
    boto3.client("ec2", region_name=EU).create_tags(
        Resources=[forged], Tags=[{"Key": f"{P}source-image", "Value": f"{HOME}/{source}"}]
    )

    outcome = replication.settle(forged, EU)

    assert outcome["reason"] == f"replica of {HOME}/{source} unmatched"
    permissions = boto3.client("ec2", region_name=EU).describe_image_attribute(
        ImageId=forged, Attribute="launchPermission"
    )["LaunchPermissions"]
    assert permissions == []
    assert replication.estate.inventory_item(forged, EU) is None


def test_a_state_change_before_the_copy_is_recorded_is_retried(replication: Replication) -> None:
    from ami_governance.services.lineage import ReplicaNotRecordedYet

    source = replication.compliant_image()
    replication.approve(source)
    from ami_governance.adapters.inventory import Inventory

    # The copy worker has claimed the region and not yet recorded what CopyImage answered.
    claimed = Inventory("ami-governance-inventory", HOME).claim_copy(
        source, HOME, EU, 0, "the-worker", now="2000-01-01T00:00:00Z", lease_until="2999-01-01T00:00:00Z"
    )
    assert claimed
    copy_id = boto3.client("ec2", region_name=EU).copy_image(
        SourceImageId=source,
        SourceRegion=HOME,
        Name=GOOD_NAME,
        TagSpecifications=[{"ResourceType": "image", "Tags": [{"Key": f"{P}source-image", "Value": f"{HOME}/{source}"},
                                                                {"Key": f"{P}approved-by", "Value": APPROVER_ROLE}]}],
    )["ImageId"]  # fmt: skip

    with pytest.raises(ReplicaNotRecordedYet):
        replication.settle(copy_id, EU)
    assert replication.item(source)["replicas"][EU].get("image_id") is None


def test_a_stale_deregistered_event_does_not_touch_the_next_round(replication: Replication) -> None:
    source = replication.compliant_image()
    replication.approve(source)
    replication.run_copies()
    old = replication.replicas(source, EU)[0]["ImageId"]
    boto3.client("ec2", region_name=EU).deregister_image(ImageId=old)
    replication.settle(old, EU, "deregistered")
    replication.approve(source, event_id="approval-2")

    replication.settle(old, EU, "deregistered")  # delivered again, late

    entry = replication.item(source)["replicas"][EU]
    assert (entry["state"], entry["generation"]) == ("queued", 1)
    replication.run_copies()
    assert len(replication.replicas(source, EU)) == 1


def test_a_repeated_approval_does_not_copy_again_what_it_failed_to_copy(replication: Replication) -> None:
    source = replication.compliant_image()
    replication.approve(source, event_id="approval-1")
    replication.run_copies()
    eu_replica = replication.replicas(source, EU)[0]["ImageId"]
    replication.settle(eu_replica, EU, "failed", error="KMS key disabled")

    again = replication.replicate(approval_event(source, APPROVER_ROLE, "approval-1"))  # Lambda retried the event

    assert again["images"][0]["queued"] == []
    assert replication.item(source)["replicas"][EU]["state"] == "failed"


def test_an_approval_of_a_pending_ami_that_then_fails_is_dropped(replication: Replication) -> None:
    from emulator.moto_extensions import set_image_state

    source = replication.compliant_image()
    set_image_state(ACCOUNT, HOME, source, "pending")
    replication.approve(source)
    set_image_state(ACCOUNT, HOME, source, "failed")

    outcome = replication.replicate(state_event(source, "failed"))

    assert outcome["images"][0]["result"] == "rejected"
    assert replication.item(source)["approval_status"] == "rejected"
    assert replication.queued() == 0


# ---- the approval counts only while the AMI carries the approval tag ---------------------------------------------

WITHDRAWN = f"withdrawn: the AMI no longer carries {P}approved=true"


def remove_approval_tag(image_id: str) -> None:
    boto3.client("ec2", region_name=HOME).delete_tags(Resources=[image_id], Tags=[{"Key": f"{P}approved"}])


def test_an_approval_tag_removed_before_its_event_is_handled_copies_nothing(replication: Replication) -> None:
    # Given an approver who set the approval tag and removed it at once
    source = replication.compliant_image()
    boto3.client("ec2", region_name=HOME).create_tags(
        Resources=[source], Tags=[{"Key": f"{P}approved", "Value": "true"}]
    )
    remove_approval_tag(source)
    replication.estate.notices()

    # When the CreateTags event that set it is handled
    outcome = replication.replicate(approval_event(source, APPROVER_ROLE, "approval-1"))

    # Then the approval is withdrawn: nothing queued or copied, the answer says why, nobody is alerted
    [image] = outcome["images"]
    assert (image["result"], image["reason"]) == ("withdrawn", f"the AMI no longer carries {P}approved=true")
    assert replication.estate.tags_of(source)[f"{P}approval"] == WITHDRAWN
    assert f"{P}approved-by" not in replication.estate.tags_of(source)
    assert replication.queued() == 0
    assert replication.replicas(source, EU) == []
    assert replication.estate.notices() == []


def test_an_approval_tag_set_to_another_value_since_is_withdrawn_too(replication: Replication) -> None:
    source = replication.compliant_image()
    boto3.client("ec2", region_name=HOME).create_tags(
        Resources=[source], Tags=[{"Key": f"{P}approved", "Value": "false"}]
    )

    outcome = replication.replicate(approval_event(source, APPROVER_ROLE, "approval-1"))

    assert outcome["images"][0]["result"] == "withdrawn"
    assert replication.queued() == 0


def test_a_pending_approval_whose_tag_is_removed_copies_nothing_when_the_ami_becomes_available(
    replication: Replication,
) -> None:
    from emulator.moto_extensions import set_image_state

    # Given an approval of a pending AMI, recorded as pending
    source = replication.compliant_image()
    set_image_state(ACCOUNT, HOME, source, "pending")
    assert replication.approve(source)["images"][0]["result"] == "pending"

    # When the approver removes the tag, and then the AMI becomes available
    remove_approval_tag(source)
    set_image_state(ACCOUNT, HOME, source, "available")
    handled = replication.replicate(state_event(source, "available"))

    # Then the approval is not honoured: no copy job, and the inventory and the answer say it was withdrawn
    assert handled["images"][0]["result"] == "withdrawn"
    assert replication.queued() == 0
    assert replication.item(source)["approval_status"] == "withdrawn"
    assert replication.estate.tags_of(source)[f"{P}approval"] == WITHDRAWN
    # And a later `available` (EnableImage) does not revive it
    assert replication.replicate(state_event(source, "available"))["reason"] == (
        "neither a replica nor an AMI awaiting replication"
    )


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
