"""A seeded estate for the report, with the findings it must give — and the ones other tools wrongly give.

Two regions of one account on moto (with the emulator's extensions). Every AMI carries the policy's required tags
and a compliant verdict unless the case is about compliance, so each finding below has exactly one cause:

home (us-east-1)
- web-al2023-1.0.0 … 1.0.4, one family (application web, os al2023), aged 50 … 10 days. Retention keeps the newest
  three: 1.0.0 is stale; 1.0.1 is older than the newest three but a launch template's version uses it (not stale).
- api-al2023-2.0.0: 200 days old, last launched 150 days ago, referenced by nothing: unused.
- ssm-al2023-1.0.0, lc-al2023-1.0.0, stopped-al2023-1.0.0: as old and never launched, each referenced by only one
  thing (an SSM image parameter, a launch configuration, a stopped instance): not unused (Custodian's false
  positives).
- disabled-al2023-1.0.0: disabled; its snapshot is not orphaned (the other tools' false positive).
- binned-al2023-1.0.0: deregistered into the AMI Recycle Bin: its snapshot is not orphaned (a restore needs it).
- gone-al2023-1.0.0: deregistered for good: its CreateImage snapshot is orphaned.
- kept-al2023-1.0.0: deregistered, its snapshot protected: not a finding.
- shared-al2023-1.0.0: live, its snapshot shared with another account: not orphaned.
- pub-al2023-1.0.0: public: exposure (and the region's image block public access is now off: exposure).
- Bad_Name: no naming, no tags: non-compliant.
- an instance running a community AMI (owner: a publisher the policy does not trust): untrusted source. (The AMIs'
  builder instances ran an Amazon AMI and are terminated: neither counts.)
other (eu-west-1)
- a copy of web-al2023-1.0.4, deregistered: its CopyImage snapshot is orphaned (the other tools miss it).
Both regions' snapshot block public access is "unblocked" (AWS's default): exposure in each (resource: the region).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from ami_governance.models.findings import FindingKind
from ami_governance.models.policy import GovernancePolicy
from emulator.moto_additions.launches import set_last_launched_time
from emulator.moto_extensions import set_creation_dates
from tests.integration.conftest import ACCOUNT, PUBLIC_AMI

HOME, OTHER = "us-east-1", "eu-west-1"
REQUIRED_TAGS = {"Owner": "platform", "Environment": "prod", "CostCenter": "CC-1234"}
SHARED_WITH = "111122223333"
# One of moto's built-in AMIs from a publisher outside the policy's trusted owners (Canonical's account, no alias).
COMMUNITY_AMI = "ami-1e749f67"
BIN_TAG = "recycle"


def ec2(region: str = HOME) -> Any:
    return boto3.client("ec2", region_name=region)


@dataclass
class SeededEstate:
    now: datetime
    images: dict[str, str] = field(default_factory=dict)  # name -> AMI id (home unless noted)
    snapshots: dict[str, str] = field(default_factory=dict)  # name of the AMI it was made for -> snapshot id
    community_instance: str = ""
    expected: set[tuple[FindingKind, str, str]] = field(default_factory=set)  # (kind, region, resource id)


def _tags(tags: dict[str, str]) -> list[Any]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def _image(
    estate: SeededEstate, policy: GovernancePolicy, name: str, *, region: str = HOME, tags: bool = True,
    extra_tags: dict[str, str] | None = None,
) -> str:  # fmt: skip
    client = ec2(region)
    instance = client.run_instances(ImageId=PUBLIC_AMI, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    kwargs: dict[str, Any] = {"InstanceId": instance, "Name": name}
    if tags:
        kwargs["TagSpecifications"] = [
            {"ResourceType": "image", "Tags": _tags({**REQUIRED_TAGS, **(extra_tags or {})})}
        ]
    image_id = str(client.create_image(**kwargs)["ImageId"])
    if tags:
        # Judged as enforcement leaves an AMI: its verdict, and its own id (so the verdict is not an inherited one).
        verdict = {policy.tag_key("compliance"): "compliant", policy.tag_key("image-id"): image_id}
        client.create_tags(Resources=[image_id], Tags=_tags(verdict))
    # The builder instance is gone, as in a pipeline; only the AMI stays.
    client.terminate_instances(InstanceIds=[instance])
    snapshot = client.describe_images(ImageIds=[image_id])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    estate.images[name] = image_id
    estate.snapshots[name] = str(snapshot)
    return image_id


def _age(estate: SeededEstate, name: str, days: int, region: str = HOME) -> None:
    when = estate.now - timedelta(days=days)
    set_creation_dates(ACCOUNT, region, images={estate.images[name]: when}, snapshots={estate.snapshots[name]: when})


def seed(policy: GovernancePolicy, now: datetime | None = None) -> SeededEstate:
    estate = SeededEstate(now=now or datetime.now(UTC))
    home = ec2(HOME)
    old = 200

    for n, days in enumerate((50, 40, 30, 20, 10)):
        _image(estate, policy, f"web-al2023-1.0.{n}")
        _age(estate, f"web-al2023-1.0.{n}", days)
    home.create_launch_template(
        LaunchTemplateName="web", LaunchTemplateData={"ImageId": estate.images["web-al2023-1.0.1"]}
    )
    estate.expected.add((FindingKind.STALE, HOME, estate.images["web-al2023-1.0.0"]))

    _image(estate, policy, "api-al2023-2.0.0")
    _age(estate, "api-al2023-2.0.0", old)
    set_last_launched_time(ACCOUNT, HOME, estate.images["api-al2023-2.0.0"], estate.now - timedelta(days=150))
    estate.expected.add((FindingKind.UNUSED, HOME, estate.images["api-al2023-2.0.0"]))

    for name in ("ssm-al2023-1.0.0", "lc-al2023-1.0.0", "stopped-al2023-1.0.0"):
        _image(estate, policy, name)
        _age(estate, name, old)
    boto3.client("ssm", region_name=HOME).put_parameter(
        Name="/images/ssm", Value=estate.images["ssm-al2023-1.0.0"], Type="String", DataType="aws:ec2:image"
    )
    boto3.client("autoscaling", region_name=HOME).create_launch_configuration(
        LaunchConfigurationName="legacy", ImageId=estate.images["lc-al2023-1.0.0"], InstanceType="t3.micro"
    )
    stopped = home.run_instances(ImageId=estate.images["stopped-al2023-1.0.0"], MinCount=1, MaxCount=1)
    home.stop_instances(InstanceIds=[stopped["Instances"][0]["InstanceId"]])

    _image(estate, policy, "disabled-al2023-1.0.0")
    home.disable_image(ImageId=estate.images["disabled-al2023-1.0.0"])

    boto3.client("rbin", region_name=HOME).create_rule(
        ResourceType="EC2_IMAGE",
        RetentionPeriod={"RetentionPeriodValue": 7, "RetentionPeriodUnit": "DAYS"},
        ResourceTags=[{"ResourceTagKey": BIN_TAG, "ResourceTagValue": "yes"}],
    )
    _image(estate, policy, "binned-al2023-1.0.0", extra_tags={BIN_TAG: "yes"})
    home.deregister_image(ImageId=estate.images["binned-al2023-1.0.0"])

    _image(estate, policy, "gone-al2023-1.0.0")
    home.deregister_image(ImageId=estate.images["gone-al2023-1.0.0"])
    estate.expected.add((FindingKind.ORPHANED_SNAPSHOT, HOME, estate.snapshots["gone-al2023-1.0.0"]))

    _image(estate, policy, "kept-al2023-1.0.0")
    home.create_tags(
        Resources=[estate.snapshots["kept-al2023-1.0.0"]], Tags=[{"Key": policy.protection_tag_key, "Value": "true"}]
    )
    home.deregister_image(ImageId=estate.images["kept-al2023-1.0.0"])

    _image(estate, policy, "shared-al2023-1.0.0")
    home.modify_snapshot_attribute(
        SnapshotId=estate.snapshots["shared-al2023-1.0.0"],
        Attribute="createVolumePermission",
        OperationType="add",
        UserIds=[SHARED_WITH],
    )

    _image(estate, policy, "pub-al2023-1.0.0")
    home.disable_image_block_public_access()
    home.modify_image_attribute(ImageId=estate.images["pub-al2023-1.0.0"], LaunchPermission={"Add": [{"Group": "all"}]})
    estate.expected.add((FindingKind.EXPOSURE, HOME, estate.images["pub-al2023-1.0.0"]))
    estate.expected.add((FindingKind.EXPOSURE, HOME, HOME))  # image block public access now off
    estate.expected |= {(FindingKind.EXPOSURE, region, region) for region in (HOME, OTHER)}  # snapshot BPA off

    _image(estate, policy, "Bad_Name", tags=False)
    estate.expected.add((FindingKind.NON_COMPLIANT, HOME, estate.images["Bad_Name"]))

    community = home.run_instances(ImageId=COMMUNITY_AMI, MinCount=1, MaxCount=1)
    estate.community_instance = str(community["Instances"][0]["InstanceId"])
    estate.expected.add((FindingKind.UNTRUSTED_SOURCE, HOME, estate.community_instance))

    copied = ec2(OTHER).copy_image(
        Name="web-al2023-1.0.4", SourceImageId=estate.images["web-al2023-1.0.4"], SourceRegion=HOME
    )["ImageId"]
    copied_snapshot = ec2(OTHER).describe_images(ImageIds=[copied])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]
    estate.images["copy:web-al2023-1.0.4"] = str(copied)
    estate.snapshots["copy:web-al2023-1.0.4"] = str(copied_snapshot["SnapshotId"])
    ec2(OTHER).deregister_image(ImageId=copied)
    estate.expected.add((FindingKind.ORPHANED_SNAPSHOT, OTHER, estate.snapshots["copy:web-al2023-1.0.4"]))
    return estate
