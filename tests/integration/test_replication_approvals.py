"""The replicate Lambda on moto: approvals (who may approve what, and when), the rounds they queue, and the AMI
state changes that settle each replica's lineage, share it and announce the round. The copy worker's own cases are
in test_replication_copies.py; both share tests/integration/replication_support.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from ami_governance.adapters.inventory import Inventory
from ami_governance.models.lineage import ApprovalStatus
from ami_governance.models.policy import GovernancePolicy
from ami_governance.rules.approval import ApprovalDecision
from ami_governance.services import replicate, wiring
from ami_governance.services.lineage import ReplicaNotRecordedYet
from ami_governance.services.replicate import VerdictNotRecordedYet
from ami_governance.settings import SettingsError
from emulator.moto_extensions import set_image_state
from tests.integration.conftest import (
    ACCOUNT,
    HOME,
    TABLE,
    create_image_event,
    deregister_event,
    state_event,
    tags_event,
)
from tests.integration.replication_support import (
    AP,
    APPROVER_ROLE,
    CONSUMER_ACCOUNT,
    EU,
    GOOD_NAME,
    GOOD_TAGS,
    WITHDRAWN,
    P,
    Replication,
    approval_event,
    remove_approval_tag,
    replication_policy,
)
from tests.support import emitted_metric_names

pytestmark = pytest.mark.integration


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


def test_an_approval_of_an_ami_enforcement_has_not_judged_yet_is_retried_until_its_verdict_is_on_it(
    replication: Replication, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a new AMI whose creation event enforcement has not handled yet (late, retried or dead-lettered)
    source, instance = replication.estate.create_image(GOOD_NAME, GOOD_TAGS)
    capsys.readouterr()

    # When an approver approves it, the approval is not decided: the delivery fails, so that Lambda retries it
    with pytest.raises(VerdictNotRecordedYet, match=source):
        replication.approve(source)

    # Nothing answered, notified, queued or recorded for it; counted
    assert f"{P}approval" not in replication.estate.tags_of(source)
    assert replication.estate.notices() == []
    assert replication.queued() == 0
    assert replication.estate.inventory_item(source) is None
    assert "ApprovalsAwaitingVerdict" in emitted_metric_names(capsys.readouterr().out)

    # Once enforcement has judged it, the retry of that same delivery approves it
    replication.enforce(create_image_event(source, instance, name=GOOD_NAME, tags=GOOD_TAGS))
    outcome = replication.replicate(approval_event(source, APPROVER_ROLE, "approval-1"))

    assert outcome["images"][0]["result"] == "approved"
    assert sorted(outcome["images"][0]["queued"]) == [AP, EU]
    assert replication.queued() == 2


def test_an_ami_never_judged_is_judged_on_its_approval_and_the_approvals_retry_copies_it(
    replication: Replication,
) -> None:
    # Given an AMI that no event ever judged (older than the deployment, say)
    source, _ = replication.estate.create_image(GOOD_NAME, GOOD_TAGS)

    # When it is approved, replication handling the approval before enforcement does: retried
    with pytest.raises(VerdictNotRecordedYet):
        replication.approve(source)

    # Enforcement gets the same CreateTags call (its rule matches every tag change on an AMI) and judges it
    approval = approval_event(source, APPROVER_ROLE, "approval-1")
    replication.enforce(approval)
    assert replication.estate.tags_of(source)[f"{P}compliance"] == "compliant"

    # And the approval's retry copies it
    outcome = replication.replicate(approval)
    assert outcome["images"][0]["result"] == "approved"
    assert replication.queued() == 2


def test_an_approval_of_a_pending_ami_is_honoured_when_it_becomes_available(replication: Replication) -> None:
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
    # The repeats come as other envelopes of the same CloudTrail event (CloudTrail's own duplicates): no idempotency
    # record answers them, the service itself must not copy twice.
    replication.replicate(repeated(approval_event(source, APPROVER_ROLE, "approval-1"), 2))  # before any copy
    first_jobs = replication.jobs()
    replication.replicate(repeated(approval_event(source, APPROVER_ROLE, "approval-1"), 3))  # while jobs are in flight
    replication.run_copies(first_jobs)
    replication.run_copies()  # whatever the repeats queued

    assert len(replication.replicas(source, EU)) == 1
    assert len(replication.replicas(source, AP)) == 1
    # A second approval by someone else, later, finds every region replicated.
    again = replication.approve(source, event_id="approval-2")
    assert again["images"][0]["queued"] == []
    answer = replication.estate.tags_of(source)[f"{P}approval"]
    assert answer == f"approved: nothing new to copy ({AP} available, {EU} available)"


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


def test_a_decision_other_than_approved_starts_no_round(
    replication: Replication,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given rules that answer with a status replication does not act on (as a status added to them later would)
    source = replication.compliant_image()
    monkeypatch.setattr(replicate, "judge_approval", lambda *_: ApprovalDecision(ApprovalStatus.NOT_AN_APPROVAL))
    capsys.readouterr()

    # When the approval is handled
    outcome = replication.approve(source)

    # Then it is refused, logged and counted: nothing queued, nothing recorded, no answer tag
    [image] = outcome["images"]
    assert image["result"] == "refused"
    assert image["reason"] == "approval status not-an-approval is not handled by replication"
    assert replication.queued() == 0
    assert replication.estate.inventory_item(source) is None
    assert f"{P}approval" not in replication.estate.tags_of(source)
    [logged] = [r for r in caplog.records if r.getMessage() == "Approval decision not handled: nothing copied"]
    assert logged.levelname == "ERROR"
    assert "ApprovalsUnhandled" in emitted_metric_names(capsys.readouterr().out)


def test_the_replicate_lambda_without_its_copy_queue_fails_naming_the_variable(
    replication: Replication, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a replicate Lambda deployed without COPY_QUEUE_URL
    monkeypatch.delenv("COPY_QUEUE_URL")
    wiring.reset()

    # When any event reaches it (here one that would need no copy queue), it fails before acting on it
    with pytest.raises(SettingsError, match="COPY_QUEUE_URL"):
        replication.replicate(state_event("ami-0123456789abcdef0", "available"))


def test_replication_is_off_for_events_of_an_ungoverned_region(replication: Replication) -> None:
    event = state_event("ami-0123456789abcdef0", "available", region="sa-east-1")

    assert replication.replicate(event)["reason"] == "region sa-east-1 is not governed by the policy"
    wiring.reset()


def test_cascade_deregisters_the_replicas_replication_recorded(
    replication: Replication,
    policy_with: Callable[..., GovernancePolicy],
    invoke_cleanup: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
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
    source = replication.compliant_image()
    replication.approve(source)
    # The copy worker has claimed the region and not yet recorded what CopyImage answered.
    claimed = Inventory(TABLE, HOME).claim_copy(
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

    # The same CloudTrail event again, in another envelope (the service's answer, not the idempotency record's)
    again = replication.replicate(repeated(approval_event(source, APPROVER_ROLE, "approval-1"), 2))

    assert again["images"][0]["queued"] == []
    assert replication.item(source)["replicas"][EU]["state"] == "failed"


def test_an_approval_of_a_pending_ami_that_then_fails_is_dropped(replication: Replication) -> None:
    source = replication.compliant_image()
    set_image_state(ACCOUNT, HOME, source, "pending")
    replication.approve(source)
    set_image_state(ACCOUNT, HOME, source, "failed")

    outcome = replication.replicate(state_event(source, "failed"))

    assert outcome["images"][0]["result"] == "rejected"
    assert replication.item(source)["approval_status"] == "rejected"
    assert replication.queued() == 0


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


def repeated(event: dict[str, Any], delivery: int) -> dict[str, Any]:
    """The same CloudTrail event in another EventBridge envelope (its `delivery`-th)."""
    return {**event, "id": f"{event['id']}-delivery-{delivery}"}
