"""Replication end to end on the emulator: an approval through the AWS API, copy jobs through the copy queue and
its SQS event source mapping, CopyImage in the target region, the replica's state change forwarded home,
lineage, sharing and notices.

The emulator runs a policy that replicates to eu-west-1 with a KMS key there and shares replicas with one
account; the key itself is created through the emulator's KMS API, as an operator would before approving.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ami_governance.adapters.inventory import plain_item
from emulator.assembly import synthesize
from tests.e2e.conftest import (
    HOME,
    OTHER,
    PREFIX,
    REPO_ROOT,
    RunningEmulator,
    notification_inbox,
    start_emulator,
    stop_emulator,
)

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

ACCOUNT = "123456789012"
CONSUMER = "210987654321"
KEY_ALIAS = "alias/ami-replicas"
GOOD_TAGS = {"Owner": "team-payments", "Environment": "prod", "CostCenter": "CC-1234"}


@pytest.fixture(scope="module")
def replicating(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    policy = yaml.safe_load((REPO_ROOT / "governance-policy.yaml").read_text())
    policy["replication"].update(kms_keys={OTHER: KEY_ALIAS}, share_with={"accounts": [CONSUMER]})
    workdir = tmp_path_factory.mktemp("replication")
    policy_file = workdir / "policy.yaml"
    policy_file.write_text(yaml.safe_dump(policy))
    assembly = synthesize(workdir / "cdk.out", policy_file=Path(policy_file))
    running = start_emulator(
        assembly, workdir / "emulator", "--principal", f"approver=arn:aws:sts::{ACCOUNT}:assumed-role/AmiApprover/lead"
    )
    kms = running.client("kms", OTHER)
    kms.create_alias(AliasName=KEY_ALIAS, TargetKeyId=kms.create_key(Description="replicas")["KeyMetadata"]["KeyId"])
    yield running
    stop_emulator(running)


@pytest.fixture
def notices(replicating: RunningEmulator) -> Callable[[], list[dict[str, Any]]]:
    return notification_inbox(replicating)


def compliant_image(emulator: RunningEmulator, name: str) -> str:
    image_id = emulator.client("ec2").create_image(
        InstanceId=emulator.launch_instance(),
        Name=name,
        TagSpecifications=[{"ResourceType": "image", "Tags": [{"Key": k, "Value": v} for k, v in GOOD_TAGS.items()]}],
    )["ImageId"]
    emulator.drain()
    assert emulator.tags_of(image_id)[f"{PREFIX}compliance"] == "compliant"
    return str(image_id)


def approve(emulator: RunningEmulator, image_id: str, as_key: str = "approver") -> list[dict[str, Any]]:
    emulator.client("ec2", access_key=as_key).create_tags(
        Resources=[image_id], Tags=[{"Key": f"{PREFIX}approved", "Value": "true"}]
    )
    return emulator.drain()


def replicas(emulator: RunningEmulator, source: str) -> list[dict[str, Any]]:
    return list(
        emulator.client("ec2", OTHER).describe_images(
            Owners=["self"], Filters=[{"Name": "source-image-id", "Values": [source]}]
        )["Images"]
    )


def lineage(emulator: RunningEmulator, source: str) -> dict[str, Any]:
    dynamodb = emulator.client("dynamodb")
    [table] = [t for t in dynamodb.list_tables()["TableNames"] if "Inventory" in t]
    item = dynamodb.get_item(TableName=table, Key={"image_id": {"S": source}, "region": {"S": HOME}})["Item"]
    replicas: dict[str, Any] = plain_item(item)["replicas"]
    return replicas


def test_an_approved_ami_is_copied_encrypted_shared_and_announced(
    replicating: RunningEmulator, notices: Callable[[], list[dict[str, Any]]]
) -> None:
    source = compliant_image(replicating, "payments-api-al2023-2.0.0")
    notices()

    ran = approve(replicating, source)

    # The approval queued one job, the copy Lambda took it from the queue, the replica's state change came home
    assert any(r["detail_type"] == "SQS message batch" and r["outcome"] == "success" for r in ran)
    [replica] = replicas(replicating, source)
    assert replica["State"] == "available"
    tags = replicating.tags_of(replica["ImageId"], OTHER)
    assert tags[f"{PREFIX}source-image"] == f"{HOME}/{source}"
    assert tags[f"{PREFIX}approved-by"] == f"arn:aws:iam::{ACCOUNT}:role/AmiApprover"
    # Enforcement judged the replica as an AMI of its own, and kept its lineage
    assert tags[f"{PREFIX}compliance"] == "compliant"
    assert tags[f"{PREFIX}image-id"] == replica["ImageId"]
    assert f"{PREFIX}approval" not in tags
    ec2 = replicating.client("ec2", OTHER)
    snapshot = ec2.describe_snapshots(SnapshotIds=[replica["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]])
    assert snapshot["Snapshots"][0]["Encrypted"] is True
    permissions = ec2.describe_image_attribute(ImageId=replica["ImageId"], Attribute="launchPermission")
    assert {"UserId": CONSUMER} in permissions["LaunchPermissions"]
    assert lineage(replicating, source)[OTHER]["image_id"] == replica["ImageId"]
    assert lineage(replicating, source)[OTHER]["state"] == "available"
    assert replicating.tags_of(source)[f"{PREFIX}approval"] == f"approved: copying to {OTHER}"
    kinds = [n["body"]["kind"] for n in notices()]
    assert kinds == ["ami-replicated"]


def test_an_approval_by_someone_else_is_rejected_with_no_copy(
    replicating: RunningEmulator, notices: Callable[[], list[dict[str, Any]]]
) -> None:
    source = compliant_image(replicating, "payments-api-al2023-2.0.1")
    notices()

    approve(replicating, source, as_key="jdoe")

    assert replicating.tags_of(source)[f"{PREFIX}approval"].startswith("rejected: arn:aws:iam::")
    assert replicas(replicating, source) == []
    assert [n["body"]["kind"] for n in notices()] == ["ami-approval-rejected"]


def test_three_approvals_in_a_row_make_one_copy(replicating: RunningEmulator) -> None:
    source = compliant_image(replicating, "payments-api-al2023-2.0.2")
    ec2 = replicating.client("ec2", access_key="approver")

    for _ in range(3):
        ec2.create_tags(Resources=[source], Tags=[{"Key": f"{PREFIX}approved", "Value": "true"}])
    replicating.drain()

    assert len(replicas(replicating, source)) == 1


def test_a_disabled_key_fails_the_copy_which_is_notified_and_recorded(
    replicating: RunningEmulator, notices: Callable[[], list[dict[str, Any]]]
) -> None:
    kms = replicating.client("kms", OTHER)
    key_id = kms.describe_key(KeyId=KEY_ALIAS)["KeyMetadata"]["KeyId"]
    source = compliant_image(replicating, "payments-api-al2023-2.0.3")
    notices()
    kms.disable_key(KeyId=key_id)
    try:
        approve(replicating, source)
    finally:
        kms.enable_key(KeyId=key_id)

    entry = lineage(replicating, source)[OTHER]
    assert entry["state"] == "failed"
    assert "disabled" in entry["error"]
    received = notices()
    assert [n["body"]["kind"] for n in received] == ["ami-replica-failed", "ami-replicated-partially"]
    assert "disabled" in received[0]["body"]["error"]
