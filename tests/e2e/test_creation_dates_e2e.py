"""Seeding an aged estate on the emulator: `POST /_governance/creation-dates` sets what no EC2 API can."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]


def post(emulator, payload):
    request = urllib.request.Request(
        f"{emulator.endpoint}/_governance/creation-dates", data=json.dumps(payload).encode(), method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_amis_and_snapshots_are_aged_through_the_control_api(emulator):
    # Given an AMI and its snapshot made through the EC2 API
    ec2 = emulator.client("ec2")
    image_id = ec2.create_image(InstanceId=emulator.launch_instance(), Name="payments-api-al2023-1.0.0")["ImageId"]
    [mapping] = ec2.describe_images(ImageIds=[image_id])["Images"][0]["BlockDeviceMappings"]
    snapshot_id = mapping["Ebs"]["SnapshotId"]

    # When they are aged
    status, answer = post(
        emulator,
        {"region": "us-east-1", "images": {image_id: "2023-05-01T12:30:00Z"},
         "snapshots": {snapshot_id: "2023-05-01T12:31:00+00:00"}},
    )  # fmt: skip

    # Then EC2 reports the seeded times
    assert (status, answer) == (200, {"images": 1, "snapshots": 1})
    assert ec2.describe_images(ImageIds=[image_id])["Images"][0]["CreationDate"].startswith("2023-05-01T12:30:00")
    [snapshot] = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"]
    assert snapshot["StartTime"].isoformat().startswith("2023-05-01T12:31:00")
    emulator.drain()


def test_unknown_ids_and_bad_requests_are_refused(emulator):
    unknown = post(emulator, {"region": "us-east-1", "images": {"ami-0123456789abcdef0": "2023-05-01T00:00:00Z"}})
    no_region = post(emulator, {"images": {}})
    bad_time = post(emulator, {"region": "us-east-1", "snapshots": {"snap-0123456789abcdef0": "last year"}})

    assert unknown[0] == 404
    assert "ami-0123456789abcdef0" in unknown[1]["error"]
    assert no_region[0] == 400
    assert bad_time[0] == 400
