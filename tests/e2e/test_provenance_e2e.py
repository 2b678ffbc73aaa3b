"""Provenance on the emulator: a CopyImage repeated with its ClientToken by another caller gets the same AMI (as
EC2 does, per account and region), and its CloudTrail record does not rewrite who made the copy."""

from __future__ import annotations

import time

import pytest

from tests.e2e.conftest import HOME, OTHER, PREFIX

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

ENGINEER_SESSION = "arn:aws:sts::123456789012:assumed-role/PlatformEngineer/jdoe"
# A call Image Builder makes on its own behalf: exempt by the policy's `exemptions.invoked_by`.
BUILDER = (
    "arn:aws:sts::123456789012:assumed-role/AWSServiceRoleForImageBuilder/build-1 invoked-by:imagebuilder.amazonaws.com"
)


def test_a_copy_repeated_by_image_builder_with_the_same_client_token_stays_the_engineers(emulator, inbox):
    emulator.control("POST", "principals", {"imagebuilder": BUILDER})
    ec2_home = emulator.client("ec2", HOME)
    source = ec2_home.create_image(InstanceId=emulator.launch_instance(HOME), Name="scratch source")["ImageId"]
    emulator.drain()
    token = f"copy-scratch-{time.monotonic_ns()}"
    request = {"SourceImageId": source, "SourceRegion": HOME, "Name": "scratch copy", "ClientToken": token,
               "CopyImageTags": True}  # fmt: skip

    # Given a copy the engineer (access key jdoe) made, judged non-compliant and announced
    copy_id = emulator.client("ec2", OTHER, "jdoe").copy_image(**request)["ImageId"]
    emulator.drain()
    first = emulator.tags_of(copy_id, OTHER)
    assert first[f"{PREFIX}compliance"] == "non-compliant"
    assert first[f"{PREFIX}created-by-session"] == ENGINEER_SESSION
    inbox()

    # When Image Builder repeats the call with the same ClientToken: the same AMI, a second CloudTrail record
    again = emulator.client("ec2", OTHER, "imagebuilder").copy_image(**request)["ImageId"]
    ran = emulator.drain()

    # Then the copy keeps the engineer as its creator, and its verdict: Image Builder's exemption does not apply
    assert again == copy_id
    [judged] = [
        image for i in ran if i["outcome"] == "success" and i["result"] and "Enforce" in i["target"]
        for image in i["result"].get("images", []) if image["image_id"] == copy_id
    ]  # fmt: skip
    assert judged["tags_written"] == []
    tags = emulator.tags_of(copy_id, OTHER)
    for key in ("created-by", "created-by-session", "created-at", "created-by-event", "source-image", "compliance"):
        assert tags[f"{PREFIX}{key}"] == first[f"{PREFIX}{key}"]
    assert f"{PREFIX}invoked-by" not in tags
    assert f"{PREFIX}exemption" not in tags
    assert inbox() == []
