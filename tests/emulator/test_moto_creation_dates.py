"""Ageing AMIs and snapshots on moto (emulator/moto_extensions/control.py).

moto stamps `CreationDate` and `StartTime` with the time of the call and EC2 has no API to change them, so a
test of "older than N days" (stale AMIs, orphaned snapshots past their grace period) needs these helpers; the
emulator exposes the same through `POST /_governance/creation-dates` (tests/e2e/test_creation_dates_e2e.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import boto3
import pytest
from moto import mock_aws

from emulator import moto_extensions

REGION = "us-east-1"
ACCOUNT = "123456789012"
PUBLIC_AMI = "ami-12c6146b"

moto_extensions.apply()


@pytest.fixture
def ec2() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("ec2", region_name=REGION)


def image_and_snapshot(ec2: Any) -> tuple[str, str]:
    instance_id = ec2.run_instances(ImageId=PUBLIC_AMI, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    image_id = ec2.create_image(InstanceId=instance_id, Name="app-1")["ImageId"]
    [mapping] = ec2.describe_images(ImageIds=[image_id])["Images"][0]["BlockDeviceMappings"]
    return str(image_id), str(mapping["Ebs"]["SnapshotId"])


def test_an_ami_and_a_snapshot_can_be_aged(ec2):
    image_id, snapshot_id = image_and_snapshot(ec2)
    created = datetime(2023, 5, 1, 12, 30, tzinfo=UTC)

    moto_extensions.set_image_creation_date(ACCOUNT, REGION, image_id, created)
    moto_extensions.set_snapshot_start_time(ACCOUNT, REGION, snapshot_id, created + timedelta(minutes=1))

    [image] = ec2.describe_images(ImageIds=[image_id])["Images"]
    [snapshot] = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"]
    assert image["CreationDate"].startswith("2023-05-01T12:30:00")
    assert snapshot["StartTime"] == created + timedelta(minutes=1)


def test_times_in_another_zone_are_stored_in_utc(ec2):
    image_id, _ = image_and_snapshot(ec2)

    moto_extensions.set_image_creation_date(
        ACCOUNT, REGION, image_id, datetime(2023, 5, 1, 14, 30, tzinfo=timezone(timedelta(hours=2)))
    )

    assert ec2.describe_images(ImageIds=[image_id])["Images"][0]["CreationDate"].startswith("2023-05-01T12:30:00")


def test_nothing_is_aged_when_one_id_is_unknown(ec2):
    image_id, _ = image_and_snapshot(ec2)
    before = ec2.describe_images(ImageIds=[image_id])["Images"][0]["CreationDate"]

    with pytest.raises(moto_extensions.UnknownResource, match="snap-0123456789abcdef0"):
        moto_extensions.set_creation_dates(
            ACCOUNT,
            REGION,
            images={image_id: datetime(2020, 1, 1, tzinfo=UTC)},
            snapshots={"snap-0123456789abcdef0": datetime(2020, 1, 1, tzinfo=UTC)},
        )

    assert ec2.describe_images(ImageIds=[image_id])["Images"][0]["CreationDate"] == before


def test_a_time_in_the_future_is_refused(ec2):
    image_id, _ = image_and_snapshot(ec2)

    with pytest.raises(ValueError, match=image_id):
        moto_extensions.set_image_creation_date(ACCOUNT, REGION, image_id, datetime.now(UTC) + timedelta(days=1))
