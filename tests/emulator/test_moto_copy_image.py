"""CopyImage on moto with emulator/moto_extensions.py applied behaves as the EC2 API reference documents it.

The replication Lambdas, their integration tests and the emulator all copy AMIs on moto, so what they can show
about client tokens, copied tags, encryption and failed copies is only as good as these behaviours.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from ami_governance.rules.cleanup import COPIED_FOR_DESTINATION, description_filters
from emulator import moto_extensions

SOURCE_REGION = "us-east-1"
DESTINATION = "eu-west-1"
PUBLIC_AMI = "ami-12c6146b"

moto_extensions.apply()


class Regions:
    def __init__(self) -> None:
        self.source = boto3.client("ec2", region_name=SOURCE_REGION)
        self.destination = boto3.client("ec2", region_name=DESTINATION)
        self.kms = boto3.client("kms", region_name=DESTINATION)

    def source_image(self, tags: dict[str, str] | None = None) -> str:
        instance = self.source.run_instances(ImageId=PUBLIC_AMI, MinCount=1, MaxCount=1)["Instances"][0]
        kwargs: dict[str, Any] = {"InstanceId": instance["InstanceId"], "Name": "payments-api-1.4.0"}
        if tags:
            kwargs["TagSpecifications"] = [{"ResourceType": "image", "Tags": tag_list(tags)}]
        return str(self.source.create_image(**kwargs)["ImageId"])

    def copy(self, source_image_id: str, **kwargs: Any) -> str:
        kwargs.setdefault("Name", "payments-api-1.4.0")
        return str(
            self.destination.copy_image(SourceImageId=source_image_id, SourceRegion=SOURCE_REGION, **kwargs)["ImageId"]
        )

    def image(self, image_id: str) -> dict[str, Any]:
        [image] = self.destination.describe_images(ImageIds=[image_id])["Images"]
        return dict(image)

    def snapshots_of(self, image_id: str) -> list[dict[str, Any]]:
        ids = [m["Ebs"]["SnapshotId"] for m in self.image(image_id)["BlockDeviceMappings"] if "SnapshotId" in m["Ebs"]]
        return list(self.destination.describe_snapshots(SnapshotIds=ids)["Snapshots"]) if ids else []

    def own_images(self) -> list[str]:
        return [i["ImageId"] for i in self.destination.describe_images(Owners=["self"])["Images"]]

    def own_snapshots(self) -> list[str]:
        return [s["SnapshotId"] for s in self.destination.describe_snapshots(OwnerIds=["self"])["Snapshots"]]


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def tags_of(resource: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def error_code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


@pytest.fixture
def regions() -> Iterator[Regions]:
    with mock_aws():
        yield Regions()


# ---- ClientToken -----------------------------------------------------------------------------------------------


def test_a_repeat_with_the_same_client_token_returns_the_first_copy_and_creates_nothing(regions):
    source = regions.source_image()
    first = regions.copy(source, ClientToken="replicate-1")
    images, snapshots = regions.own_images(), regions.own_snapshots()

    again = regions.copy(source, ClientToken="replicate-1")

    assert again == first
    assert regions.own_images() == images
    assert sorted(regions.own_snapshots()) == sorted(snapshots)


def test_the_same_client_token_with_other_parameters_is_a_mismatch(regions):
    source = regions.source_image()
    regions.copy(source, ClientToken="replicate-1")

    with pytest.raises(ClientError) as error:
        regions.copy(source, ClientToken="replicate-1", Name="another-name")

    assert error_code(error) == "IdempotentParameterMismatch"


def test_client_tokens_are_per_destination_region_and_another_token_copies_again(regions):
    source = regions.source_image()
    first = regions.copy(source, ClientToken="replicate-1")

    other_token = regions.copy(source, ClientToken="replicate-2")
    same_token_in_source_region = regions.source.copy_image(
        SourceImageId=source, SourceRegion=SOURCE_REGION, Name="payments-api-1.4.0", ClientToken="replicate-1"
    )["ImageId"]

    assert len({first, other_token, same_token_in_source_region}) == 3


def test_without_a_client_token_every_call_copies(regions):
    source = regions.source_image()

    assert regions.copy(source) != regions.copy(source)


# ---- tags --------------------------------------------------------------------------------------------------------


def test_copy_image_tags_copies_the_user_tags_and_tag_specifications_win(regions):
    source = regions.source_image({"Owner": "payments", "Environment": "prod"})

    copy = regions.copy(
        source,
        CopyImageTags=True,
        TagSpecifications=[
            {"ResourceType": "image", "Tags": tag_list({"Environment": "dr", "ami-governance:replica-of": source})},
            {"ResourceType": "snapshot", "Tags": tag_list({"ami-governance:image-id": "pending"})},
        ],
    )

    assert tags_of(regions.image(copy)) == {
        "Owner": "payments", "Environment": "dr", "ami-governance:replica-of": source
    }  # fmt: skip
    [snapshot] = regions.snapshots_of(copy)
    assert tags_of(snapshot) == {"ami-governance:image-id": "pending"}


def test_without_copy_image_tags_the_source_tags_stay_behind(regions):
    source = regions.source_image({"Owner": "payments"})

    copy = regions.copy(source)

    assert tags_of(regions.image(copy)) == {}


def test_a_tag_specification_for_another_resource_type_is_refused(regions):
    source = regions.source_image()

    with pytest.raises(ClientError) as error:
        regions.copy(source, TagSpecifications=[{"ResourceType": "instance", "Tags": tag_list({"a": "b"})}])

    assert error_code(error) == "InvalidParameterValue"


# ---- lineage -----------------------------------------------------------------------------------------------------


def test_the_copy_names_its_source_and_can_be_found_by_it(regions):
    source = regions.source_image()
    copy = regions.copy(source)
    regions.copy(regions.source_image())  # a copy of another AMI

    image = regions.image(copy)
    by_source = regions.destination.describe_images(Filters=[{"Name": "source-image-id", "Values": [source]}])
    by_region = regions.destination.describe_images(
        Owners=["self"], Filters=[{"Name": "source-image-region", "Values": [SOURCE_REGION]}]
    )

    assert (image["SourceImageId"], image["SourceImageRegion"]) == (source, SOURCE_REGION)
    assert [i["ImageId"] for i in by_source["Images"]] == [copy]
    assert len(by_region["Images"]) == 2
    assert "SourceImageId" not in regions.source.describe_images(ImageIds=[source])["Images"][0]


def test_the_copys_snapshot_is_described_as_aws_describes_it(regions):
    source = regions.source_image()
    [mapping] = regions.source.describe_images(ImageIds=[source])["Images"][0]["BlockDeviceMappings"]
    source_snapshot = mapping["Ebs"]["SnapshotId"]

    copy = regions.copy(source)

    [snapshot] = regions.snapshots_of(copy)
    assert re.fullmatch(
        rf"Copied for DestinationAmi {copy} from SourceAmi {source} for SourceSnapshot {source_snapshot}\. "
        r"Task created on \d{13}\.",
        snapshot["Description"],
    )
    match = COPIED_FOR_DESTINATION.match(snapshot["Description"])
    assert match is not None
    assert match.groups() == (copy, source, source_snapshot)
    # The clean-up's DescribeSnapshots description filter finds it
    found = regions.destination.describe_snapshots(
        OwnerIds=["self"], Filters=[{"Name": "description", "Values": description_filters(copy)}]
    )["Snapshots"]
    assert [s["SnapshotId"] for s in found] == [snapshot["SnapshotId"]]
    assert snapshot["Encrypted"] is False


def test_every_snapshot_of_a_registered_source_is_copied_and_in_use_by_the_copy(regions):
    volume = regions.source.create_volume(Size=8, AvailabilityZone=f"{SOURCE_REGION}a")["VolumeId"]
    root = regions.source.create_snapshot(VolumeId=volume)["SnapshotId"]
    data = regions.source.create_snapshot(VolumeId=volume)["SnapshotId"]
    source = regions.source.register_image(
        Name="registered",
        RootDeviceName="/dev/xvda",
        BlockDeviceMappings=[
            {"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": root}},
            {"DeviceName": "/dev/xvdb", "Ebs": {"SnapshotId": data}},
        ],
    )["ImageId"]

    copy = regions.copy(source)

    mappings = regions.image(copy)["BlockDeviceMappings"]
    assert [m["DeviceName"] for m in mappings] == ["/dev/xvda", "/dev/xvdb"]
    described = {s["SnapshotId"]: COPIED_FOR_DESTINATION.match(s["Description"]) for s in regions.snapshots_of(copy)}
    assert [described[m["Ebs"]["SnapshotId"]].groups() for m in mappings] == [
        (copy, source, root),
        (copy, source, data),
    ]
    with pytest.raises(ClientError) as error:
        regions.destination.delete_snapshot(SnapshotId=mappings[1]["Ebs"]["SnapshotId"])
    assert error_code(error) == "InvalidSnapshot.InUse"


# ---- encryption --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reference", ["key id", "key arn", "alias name", "alias arn"])
def test_the_kms_key_is_resolved_in_the_destination_region_in_any_form(regions, reference):
    key = regions.kms.create_key()["KeyMetadata"]
    regions.kms.create_alias(AliasName="alias/replicas", TargetKeyId=key["KeyId"])
    key_ref = {
        "key id": key["KeyId"],
        "key arn": key["Arn"],
        "alias name": "alias/replicas",
        "alias arn": f"arn:aws:kms:{DESTINATION}:{key['AWSAccountId']}:alias/replicas",
    }[reference]

    copy = regions.copy(regions.source_image(), Encrypted=True, KmsKeyId=key_ref)

    image = regions.image(copy)
    [snapshot] = regions.snapshots_of(copy)
    assert image["State"] == "available"
    assert "StateReason" not in image
    assert (snapshot["Encrypted"], snapshot["KmsKeyId"]) == (True, key["Arn"])
    assert image["BlockDeviceMappings"][0]["Ebs"]["Encrypted"] is True


def test_encrypted_without_a_key_uses_the_regions_default_ebs_key(regions):
    copy = regions.copy(regions.source_image(), Encrypted=True)

    [snapshot] = regions.snapshots_of(copy)
    default_key = regions.kms.describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]["Arn"]
    assert (snapshot["Encrypted"], snapshot["KmsKeyId"]) == (True, default_key)


def test_a_disabled_key_fails_the_copy_after_the_call_succeeded(regions):
    key = regions.kms.create_key()["KeyMetadata"]
    regions.kms.disable_key(KeyId=key["KeyId"])

    copy = regions.copy(regions.source_image(), Encrypted=True, KmsKeyId=key["KeyId"])

    image = regions.image(copy)
    assert image["State"] == "failed"
    assert image["StateReason"]["Code"] == "Client.InvalidKMSKey.InvalidState"
    assert image["StateReason"]["Message"].endswith(f"The KMS key {key['Arn']} is disabled")
    assert regions.snapshots_of(copy) == []
    assert moto_extensions.image_state("123456789012", DESTINATION, copy) == ("failed", image["StateReason"]["Message"])


@pytest.mark.parametrize(
    "key_ref",
    ["alias/no-such-key", "0b9e2f7c-0000-4000-8000-000000000000", "arn:aws:kms:us-east-1:123456789012:alias/replicas"],
)
def test_a_key_the_destination_region_does_not_have_fails_the_copy(regions, key_ref):
    # The last one exists, but in the source region: a copy can only use a key of its destination region
    boto3.client("kms", region_name=SOURCE_REGION).create_alias(
        AliasName="alias/replicas",
        TargetKeyId=boto3.client("kms", region_name=SOURCE_REGION).create_key()["KeyMetadata"]["KeyId"],
    )

    copy = regions.copy(regions.source_image(), Encrypted=True, KmsKeyId=key_ref)

    image = regions.image(copy)
    assert image["State"] == "failed"
    assert image["StateReason"] == {
        "Code": "Client.InvalidKMSKey.NotFound",
        "Message": f"Client.InvalidKMSKey.NotFound: The KMS key {key_ref} does not exist in {DESTINATION}",
    }


@pytest.mark.parametrize("encrypted", [None, False])
def test_a_kms_key_without_encrypted_true_is_refused(regions, encrypted):
    key = regions.kms.create_key()["KeyMetadata"]
    kwargs: dict[str, Any] = {"KmsKeyId": key["KeyId"]}
    if encrypted is not None:
        kwargs["Encrypted"] = encrypted

    with pytest.raises(ClientError) as error:
        regions.copy(regions.source_image(), **kwargs)

    assert error_code(error) == "InvalidParameterCombination"
    assert regions.own_images() == []


def test_an_unknown_source_keeps_motos_error_and_records_no_token(regions):
    with pytest.raises(ClientError) as error:
        regions.copy("ami-0123456789abcdef0", ClientToken="replicate-1")

    assert error_code(error) == "InvalidAMIID.NotFound"
    # The failed call did not consume the token
    assert regions.copy(regions.source_image(), ClientToken="replicate-1").startswith("ami-")
