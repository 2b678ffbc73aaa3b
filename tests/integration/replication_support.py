"""What the replication tests share: the replicate and copy Lambdas on moto, driven as EventBridge and the copy
queue's event source mapping would, and handles to assert through.

moto's CopyImage is completed by emulator/moto_extensions.py (ClientToken, CopyImageTags, TagSpecifications,
SourceImageId and its filter, KMS): these tests rely on that, as the emulator does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from ami_governance.models.policy import GovernancePolicy
from tests.integration.conftest import ACCOUNT, HOME, Estate, create_image_event, state_event, tags_event
from tests.support import FakeLambdaContext, receive_as_sqs_event_records

P = "ami-governance:"
EU, AP = "eu-west-1", "ap-southeast-2"
APPROVER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/AmiApprover"
CONSUMER_ACCOUNT = "210987654321"
GOOD_NAME = "payments-api-al2023-1.4.0"
GOOD_TAGS = {"Owner": "team-payments", "Environment": "prod", "CostCenter": "CC-1234", "Application": "payments-api"}
COPY_QUEUE = "ami-governance-copy-jobs"
# The answer on an AMI whose approval tag is gone by the time the approval (or its copy job) is handled.
WITHDRAWN = f"withdrawn: the AMI no longer carries {P}approved=true"


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
        found = self.estate.inventory_item(image_id, region)
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


def remove_approval_tag(image_id: str) -> None:
    boto3.client("ec2", region_name=HOME).delete_tags(Resources=[image_id], Tags=[{"Key": f"{P}approved"}])


def deployed_replication(
    estate: Estate,
    monkeypatch: pytest.MonkeyPatch,
    policy_with: Callable[..., GovernancePolicy],
    invoke: Callable[[dict[str, Any]], dict[str, Any]],
) -> Replication:
    """The copy queue and the replication policy on `estate`, and the two Lambdas' handlers."""
    from ami_governance.services.copy import CopyService
    from handlers.copy import handler as copy_handler
    from handlers.replicate import handler as replicate_handler

    sqs = boto3.client("sqs", region_name=HOME)
    queue_url = sqs.create_queue(QueueName=COPY_QUEUE)["QueueUrl"]
    monkeypatch.setenv("COPY_QUEUE_URL", queue_url)
    estate.set_policy(replication_policy(policy_with))

    # The handler answers Lambda with the failed ids only; the service's result also says what each job did.
    results: list[dict[str, Any]] = []
    handle_batch = CopyService.handle_batch

    def recorded(self: CopyService, event: Any) -> dict[str, Any]:
        result = handle_batch(self, event)
        results.append(result)
        return result

    monkeypatch.setattr(CopyService, "handle_batch", recorded)

    def replicate(event: dict[str, Any]) -> dict[str, Any]:
        return replicate_handler(event, FakeLambdaContext(function_name="ami-governance-replicate"))  # type: ignore[arg-type]

    def copy(event: dict[str, Any]) -> dict[str, Any]:
        response = copy_handler(event, FakeLambdaContext(function_name="ami-governance-copy"))  # type: ignore[arg-type]
        assert set(response) == {"batchItemFailures"}
        return dict(results[-1])

    return Replication(estate, queue_url, invoke, replicate, copy)
