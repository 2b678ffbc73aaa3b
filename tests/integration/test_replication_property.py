"""Property: whatever the order of deliveries (approvals repeated, copy jobs delivered twice or deferred by EC2's
copy cap, replica state changes at any point), replication ends with exactly one replica per target region, the
one its source's lineage records."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import boto3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from ami_governance.adapters.inventory import Inventory
from ami_governance.models.policy import GovernancePolicy
from ami_governance.services import wiring
from tests.integration.conftest import ACCOUNT, HOME, INVENTORY_TABLE, create_image_event, state_event, tags_event
from tests.support import FakeLambdaContext, create_home_resources, fail_lambda_calls, receive_as_sqs_event_records

P = "ami-governance:"
TARGETS = ("eu-west-1", "ap-southeast-2")
NAME = "payments-api-al2023-1.4.0"
GOOD_TAGS = {"Owner": "team-payments", "Environment": "prod", "CostCenter": "CC-1234", "Application": "payments-api"}
QUEUE = "copy-jobs"

actions = st.lists(
    st.one_of(
        st.tuples(st.just("approve"), st.sampled_from(["approval-1", "approval-2"])),
        st.tuples(st.just("copy"), st.booleans()),  # deliver one job; True: SQS deletes it, False: delivered again
        st.tuples(st.just("copy-limit"), st.sampled_from(TARGETS)),  # EC2 refuses the next copy there, once
        st.tuples(st.just("settle"), st.sampled_from(TARGETS)),  # the replica's `available` state change arrives
        st.tuples(st.just("time-passes"), st.just("")),  # deferred and in-flight jobs become visible again
    ),
    min_size=1,
    max_size=12,
)


class World:
    """One approved-to-be AMI on moto, and the deliveries Lambda and SQS would make."""

    def __init__(self) -> None:
        from handlers.copy import handler as copy
        from handlers.enforce import handler as enforce
        from handlers.replicate import handler as replicate

        self.copy, self.replicate = copy, replicate
        self.sqs = boto3.client("sqs", region_name=HOME)
        self.queue_url = self.sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
        ec2 = boto3.client("ec2", region_name=HOME)
        instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
        tags = [{"Key": k, "Value": v} for k, v in GOOD_TAGS.items()]
        self.source = ec2.create_image(
            InstanceId=instance, Name=NAME, TagSpecifications=[{"ResourceType": "image", "Tags": tags}]
        )["ImageId"]
        enforce(create_image_event(self.source, instance, name=NAME, tags=GOOD_TAGS), FakeLambdaContext())
        ec2.create_tags(Resources=[self.source], Tags=[{"Key": f"{P}approved", "Value": "true"}])

    def approve(self, event_id: str) -> None:
        event = tags_event("create_tags_approval", [self.source], {f"{P}approved": "true"})
        event["detail"]["eventID"] = event_id
        issuer = event["detail"]["userIdentity"]["sessionContext"]["sessionIssuer"]
        issuer["arn"] = f"arn:aws:iam::{ACCOUNT}:role/AmiApprover"
        self.replicate(event, FakeLambdaContext())

    def copy_one(self, delete: bool) -> bool:
        records = receive_as_sqs_event_records(self.sqs, self.queue_url)[:1]
        if not records:
            return False
        [record] = records
        failed = {
            f["itemIdentifier"] for f in self.copy({"Records": records}, FakeLambdaContext())["batchItemFailures"]
        }
        if delete and record["messageId"] not in failed:
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=record["receiptHandle"])
        elif not delete:
            self.sqs.change_message_visibility(
                QueueUrl=self.queue_url, ReceiptHandle=record["receiptHandle"], VisibilityTimeout=0
            )
        return True

    def settle(self, region: str) -> None:
        for replica in self.copies(region):
            # An early state change raises for Lambda to retry it; `settle` again is that retry.
            with contextlib.suppress(RuntimeError):
                self.replicate(state_event(replica, "available", region=region), FakeLambdaContext())

    @staticmethod
    def time_passes() -> None:
        from moto.sqs.models import sqs_backends

        for message in sqs_backends[ACCOUNT][HOME].queues[QUEUE]._messages:
            message.change_visibility(0)

    def copies(self, region: str) -> list[str]:
        images = boto3.client("ec2", region_name=region).describe_images(
            Owners=["self"], Filters=[{"Name": "source-image-id", "Values": [self.source]}]
        )["Images"]
        return [image["ImageId"] for image in images]

    def play(self, action: str, argument: Any) -> None:
        if action == "approve":
            self.approve(argument)
        elif action == "copy":
            self.copy_one(argument)
        elif action == "copy-limit":
            fail_lambda_calls("ec2", argument, "CopyImage", "ResourceLimitExceeded")
        elif action == "settle":
            self.settle(argument)
        else:
            self.time_passes()

    def finish(self) -> None:
        """Everything still queued is delivered (and deleted), and every replica reports `available`."""
        self.approve("approval-final")
        for _ in range(30):
            self.time_passes()
            if not self.copy_one(True):
                break
        for region in TARGETS:
            self.settle(region)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=actions)
def test_replication_makes_exactly_one_recorded_replica_per_region(default_policy, monkeypatch, steps):
    document = json.loads(default_policy.model_dump_json())
    document["governed_regions"] = [HOME, *TARGETS]
    document["approval"] = {"approvers": ["arn:aws:iam::*:role/AmiApprover"]}
    document["replication"] = {"regions": list(TARGETS)}
    policy = GovernancePolicy.model_validate(document)
    with mock_aws():
        wiring.reset()
        resources = create_home_resources(policy.model_dump_json())
        monkeypatch.setenv("NOTIFICATION_TOPIC_ARN", resources.topic_arn)
        queue_url = boto3.client("sqs", region_name=HOME).create_queue(QueueName=QUEUE)["QueueUrl"]
        monkeypatch.setenv("COPY_QUEUE_URL", queue_url)
        world = World()

        for action, argument in steps:
            world.play(action, argument)
        world.finish()

        item = Inventory(INVENTORY_TABLE, HOME).get(world.source, HOME) or {}
        for region in TARGETS:
            copies = world.copies(region)
            assert len(copies) == 1, f"{region}: {copies} after {steps}"
            entry = item["replicas"][region]
            assert (entry["image_id"], entry["state"]) == (copies[0], "available")
        wiring.reset()
