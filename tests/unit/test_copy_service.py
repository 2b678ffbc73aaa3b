"""The copy worker against in-memory adapters: its claim on a region's copy decides who calls CopyImage.

The inventory is tests/fakes.py's FakeInventory, whose conditions are those of the DynamoDB adapter (both run the
contract tests in tests/integration/test_inventory_operations.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError, EndpointConnectionError

from ami_governance.models.image import ImageFacts
from ami_governance.models.jobs import CopyJob, CopyRequest
from ami_governance.models.lineage import ApprovalRecord, RoundPlan
from ami_governance.models.policy import GovernancePolicy, load_policy_file, parse_policy
from ami_governance.services.copy import CopyService
from tests.conftest import POLICY_FILE
from tests.fakes import FakeInventory

HOME, EU = "us-east-1", "eu-west-1"
ACCOUNT = "123456789012"
SOURCE, REPLICA = "ami-0aaaaaaaaaaaaaaa1", "ami-0bbbbbbbbbbbbbbb1"
APPROVER = f"arn:aws:iam::{ACCOUNT}:role/AmiApprover"
NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
QUEUE_ARN = f"arn:aws:sqs:{HOME}:{ACCOUNT}:copy-jobs"


def replication_policy() -> GovernancePolicy:
    document = load_policy_file(POLICY_FILE).model_dump(mode="json")
    document["governed_regions"] = [HOME, EU]
    document["approval"] = {"approvers": ["arn:aws:iam::*:role/AmiApprover"]}
    document["replication"] = {"regions": [EU]}
    return parse_policy(document)


class FakeImages:
    """One region's EC2: the source AMI, carrying its approval, and the copies made."""

    def __init__(self, images: dict[str, ImageFacts]) -> None:
        self.images = images
        self.copies: list[CopyRequest] = []
        self.refuse_copies_with: str | None = None

    def describe_image(self, image_id: str) -> ImageFacts | None:
        return self.images.get(image_id)

    def describe_images(self, image_ids: list[str]) -> dict[str, ImageFacts | None]:
        return {image_id: self.images.get(image_id) for image_id in image_ids}

    def create_tags(self, resource_ids: list[str], tags: dict[str, str]) -> None:
        pass

    def copy_image(self, request: CopyRequest) -> str:
        if self.refuse_copies_with:
            raise ClientError({"Error": {"Code": self.refuse_copies_with, "Message": "later"}}, "CopyImage")
        self.copies.append(request)
        return REPLICA

    def find_copies(self, source_image_id: str, source_region: str) -> list[ImageFacts]:
        return []

    def share_image(self, image_id: str, sharing: Any) -> bool:
        return False


class World:
    def __init__(self) -> None:
        self.policy = replication_policy()
        source = ImageFacts(SOURCE, HOME, ACCOUNT, "payments-api-al2023-1.4.0", "available",
                            tags={self.policy.approval_tag_key: self.policy.approval.value})  # fmt: skip
        self.regions = {HOME: FakeImages({SOURCE: source}), EU: FakeImages({})}
        self.inventory = FakeInventory()
        self.deferred: list[tuple[str, int]] = []
        self.queue_unreachable = False
        self.counted: list[str] = []
        # Given a round that queued the copy into eu-west-1 (generation 0)
        approval = ApprovalRecord("approved", APPROVER, "2030-01-01T11:59:00Z", "approval-1", ACCOUNT, source.name)
        self.inventory.prepare_round(SOURCE, HOME)
        assert self.inventory.queue_round(SOURCE, HOME, RoundPlan(approval, [EU], {EU: 0}, {}))

    def service(self) -> CopyService:
        return CopyService(
            policy=self.policy,
            account_id=ACCOUNT,
            count=lambda name, **_: self.counted.append(name),
            images_in=self.regions.__getitem__,
            inventory=self.inventory,
            notifier=self,
            queue_for=lambda _arn: self,
            now=lambda: NOW,
        )

    def deliver(self, message_id: str) -> dict[str, Any]:
        job = CopyJob(source_image_id=SOURCE, source_region=HOME, target_region=EU,
                      name="payments-api-al2023-1.4.0", approved_by=APPROVER, approval_event_id="approval-1",
                      generation=0)  # fmt: skip
        record = {"messageId": message_id, "receiptHandle": f"receipt-{message_id}", "body": job.model_dump_json(),
                  "attributes": {"ApproximateReceiveCount": "1"}, "eventSourceARN": QUEUE_ARN}  # fmt: skip
        return self.service().handle_batch({"Records": [record]})

    def entry(self) -> dict[str, Any]:
        return dict(self.inventory.get(SOURCE, HOME)["replicas"][EU])  # type: ignore[index]

    # The notifier and the copy queue, as the service sees them.
    def publish(self, notice: Any) -> str:
        return "message-id"

    def defer(self, receipt_handle: str, seconds: int) -> None:
        if self.queue_unreachable:
            raise EndpointConnectionError(endpoint_url="https://sqs.us-east-1.amazonaws.com/")
        self.deferred.append((receipt_handle, seconds))


