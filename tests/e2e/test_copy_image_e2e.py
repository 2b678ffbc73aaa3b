"""CopyImage on the emulator: the CloudTrail record and the AMI state change AWS sends in the destination region.

The emulator runs with no stack (an empty cloud assembly) and `--pending-seconds`, so only its CloudTrail and
state-change emulation is under test; the events are read back from `GET /_governance/events`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import HOME, OTHER, RunningEmulator, start_emulator, stop_emulator

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

PENDING_SECONDS = "0.5"


@pytest.fixture(scope="module")
def bare_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    workdir = tmp_path_factory.mktemp("copy-image")
    assembly = workdir / "cdk.out"
    assembly.mkdir()
    (assembly / "manifest.json").write_text(json.dumps({"artifacts": {}}))
    running = start_emulator(assembly, workdir / "emulator", "--pending-seconds", PENDING_SECONDS)
    yield running
    stop_emulator(running)


def source_image(emulator: RunningEmulator) -> str:
    ec2 = emulator.client("ec2", HOME)
    return str(ec2.create_image(InstanceId=emulator.launch_instance(HOME), Name="payments-api-1.4.0")["ImageId"])


def state_changes(emulator: RunningEmulator, image_id: str) -> list[dict[str, Any]]:
    return [
        e["event"] for e in emulator.events()
        if e["detail_type"] == "EC2 AMI State Change" and e["event"]["detail"]["ImageId"] == image_id
    ]  # fmt: skip


def copy_calls(emulator: RunningEmulator, image_id: str) -> list[dict[str, Any]]:
    return [
        e["event"] for e in emulator.events()
        if e["event"]["detail"].get("eventName") == "CopyImage"
        and (e["event"]["detail"].get("responseElements") or {}).get("imageId") == image_id
    ]  # fmt: skip


def test_a_copy_is_pending_then_available_in_the_destination_region_and_recorded_as_cloudtrail_does(bare_emulator):
    emulator = bare_emulator
    source = source_image(emulator)
    emulator.drain()
    kms = emulator.client("kms", OTHER)
    key_arn = kms.create_key()["KeyMetadata"]["Arn"]
    ec2 = emulator.client("ec2", OTHER)

    copy = ec2.copy_image(
        SourceImageId=source, SourceRegion=HOME, Name="payments-api-1.4.0", Encrypted=True, KmsKeyId=key_arn,
        CopyImageTags=True, ClientToken=f"replicate-{source}-{OTHER}",
        TagSpecifications=[{"ResourceType": "image", "Tags": [{"Key": "ami-governance:replica-of", "Value": source}]}],
    )["ImageId"]  # fmt: skip
    pending = ec2.describe_images(ImageIds=[copy])["Images"][0]["State"]
    emulator.drain()

    assert pending == "pending"
    assert ec2.describe_images(ImageIds=[copy])["Images"][0]["State"] == "available"
    [change] = state_changes(emulator, copy)
    assert (change["region"], change["detail"]["State"], change["detail"]["ErrorMessage"]) == (OTHER, "available", "")
    [call] = copy_calls(emulator, copy)
    assert call["region"] == OTHER
    assert call["detail"]["awsRegion"] == OTHER
    assert call["detail"]["requestParameters"] == {
        "sourceRegion": HOME,
        "sourceImageId": source,
        "name": "payments-api-1.4.0",
        "encrypted": True,
        "kmsKeyId": key_arn,
        "copyImageTags": True,
        "clientToken": f"replicate-{source}-{OTHER}",
        "tagSpecificationSet": {
            "items": [{"resourceType": "image", "tags": [{"key": "ami-governance:replica-of", "value": source}]}]
        },
    }


def test_a_copy_with_a_disabled_key_fails_with_the_reason_in_its_state_change(bare_emulator):
    emulator = bare_emulator
    source = source_image(emulator)
    kms = emulator.client("kms", OTHER)
    key = kms.create_key()["KeyMetadata"]
    kms.disable_key(KeyId=key["KeyId"])
    ec2 = emulator.client("ec2", OTHER)

    copy = ec2.copy_image(
        SourceImageId=source, SourceRegion=HOME, Name="payments-api-1.4.0", Encrypted=True, KmsKeyId=key["KeyId"]
    )["ImageId"]
    # The call succeeded: AWS finds the key problem while copying, and the AMI shows pending until then
    pending = ec2.describe_images(ImageIds=[copy])["Images"][0]
    emulator.drain()

    assert (pending["State"], "StateReason" in pending) == ("pending", False)
    image = ec2.describe_images(ImageIds=[copy])["Images"][0]
    assert image["State"] == "failed"
    [change] = state_changes(emulator, copy)
    assert change["detail"]["State"] == "failed"
    assert change["detail"]["ErrorMessage"] == image["StateReason"]["Message"]
    assert f"The KMS key {key['Arn']} is disabled" in change["detail"]["ErrorMessage"]


def test_a_copy_repeated_with_its_client_token_sends_no_second_state_change(bare_emulator):
    emulator = bare_emulator
    source = source_image(emulator)
    ec2 = emulator.client("ec2", OTHER)
    request = {"SourceImageId": source, "SourceRegion": HOME, "Name": "payments-api-1.4.0", "ClientToken": source}
    copy = ec2.copy_image(**request)["ImageId"]
    emulator.drain()

    again = ec2.copy_image(**request)["ImageId"]
    state_right_after = ec2.describe_images(ImageIds=[copy])["Images"][0]["State"]
    emulator.drain()

    assert again == copy
    assert state_right_after == "available"  # not pending again: nothing new was created
    assert len(state_changes(emulator, copy)) == 1
    assert len(copy_calls(emulator, copy)) == 2  # CloudTrail records every call, the repeat included
