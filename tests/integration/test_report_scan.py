"""The report's scan of one (account, region) on moto with the emulator's extensions: a seeded estate in two regions
gives exactly the expected records, a failing listing is recorded and the others still filled, and each listing
costs ceil(N / page size) calls."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.ec2.models import ec2_backends

from ami_governance.adapters import scan as scan_module
from ami_governance.adapters.clients import reset_clients
from ami_governance.adapters.scan import RegionScanner
from ami_governance.models.scan import (
    AutoScalingGroupRecord,
    FleetRecord,
    ImageParameterRecord,
    ImageSnapshot,
    LaunchConfigurationRecord,
    LaunchTemplateRef,
    LaunchTemplateVersionRecord,
    Listing,
    RegionScan,
)
from emulator import moto_extensions
from emulator.moto_additions.launches import set_last_launched_time
from tests.integration.conftest import ACCOUNT, PUBLIC_AMI

HOME = "us-east-1"
OTHER = "eu-west-1"
OLD = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
LAUNCHED = datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC)
DEPRECATED_AT = datetime(2026, 6, 1, 0, 0, 0, tzinfo=UTC)

moto_extensions.apply()


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        reset_clients()
        yield
        reset_clients()


def ec2(region: str = HOME) -> Any:
    return boto3.client("ec2", region_name=region)


def image_from_new_instance(name: str, region: str = HOME) -> str:
    client = ec2(region)
    instance = client.run_instances(ImageId=PUBLIC_AMI, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    image_id = str(client.create_image(InstanceId=instance, Name=name)["ImageId"])
    client.terminate_instances(InstanceIds=[instance])
    return image_id


def snapshots_of(image_id: str, region: str = HOME) -> list[str]:
    image = ec2(region).describe_images(ImageIds=[image_id], IncludeDisabled=True)["Images"][0]
    return [m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"] if "Ebs" in m]


class Seeded:
    """What the estate holds, by role."""

    def __init__(self) -> None:
        client = ec2()
        self.disabled = image_from_new_instance("disabled")
        client.disable_image(ImageId=self.disabled)
        self.deprecated = image_from_new_instance("deprecated")
        # moto has no EnableImageDeprecation: the attribute its serializer reads as DeprecationTime is set.
        ec2_backends[ACCOUNT][HOME].amis[self.deprecated].deprecation_time = DEPRECATED_AT.isoformat()
        self.old = image_from_new_instance("old")
        moto_extensions.set_image_creation_date(ACCOUNT, HOME, self.old, OLD)

        self.by_stopped_instance = image_from_new_instance("stopped-instance")
        self.stopped = client.run_instances(ImageId=self.by_stopped_instance, MinCount=1, MaxCount=1)["Instances"][0][
            "InstanceId"
        ]
        client.stop_instances(InstanceIds=[self.stopped])
        set_last_launched_time(ACCOUNT, HOME, self.by_stopped_instance, LAUNCHED)

        # A template whose default (1) and latest (2) versions differ, each naming an AMI.
        self.by_template_default = image_from_new_instance("template-default")
        self.by_template_latest = image_from_new_instance("template-latest")
        template = client.create_launch_template(
            LaunchTemplateName="web", LaunchTemplateData={"ImageId": self.by_template_default}
        )["LaunchTemplate"]
        self.template = template["LaunchTemplateId"]
        client.create_launch_template_version(
            LaunchTemplateId=self.template, LaunchTemplateData={"ImageId": self.by_template_latest}
        )

        # A template of three versions whose group pins version 2, neither its default nor its latest.
        self.pinned = image_from_new_instance("pinned")
        pinned_template = client.create_launch_template(
            LaunchTemplateName="batch", LaunchTemplateData={"ImageId": PUBLIC_AMI}
        )["LaunchTemplate"]
        self.pinned_template = pinned_template["LaunchTemplateId"]
        for image in (self.pinned, PUBLIC_AMI):
            client.create_launch_template_version(
                LaunchTemplateId=self.pinned_template, LaunchTemplateData={"ImageId": image}
            )
        autoscaling = boto3.client("autoscaling", region_name=HOME)
        autoscaling.create_auto_scaling_group(
            AutoScalingGroupName="batch",
            LaunchTemplate={"LaunchTemplateId": self.pinned_template, "Version": "2"},
            MinSize=0,
            MaxSize=0,
            DesiredCapacity=0,
            AvailabilityZones=[f"{HOME}a"],
        )
        # A group still naming a version that no longer exists (AWS lets a version be deleted under a group).
        autoscaling.create_auto_scaling_group(
            AutoScalingGroupName="ghost",
            LaunchTemplate={"LaunchTemplateId": self.pinned_template, "Version": "9"},
            MinSize=0,
            MaxSize=0,
            AvailabilityZones=[f"{HOME}a"],
        )
        # A fleet pinning version 2 of a three-version template.
        self.by_fleet = image_from_new_instance("fleet")
        fleet_template = client.create_launch_template(
            LaunchTemplateName="fleet", LaunchTemplateData={"ImageId": PUBLIC_AMI}
        )["LaunchTemplate"]
        self.fleet_template = fleet_template["LaunchTemplateId"]
        for image in (self.by_fleet, PUBLIC_AMI):
            client.create_launch_template_version(
                LaunchTemplateId=self.fleet_template, LaunchTemplateData={"ImageId": image}
            )
        self.fleet = client.create_fleet(
            Type="maintain",
            LaunchTemplateConfigs=[
                {
                    "LaunchTemplateSpecification": {"LaunchTemplateId": self.fleet_template, "Version": "2"},
                    "Overrides": [{"InstanceType": "t3.micro"}],
                }
            ],
            TargetCapacitySpecification={"TotalTargetCapacity": 0, "DefaultTargetCapacityType": "on-demand"},
        )["FleetId"]
        # A mixed-instances group whose override launches from another template than its policy's.
        autoscaling.create_auto_scaling_group(
            AutoScalingGroupName="mixed",
            MixedInstancesPolicy={
                "LaunchTemplate": {
                    "LaunchTemplateSpecification": {"LaunchTemplateId": self.template},
                    "Overrides": [
                        {
                            "InstanceType": "t3.micro",
                            "LaunchTemplateSpecification": {"LaunchTemplateId": self.fleet_template, "Version": "2"},
                        }
                    ],
                }
            },
            MinSize=0,
            MaxSize=0,
            AvailabilityZones=[f"{HOME}a"],
        )
        self.by_launch_configuration = image_from_new_instance("launch-configuration")
        autoscaling.create_launch_configuration(
            LaunchConfigurationName="legacy", ImageId=self.by_launch_configuration, InstanceType="t3.micro"
        )

        self.by_parameter = image_from_new_instance("parameter")
        ssm = boto3.client("ssm", region_name=HOME)
        ssm.put_parameter(Name="/golden/web", Value=self.by_parameter, Type="String", DataType="aws:ec2:image")
        ssm.put_parameter(Name="/not/an/image", Value="hello", Type="String")

        volume = client.create_volume(Size=3, AvailabilityZone=f"{HOME}a")["VolumeId"]
        self.public_snapshot = client.create_snapshot(VolumeId=volume, Description="shared data")["SnapshotId"]
        client.modify_snapshot_attribute(
            SnapshotId=self.public_snapshot,
            Attribute="createVolumePermission",
            OperationType="add",
            GroupNames=["all"],
        )

        rbin = boto3.client("rbin", region_name=HOME)
        for resource_type in ("EC2_IMAGE", "EBS_SNAPSHOT"):
            rbin.create_rule(
                ResourceType=resource_type, RetentionPeriod={"RetentionPeriodValue": 7, "RetentionPeriodUnit": "DAYS"}
            )
        self.binned_image = image_from_new_instance("binned")
        # Deregistered without DeleteAssociatedSnapshots: its snapshots stay listed (a restore needs them).
        self.binned_image_snapshots = set(snapshots_of(self.binned_image))
        client.deregister_image(ImageId=self.binned_image)
        bin_volume = client.create_volume(Size=2, AvailabilityZone=f"{HOME}a")["VolumeId"]
        self.binned_snapshot = client.create_snapshot(VolumeId=bin_volume, Description="gone")["SnapshotId"]
        client.delete_snapshot(SnapshotId=self.binned_snapshot)

        # New accounts block new public sharing of AMIs by default (the emulator too); this region turns it off.
        client.disable_image_block_public_access()

        self.other_region_image = image_from_new_instance("elsewhere", OTHER)


@pytest.fixture
def seeded(aws: None) -> Seeded:
    return Seeded()


def test_a_seeded_estate_scans_into_exactly_its_records(seeded: Seeded) -> None:
    scan = RegionScanner(ACCOUNT, HOME).scan()

    assert scan.complete, scan.listing_errors
    assert (scan.account_id, scan.region) == (ACCOUNT, HOME)
    images = {image.image_id: image for image in scan.images}
    expected_images = {
        seeded.disabled, seeded.deprecated, seeded.old, seeded.by_stopped_instance, seeded.by_template_default,
        seeded.by_template_latest, seeded.pinned, seeded.by_launch_configuration, seeded.by_parameter,
        seeded.by_fleet,
    }  # fmt: skip
    # Owned AMIs only (not moto's public ones), disabled included, the binned one gone, the other region's elsewhere.
    assert set(images) == expected_images
    assert images[seeded.disabled].state == "disabled"
    assert images[seeded.deprecated].deprecation_time == DEPRECATED_AT
    assert images[seeded.old].creation_date == OLD
    assert images[seeded.by_stopped_instance].last_launched_time == LAUNCHED
    for image in images.values():
        assert image.owner_id == ACCOUNT
        assert image.creation_date is not None
        assert image.creation_date.tzinfo is not None
        assert image.snapshot_ids == tuple(snapshots_of(image.image_id))
        assert all(isinstance(s, ImageSnapshot) and s.volume_size_gib for s in image.snapshots)

    snapshots = {snapshot.snapshot_id: snapshot for snapshot in scan.snapshots}
    image_snapshots = {s for image in images.values() for s in image.snapshot_ids}
    assert image_snapshots <= set(snapshots)
    # The deleted snapshot is in the bin, not listed; the binned AMI's are kept.
    assert set(snapshots) == image_snapshots | seeded.binned_image_snapshots | {seeded.public_snapshot}
    assert {s for s, record in snapshots.items() if record.public} == {seeded.public_snapshot}
    public = snapshots[seeded.public_snapshot]
    assert (public.owner_id, public.volume_size_gib, public.description, public.storage_tier) == (
        ACCOUNT, 3, "shared data", "standard",
    )  # fmt: skip
    assert public.start_time is not None
    assert public.start_time.tzinfo is not None

    instances = {instance.instance_id: instance for instance in scan.instances}
    assert instances[seeded.stopped].image_id == seeded.by_stopped_instance
    assert instances[seeded.stopped].state == "stopped"
    # Every instance in every state: the seeding's terminated ones too.
    assert {instance.state for instance in scan.instances} == {"stopped", "terminated"}

    assert set(scan.launch_template_versions) == {
        LaunchTemplateVersionRecord(seeded.template, "web", 1, True, False, seeded.by_template_default),
        LaunchTemplateVersionRecord(seeded.template, "web", 2, False, True, seeded.by_template_latest),
        LaunchTemplateVersionRecord(seeded.pinned_template, "batch", 1, True, False, PUBLIC_AMI),
        LaunchTemplateVersionRecord(seeded.pinned_template, "batch", 3, False, True, PUBLIC_AMI),
        # Pinned by the group, fetched by number.
        LaunchTemplateVersionRecord(seeded.pinned_template, "batch", 2, False, False, seeded.pinned),
        LaunchTemplateVersionRecord(seeded.fleet_template, "fleet", 1, True, False, PUBLIC_AMI),
        LaunchTemplateVersionRecord(seeded.fleet_template, "fleet", 3, False, True, PUBLIC_AMI),
        LaunchTemplateVersionRecord(seeded.fleet_template, "fleet", 2, False, False, seeded.by_fleet),
    }
    assert len(scan.launch_template_versions) == 8  # no version twice; the ghost group's version 9 is none
    assert scan.auto_scaling_groups == (
        AutoScalingGroupRecord("batch", None, (LaunchTemplateRef(seeded.pinned_template, "batch", "2"),)),
        AutoScalingGroupRecord("ghost", None, (LaunchTemplateRef(seeded.pinned_template, "batch", "9"),)),
        AutoScalingGroupRecord(
            "mixed",
            None,
            (
                LaunchTemplateRef(seeded.template, "web", "$Default"),
                LaunchTemplateRef(seeded.fleet_template, None, "2"),
            ),
        ),
    )
    assert scan.fleets == (
        FleetRecord(seeded.fleet, "maintain", "active", (LaunchTemplateRef(seeded.fleet_template, None, "2"),)),
    )
    assert scan.launch_configurations == (LaunchConfigurationRecord("legacy", seeded.by_launch_configuration),)
    assert scan.image_parameters == (ImageParameterRecord("/golden/web", seeded.by_parameter),)

    assert [(r.image_id, r.name) for r in scan.recycle_bin_images] == [(seeded.binned_image, "binned")]
    assert [r.snapshot_id for r in scan.recycle_bin_snapshots] == [seeded.binned_snapshot]
    for binned in (*scan.recycle_bin_images, *scan.recycle_bin_snapshots):
        assert binned.enter_time is not None
        assert binned.exit_time is not None
        assert (binned.exit_time - binned.enter_time).days == 7
    assert scan.image_block_public_access == "unblocked"
    assert scan.snapshot_block_public_access == "unblocked"

    assert RegionScan.from_json(scan.to_json()) == scan


def test_each_region_is_its_own_scan(seeded: Seeded) -> None:
    other = RegionScanner(ACCOUNT, OTHER).scan()

    assert other.complete
    assert other.region == OTHER
    assert [image.image_id for image in other.images] == [seeded.other_region_image]
    assert {s.snapshot_id for s in other.snapshots} == set(snapshots_of(seeded.other_region_image, OTHER))
    assert other.launch_template_versions == ()
    assert other.image_parameters == ()
    assert other.recycle_bin_images == ()
    assert other.image_block_public_access == "block-new-sharing"


def fail(service: str, region: str, operation: str, code: str = "AccessDenied") -> None:
    """Make one operation of the scanner's clients answer an AWS error (the listing's other calls are untouched)."""
    from ami_governance.adapters.clients import client

    def refuse(**_: Any) -> None:
        from botocore.exceptions import ClientError

        raise ClientError({"Error": {"Code": code, "Message": "not for you"}}, operation)

    client(service, region, adaptive=True).meta.events.register(f"before-call.{service}.{operation}", refuse)  # type: ignore[call-overload]


@pytest.mark.parametrize(
    ("service", "operation", "listing"),
    [
        ("ec2", "DescribeImages", Listing.IMAGES),
        ("ec2", "DescribeInstances", Listing.INSTANCES),
        ("ec2", "DescribeLaunchTemplateVersions", Listing.LAUNCH_TEMPLATE_VERSIONS),
        ("ssm", "GetParameters", Listing.SSM_IMAGE_PARAMETERS),
        ("autoscaling", "DescribeAutoScalingGroups", Listing.AUTO_SCALING_GROUPS),
        ("ec2", "DescribeFleets", Listing.FLEETS),
        ("ec2", "ListSnapshotsInRecycleBin", Listing.RECYCLE_BIN_SNAPSHOTS),
        ("ec2", "GetSnapshotBlockPublicAccessState", Listing.SNAPSHOT_BLOCK_PUBLIC_ACCESS),
    ],
)
def test_a_failing_listing_is_recorded_and_the_others_still_filled(
    seeded: Seeded, service: str, operation: str, listing: Listing
) -> None:
    fail(service, HOME, operation)

    scan = RegionScanner(ACCOUNT, HOME).scan()

    assert not scan.complete
    expected = {listing.value: "AccessDenied: not for you"}
    if listing is Listing.LAUNCH_TEMPLATE_VERSIONS:
        # The versions Auto Scaling pins are fetched with the same operation: they fail too, and say so.
        expected[Listing.PINNED_LAUNCH_TEMPLATE_VERSIONS.value] = "AccessDenied: not for you"
    assert scan.listing_errors == expected
    if listing is not Listing.IMAGES:
        assert len(scan.images) == 10
    assert scan.snapshots
    assert scan.recycle_bin_images
    if listing is not Listing.SSM_IMAGE_PARAMETERS:
        assert scan.image_parameters
    assert scan.launch_configurations
    assert scan.image_block_public_access == "unblocked"


def test_a_call_that_gets_no_answer_is_recorded_too(seeded: Seeded) -> None:
    from botocore.exceptions import EndpointConnectionError

    from ami_governance.adapters.clients import client

    def unreachable(**_: Any) -> None:
        raise EndpointConnectionError(endpoint_url="https://ec2.us-east-1.amazonaws.com")

    client("ec2", HOME, adaptive=True).meta.events.register("before-call.ec2.DescribeSnapshots", unreachable)  # type: ignore[call-overload]

    scan = RegionScanner(ACCOUNT, HOME).scan()

    assert set(scan.listing_errors) == {Listing.SNAPSHOTS.value, Listing.PUBLIC_SNAPSHOTS.value}
    assert scan.listing_errors[Listing.SNAPSHOTS.value].startswith("EndpointConnectionError: ")
    assert scan.snapshots == ()
    assert len(scan.images) == 10


# ---- calls per listing -----------------------------------------------------------------------------------------


def count_calls(region: str = HOME) -> Counter[str]:
    from ami_governance.adapters.clients import client

    calls: Counter[str] = Counter()

    def counted(model: Any, **_: Any) -> None:
        calls[model.name] += 1

    for service in ("ec2", "autoscaling", "ssm"):
        client(service, region, adaptive=True).meta.events.register(f"before-call.{service}", counted)  # type: ignore[call-overload]
    return calls


SMALL_PAGES = {
    # Small pages (within each API's minimum) so that a seeded estate spans several of them.
    "IMAGES_PAGE": 5,
    "SNAPSHOTS_PAGE": 5,
    "INSTANCES_PAGE": 5,
    "LAUNCH_TEMPLATE_VERSIONS_PAGE": 3,
    "AUTO_SCALING_PAGE": 1,
    "RECYCLE_BIN_PAGE": 5,
    "IMAGE_REFERENCES_PAGE": 5,
    "INSTANCE_IMAGE_METADATA_PAGE": 5,
}


def test_each_listing_costs_one_call_per_page(seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, size in SMALL_PAGES.items():
        monkeypatch.setattr(scan_module, name, size)
    autoscaling = boto3.client("autoscaling", region_name=HOME)
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="second",
        LaunchTemplate={"LaunchTemplateId": seeded.template},
        MinSize=0,
        MaxSize=0,
        AvailabilityZones=[f"{HOME}a"],
    )
    calls = count_calls()

    scan = RegionScanner(ACCOUNT, HOME).scan()

    assert scan.complete
    public_snapshots = sum(1 for s in scan.snapshots if s.public)
    # Listed versions before de-duplication: each of the 3 templates once per alias (6).
    bulk_versions = 6
    assert dict(calls) == {
        "DescribeImages": math.ceil(len(scan.images) / 5),
        "DescribeSnapshots": math.ceil(len(scan.snapshots) / 5) + math.ceil(public_snapshots / 5),
        "DescribeInstances": math.ceil(len(scan.instances) / 5),
        # Then by number: the fleet's template in one call; the groups' template asked for 2 and 9 at once, which
        # fails on the missing 9, then each alone.
        "DescribeLaunchTemplateVersions": math.ceil(bulk_versions / 3) + 1 + 3,
        "DescribeFleets": 1,
        "DescribeAutoScalingGroups": len(scan.auto_scaling_groups),
        "DescribeLaunchConfigurations": len(scan.launch_configurations),
        "DescribeParameters": 1,
        "GetParameters": 1,
        "ListImagesInRecycleBin": 1,
        "ListSnapshotsInRecycleBin": 1,
        "GetImageBlockPublicAccessState": 1,
        "GetSnapshotBlockPublicAccessState": 1,
    }
    assert len(scan.images) > 5
    assert len(scan.snapshots) > 5
    assert len(scan.instances) > 5
    assert len(scan.auto_scaling_groups) == 4


def seed_image_parameters(count: int) -> str:
    image_id = image_from_new_instance("golden")
    ssm = boto3.client("ssm", region_name=HOME)
    for index in range(count):
        ssm.put_parameter(Name=f"/golden/{index:03}", Value=image_id, Type="String", DataType="aws:ec2:image")
    return image_id


def test_image_parameters_are_listed_50_a_page_and_read_10_a_call(aws: None) -> None:
    # AWS's own sizes: DescribeParameters MaxResults 1-50, GetParameters 1-10 names.
    image_id = seed_image_parameters(51)
    calls = count_calls()
    asked: list[Any] = []
    ssm = scan_module.client("ssm", HOME, adaptive=True)
    ssm.meta.events.register(  # type: ignore[call-overload]
        "before-parameter-build.ssm.DescribeParameters", lambda params, **_: asked.append(params.get("MaxResults"))
    )

    parameters = RegionScanner(ACCOUNT, HOME).image_parameters()

    assert len(parameters) == 51
    assert {p.image_id for p in parameters} == {image_id}
    assert calls["GetParameters"] == 6
    assert set(asked) == {50}


def test_image_parameters_listing_costs_ceil_n_over_50_calls(aws: None) -> None:
    seed_image_parameters(51)
    calls = count_calls()

    RegionScanner(ACCOUNT, HOME).image_parameters()

    assert calls["DescribeParameters"] == 2


def test_candidates_are_confirmed_ten_a_call_with_every_template_version(
    seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Twelve more versions of the pinned template: its version 2 is then deeper than AWS's default depth of 10.
    client = ec2()
    for _ in range(12):
        client.create_launch_template_version(
            LaunchTemplateId=seeded.pinned_template, LaunchTemplateData={"ImageId": PUBLIC_AMI}
        )
    unused = [image_from_new_instance(f"unused-{i}") for i in range(9)]
    candidates = [seeded.by_stopped_instance, seeded.pinned, seeded.by_parameter, seeded.deprecated, *unused]
    calls = count_calls()

    check = RegionScanner(ACCOUNT, HOME).confirm_references(candidates)

    assert calls == Counter({"DescribeImageReferences": math.ceil(len(candidates) / 10)})
    assert check.checked == tuple(candidates)
    assert check.unchecked == ()
    assert {(r.image_id, r.resource_type) for r in check.references} == {
        (seeded.by_stopped_instance, "ec2:Instance"),
        (seeded.pinned, "ec2:LaunchTemplate"),
        (seeded.by_parameter, "ssm:Parameter"),
    }
    assert not check.referenced(seeded.deprecated)


def test_a_failing_reference_batch_leaves_its_candidates_unchecked(seeded: Seeded) -> None:
    fail("ec2", HOME, "DescribeImageReferences", code="RequestLimitExceeded")

    check = RegionScanner(ACCOUNT, HOME).confirm_references([seeded.deprecated])

    assert check.checked == ()
    assert check.unchecked == (seeded.deprecated,)
    assert check.listing_errors == {Listing.IMAGE_REFERENCES.value: "RequestLimitExceeded: not for you"}


def test_instance_image_metadata_names_the_image_of_every_instance(
    seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scan_module, "INSTANCE_IMAGE_METADATA_PAGE", 5)
    calls = count_calls()

    metadata = RegionScanner(ACCOUNT, HOME).instance_image_metadata()

    assert metadata.complete
    assert len(metadata.records) > 5
    assert calls == Counter({"DescribeInstanceImageMetadata": math.ceil(len(metadata.records) / 5)})
    stopped = next(r for r in metadata.records if r.instance_id == seeded.stopped)
    assert (stopped.image_id, stopped.image_owner_id, stopped.image_name, stopped.state) == (
        seeded.by_stopped_instance, ACCOUNT, "stopped-instance", "stopped",
    )  # fmt: skip
    assert stopped.launch_time is not None


def test_at_aws_page_sizes_1001_images_and_snapshots_cost_two_calls_each(aws: None) -> None:
    client = ec2()
    volume = client.create_volume(Size=1, AvailabilityZone=f"{HOME}a")["VolumeId"]
    snapshots = [client.create_snapshot(VolumeId=volume)["SnapshotId"] for _ in range(1001)]
    for index, snapshot in enumerate(snapshots):
        client.register_image(
            Name=f"image-{index}",
            RootDeviceName="/dev/sda1",
            BlockDeviceMappings=[{"DeviceName": "/dev/sda1", "Ebs": {"SnapshotId": snapshot}}],
        )
    calls = count_calls()
    scanner = RegionScanner(ACCOUNT, HOME)

    images = scanner.images()
    listed = scanner.snapshots()

    assert (len(images), len(listed)) == (1001, 1001)
    assert calls == Counter({"DescribeImages": 2, "DescribeSnapshots": 2})