def test_a_queued_job_claims_its_region_copies_once_and_records_the_replica() -> None:
    world = World()

    result = world.deliver("message-1")

    [outcome] = result["outcomes"]
    assert (outcome["result"], outcome["replica_id"]) == ("copying", REPLICA)
    assert result["batchItemFailures"] == []
    assert len(world.regions[EU].copies) == 1
    entry = world.entry()
    assert (entry["state"], entry["owner"], entry["image_id"]) == ("copying", "message-1", REPLICA)
    assert world.inventory.get(REPLICA, EU)["replica_of"] == f"{HOME}/{SOURCE}"  # type: ignore[index]


def test_a_second_claim_of_the_same_region_and_generation_is_refused_and_the_job_waits() -> None:
    # Given another delivery of the same job that claimed the copy and has not recorded a replica yet
    world = World()
    assert world.inventory.claim_copy(SOURCE, HOME, EU, 0, "message-1", "2030-01-01T11:59:30Z", "2030-01-01T12:03:30Z")

    # When this delivery handles the job within that claim's lease
    result = world.deliver("message-2")

    # Then its claim is refused: no CopyImage, the job is hidden for its backoff and reported for redelivery
    [outcome] = result["outcomes"]
    assert (outcome["result"], outcome["reason"]) == ("retry", "another worker holds this copy")
    assert result["batchItemFailures"] == [{"itemIdentifier": "message-2"}]
    assert world.regions[EU].copies == []
    assert world.deferred == [("receipt-message-2", 60)]
    assert world.entry()["owner"] == "message-1"


def test_a_claim_whose_lease_ran_out_is_taken_over_and_the_copy_made() -> None:
    # Given a delivery that claimed the copy and died before CopyImage answered (its lease is over)
    world = World()
    assert world.inventory.claim_copy(SOURCE, HOME, EU, 0, "message-1", "2030-01-01T11:50:00Z", "2030-01-01T11:54:00Z")

    result = world.deliver("message-2")

    assert result["outcomes"][0]["result"] == "copying"
    assert len(world.regions[EU].copies) == 1
    assert world.entry()["owner"] == "message-2"


def test_a_copy_ec2_says_must_wait_gives_its_claim_back() -> None:
    world = World()
    world.regions[EU].refuse_copies_with = "ResourceLimitExceeded"

    result = world.deliver("message-1")

    assert result["outcomes"][0]["reason"] == "ResourceLimitExceeded"
    assert world.entry()["state"] == "queued"  # released: the redelivered job can claim it again
    world.regions[EU].refuse_copies_with = None
    assert world.deliver("message-1")["outcomes"][0]["result"] == "copying"


def test_a_job_that_must_wait_is_still_reported_for_redelivery_when_sqs_does_not_answer_the_delay() -> None:
    # Given a copy EC2 says must wait, and an SQS endpoint that does not answer ChangeMessageVisibility
    world = World()
    world.regions[EU].refuse_copies_with = "ResourceLimitExceeded"
    world.queue_unreachable = True

    # When the job is handled
    result = world.deliver("message-1")

    # Then the batch goes on: the job is reported failed, so SQS redelivers it after its visibility timeout
    assert result["outcomes"][0]["result"] == "retry"
    assert result["batchItemFailures"] == [{"itemIdentifier": "message-1"}]
    assert world.deferred == []
