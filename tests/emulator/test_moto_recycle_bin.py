"""The Recycle Bin on moto with the emulator's extensions: the `rbin` service's retention rules, and the AMIs and
snapshots they keep after DeregisterImage and DeleteSnapshot, as the rbin and EC2 API references document them.

moto 5.2.5 has no Recycle Bin: every rbin call answers 404 "Not yet implemented", deleted AMIs and snapshots are
gone for good, and ListImagesInRecycleBin, ListSnapshotsInRecycleBin and both restores are NotImplementedError.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from emulator import moto_extensions
from emulator.assembly import StackArtifact
from emulator.deployer import StackDeployer
from emulator.functions import FunctionRegistry
from emulator.moto_additions import recycle_bin

REGION = "us-east-1"
ACCOUNT = "123456789012"
PUBLIC_AMI = "ami-12c6146b"
IN_BIN = ("aws:recycle-bin:resource-in-bin", "true")

moto_extensions.apply()


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


def clients(region: str = REGION) -> tuple[Any, Any]:
    return boto3.client("ec2", region_name=region), boto3.client("rbin", region_name=region)


def rule(rbin: Any, resource_type: str, days: int, **kwargs: Any) -> dict[str, Any]:
    period = {"RetentionPeriodValue": days, "RetentionPeriodUnit": "DAYS"}
    return dict(rbin.create_rule(ResourceType=resource_type, RetentionPeriod=period, **kwargs))


def snapshot(ec2: Any, tags: dict[str, str] | None = None) -> str:
    volume = ec2.create_volume(Size=8, AvailabilityZone=f"{REGION}a")["VolumeId"]
    snapshot_id = str(ec2.create_snapshot(VolumeId=volume, Description="data")["SnapshotId"])
    if tags:
        ec2.create_tags(Resources=[snapshot_id], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    return snapshot_id


def register(ec2: Any, name: str, snapshot_id: str) -> str:
    mappings = [{"DeviceName": "/dev/sda", "Ebs": {"SnapshotId": snapshot_id}}]
    return str(ec2.register_image(Name=name, RootDeviceName="/dev/sda", BlockDeviceMappings=mappings)["ImageId"])


def tags_of(ec2: Any, resource_id: str) -> set[tuple[str, str]]:
    return {
        (t["Key"], t["Value"])
        for t in ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [resource_id]}])["Tags"]
    }


def described_snapshots(ec2: Any, snapshot_id: str) -> list[Any]:
    return list(ec2.describe_snapshots(Filters=[{"Name": "snapshot-id", "Values": [snapshot_id]}])["Snapshots"])


# ---- rbin rules ---------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("aws")
def test_a_rule_is_created_read_listed_and_deleted() -> None:
    _, rbin = clients()
    tag = [{"ResourceTagKey": "ami-governance:cleanup", "ResourceTagValue": "deleting"}]

    created = rule(rbin, "EBS_SNAPSHOT", 7, ResourceTags=tag, Description="cleanup")

    identifier = created["Identifier"]
    assert created["RuleArn"] == f"arn:aws:rbin:{REGION}:{ACCOUNT}:rule/{identifier}"
    assert created["Status"] == "available"
    read = rbin.get_rule(Identifier=identifier)
    assert (read["ResourceType"], read["ResourceTags"], read["Description"]) == ("EBS_SNAPSHOT", tag, "cleanup")
    assert read["RetentionPeriod"] == {"RetentionPeriodValue": 7, "RetentionPeriodUnit": "DAYS"}
    assert [r["Identifier"] for r in rbin.list_rules(ResourceType="EBS_SNAPSHOT")["Rules"]] == [identifier]
    assert rbin.list_rules(ResourceType="EC2_IMAGE")["Rules"] == []
    # rules are regional
    assert clients("eu-west-1")[1].list_rules(ResourceType="EBS_SNAPSHOT")["Rules"] == []

    rbin.delete_rule(Identifier=identifier)

    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        rbin.get_rule(Identifier=identifier)


@pytest.mark.usefixtures("aws")
def test_rules_page_and_bad_rules_are_refused() -> None:
    _, rbin = clients()
    created = {rule(rbin, "EC2_IMAGE", days)["Identifier"] for days in (1, 2, 3)}

    pages = rbin.get_paginator("list_rules").paginate(ResourceType="EC2_IMAGE", PaginationConfig={"PageSize": 2})
    assert [len(page["Rules"]) for page in pages] == [2, 1]
    assert {r["Identifier"] for r in rbin.list_rules(ResourceType="EC2_IMAGE")["Rules"]} == created
    # "You can't specify exclusion tags for tag-level retention rules."
    with pytest.raises(ClientError, match="ValidationException"):
        rule(
            rbin, "EC2_IMAGE", 1,
            ResourceTags=[{"ResourceTagKey": "a", "ResourceTagValue": "b"}],
            ExcludeResourceTags=[{"ResourceTagKey": "c", "ResourceTagValue": "d"}],
        )  # fmt: skip
    with pytest.raises(ClientError, match="ValidationException"):
        rule(rbin, "EC2_IMAGE", 3651)


# ---- what the rules keep ------------------------------------------------------------------------------------


@pytest.mark.usefixtures("aws")
def test_a_deregistered_ami_matching_a_rule_waits_in_the_bin_and_can_be_restored() -> None:
    # Given a Region-level AMI rule of 10 days and another of 3, and an AMI
    ec2, rbin = clients()
    rule(rbin, "EC2_IMAGE", 3)
    rule(rbin, "EC2_IMAGE", 10)
    image_id = register(ec2, "kept", snapshot(ec2))

    # When the AMI is deregistered
    ec2.deregister_image(ImageId=image_id)

    # Then it is no AMI of the account any more, but in the bin for the longest retention
    assert ec2.describe_images(Owners=["self"])["Images"] == []
    [binned] = ec2.list_images_in_recycle_bin()["Images"]
    assert (binned["ImageId"], binned["Name"]) == (image_id, "kept")
    assert binned["RecycleBinExitTime"] - binned["RecycleBinEnterTime"] == timedelta(days=10)
    assert IN_BIN in tags_of(ec2, image_id)

    # And once restored, it is an AMI again, without the bin's tag
    assert ec2.restore_image_from_recycle_bin(ImageId=image_id)["Return"] is True
    assert [i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]] == [image_id]
    assert ec2.list_images_in_recycle_bin()["Images"] == []
    assert IN_BIN not in tags_of(ec2, image_id)


@pytest.mark.usefixtures("aws")
def test_without_a_matching_rule_a_deleted_snapshot_is_gone() -> None:
    # Given a tag-level snapshot rule, a tagged and an untagged snapshot
    ec2, rbin = clients()
    rule(rbin, "EBS_SNAPSHOT", 7, ResourceTags=[{"ResourceTagKey": "cleanup", "ResourceTagValue": "deleting"}])
    tagged, untagged = snapshot(ec2, {"cleanup": "deleting"}), snapshot(ec2)

    # When both are deleted
    ec2.delete_snapshot(SnapshotId=tagged)
    ec2.delete_snapshot(SnapshotId=untagged)

    # Then only the tagged one is in the bin, and neither is a snapshot of the account
    [binned] = ec2.list_snapshots_in_recycle_bin()["Snapshots"]
    assert (binned["SnapshotId"], binned["Description"]) == (tagged, "data")
    assert binned["VolumeId"].startswith("vol-")
    assert described_snapshots(ec2, tagged) == described_snapshots(ec2, untagged) == []
    with pytest.raises(ClientError, match=r"InvalidSnapshot\.NotFound"):
        ec2.restore_snapshot_from_recycle_bin(SnapshotId=untagged)

    # And the tagged one can be restored
    restored = ec2.restore_snapshot_from_recycle_bin(SnapshotId=tagged)
    assert (restored["SnapshotId"], restored["VolumeSize"], restored["State"]) == (tagged, 8, "completed")
    assert [s["SnapshotId"] for s in described_snapshots(ec2, tagged)] == [tagged]


@pytest.mark.usefixtures("aws")
def test_an_exclusion_tag_keeps_a_snapshot_out_of_a_region_level_rule() -> None:
    ec2, rbin = clients()
    rule(rbin, "EBS_SNAPSHOT", 7, ExcludeResourceTags=[{"ResourceTagKey": "scratch", "ResourceTagValue": "yes"}])
    kept, excluded = snapshot(ec2), snapshot(ec2, {"scratch": "yes"})

    ec2.delete_snapshot(SnapshotId=kept)
    ec2.delete_snapshot(SnapshotId=excluded)

    assert [s["SnapshotId"] for s in ec2.list_snapshots_in_recycle_bin()["Snapshots"]] == [kept]


@pytest.mark.usefixtures("aws")
def test_snapshots_deleted_with_their_ami_go_to_the_bin_too() -> None:
    # Given AMI and snapshot rules, and an AMI whose snapshot nothing else uses
    ec2, rbin = clients()
    rule(rbin, "EC2_IMAGE", 7)
    rule(rbin, "EBS_SNAPSHOT", 7)
    snapshot_id = snapshot(ec2)
    image_id = register(ec2, "both", snapshot_id)

    # When it is deregistered with its snapshots
    response = ec2.deregister_image(ImageId=image_id, DeleteAssociatedSnapshots=True)

    # Then the AMI and its snapshot are both in their bins
    assert response["DeleteSnapshotResults"] == [{"SnapshotId": snapshot_id, "ReturnCode": "success"}]
    assert [i["ImageId"] for i in ec2.list_images_in_recycle_bin()["Images"]] == [image_id]
    assert [s["SnapshotId"] for s in ec2.list_snapshots_in_recycle_bin()["Snapshots"]] == [snapshot_id]


@pytest.mark.usefixtures("aws")
def test_after_its_retention_a_resource_leaves_the_bin_for_good(monkeypatch: pytest.MonkeyPatch) -> None:
    ec2, rbin = clients()
    rule(rbin, "EBS_SNAPSHOT", 1)
    snapshot_id = snapshot(ec2)
    ec2.delete_snapshot(SnapshotId=snapshot_id)
    [binned] = ec2.list_snapshots_in_recycle_bin()["Snapshots"]

    # When the exit time has passed
    later = binned["RecycleBinExitTime"] + timedelta(seconds=1)
    monkeypatch.setattr(recycle_bin, "now", lambda: later)

    # Then it is no longer in the bin and cannot be restored
    assert ec2.list_snapshots_in_recycle_bin()["Snapshots"] == []
    with pytest.raises(ClientError, match=r"InvalidSnapshot\.NotFound"):
        ec2.restore_snapshot_from_recycle_bin(SnapshotId=snapshot_id)


@pytest.mark.usefixtures("aws")
def test_bin_listings_page_and_check_their_limits() -> None:
    ec2, rbin = clients()
    rule(rbin, "EBS_SNAPSHOT", 7)
    deleted = set()
    for _ in range(6):
        snapshot_id = snapshot(ec2)
        ec2.delete_snapshot(SnapshotId=snapshot_id)
        deleted.add(snapshot_id)

    pages = ec2.get_paginator("list_snapshots_in_recycle_bin").paginate(PaginationConfig={"PageSize": 5})
    assert [len(page["Snapshots"]) for page in pages] == [5, 1]
    picked = sorted(deleted)[:2]
    assert sorted(s["SnapshotId"] for s in ec2.list_snapshots_in_recycle_bin(SnapshotIds=picked)["Snapshots"]) == picked
    with pytest.raises(ClientError, match="InvalidParameterValue"):
        ec2.list_images_in_recycle_bin(ImageIds=[f"ami-{i:017x}" for i in range(21)])


# ---- through moto's server, as the emulator serves it ----------------------------------------------------------


@pytest.fixture
def endpoint() -> Iterator[str]:
    """moto's server application, the one the emulator puts behind its endpoint."""
    server = make_server(
        "127.0.0.1", 0, DomainDispatcherApplication(create_backend_app), threaded=True,
        request_handler=MotoRequestHandler,
    )  # fmt: skip
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_emulator_deploys_a_recycle_bin_rule_and_serves_rbin(endpoint: str, tmp_path: Path) -> None:
    # Given the rule the stacks synthesize for cleaned-up snapshots (stacks/constructs/deleted_snapshot_recycle_bin.py)
    template = {"Resources": {"Rule": {"Type": "AWS::Rbin::Rule", "Properties": {
        "ResourceType": "EBS_SNAPSHOT",
        "RetentionPeriod": {"RetentionPeriodValue": 7, "RetentionPeriodUnit": "DAYS"},
        "ResourceTags": [{"ResourceTagKey": "ami-governance:cleanup", "ResourceTagValue": "deleting"}],
        "Description": "AMI governance: EBS snapshots deleted by cleanup",
    }}}}  # fmt: skip
    region = "eu-central-1"
    registry = FunctionRegistry(endpoint, tmp_path / "logs", lambda spec: "key")

    # When the deployer deploys it into the emulator's endpoint
    deployed = StackDeployer(endpoint, ACCOUNT, registry).deploy(StackArtifact("Home", region, template, assets={}))

    # Then the rule exists in that region, through the rbin API on the same endpoint, and is not skipped
    assert deployed.skipped == {}
    rbin = boto3.client("rbin", region_name=region, endpoint_url=endpoint)
    [listed] = rbin.list_rules(ResourceType="EBS_SNAPSHOT")["Rules"]
    assert listed["Identifier"] == deployed.resources["Rule"].ref
    assert (
        rbin.get_rule(Identifier=listed["Identifier"])["ResourceTags"]
        == template["Resources"]["Rule"]["Properties"]["ResourceTags"]
    )
    rbin.delete_rule(Identifier=listed["Identifier"])
