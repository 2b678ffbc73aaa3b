"""Property: whatever the estate, clean-up never deletes a snapshot that a remaining AMI uses (disabled ones
included) or that carries the protection tag."""

from __future__ import annotations

import json

import boto3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from ami_governance.services import wiring
from tests.integration.conftest import INVENTORY_TABLE, deregister_event
from tests.support import FakeLambdaContext, create_home_resources

PROTECTION = "ami-governance:protected"

estates = st.integers(min_value=1, max_value=8).flatmap(
    lambda snapshots: st.tuples(
        st.just(snapshots),
        # each AMI: the snapshots it uses, whether it is disabled
        st.lists(
            st.tuples(st.sets(st.integers(0, snapshots - 1), min_size=1, max_size=snapshots), st.booleans()),
            min_size=1,
            max_size=5,
        ),
        st.sets(st.integers(0, snapshots - 1)),  # protected snapshots
        st.data(),
    )
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(estate=estates)
def test_cleanup_never_deletes_a_used_or_protected_snapshot(default_policy, monkeypatch, estate):
    count, images, protected, data = estate
    document = default_policy.model_dump(mode="json")
    document["cleanup"]["dry_run"] = False
    document["cleanup"]["max_snapshots_per_event"] = 1000
    with mock_aws():
        wiring.reset()
        resources = create_home_resources(json.dumps(document))
        monkeypatch.setenv("NOTIFICATION_TOPIC_ARN", resources.topic_arn)
        ec2 = boto3.client("ec2", region_name="us-east-1")
        snapshot_ids = []
        for index in range(count):
            volume = ec2.create_volume(Size=1, AvailabilityZone="us-east-1a")["VolumeId"]
            tags = (
                [{"ResourceType": "snapshot", "Tags": [{"Key": PROTECTION, "Value": "x"}]}]
                if index in protected
                else []
            )
            snapshot_ids.append(ec2.create_snapshot(VolumeId=volume, TagSpecifications=tags)["SnapshotId"])
        image_ids = []
        for uses, disabled in images:
            mappings = [{"DeviceName": f"/dev/sd{chr(97 + i)}", "Ebs": {"SnapshotId": snapshot_ids[s]}}
                        for i, s in enumerate(sorted(uses))]  # fmt: skip
            image_id = ec2.register_image(Name=f"image-{len(image_ids)}", RootDeviceName="/dev/sda",
                                          BlockDeviceMappings=mappings)["ImageId"]  # fmt: skip
            if disabled:
                ec2.disable_image(ImageId=image_id)
            image_ids.append(image_id)
        # the AMI to deregister, recorded in the inventory with its snapshots (as `available` records it)
        victim = data.draw(st.integers(0, len(images) - 1))
        victim_snapshots = [snapshot_ids[s] for s in sorted(images[victim][0])]
        boto3.client("dynamodb", region_name="us-east-1").put_item(
            TableName=INVENTORY_TABLE,
            Item={"image_id": {"S": image_ids[victim]}, "region": {"S": "us-east-1"},
                  "snapshot_ids": {"L": [{"S": s} for s in victim_snapshots]}},
        )  # fmt: skip
        ec2.deregister_image(ImageId=image_ids[victim])
        from handlers.cleanup import handler

        handler(deregister_event(image_ids[victim]), FakeLambdaContext())

        remaining = [ids for i, (ids, _) in enumerate(images) if i != victim]
        still_used = {snapshot_ids[s] for ids in remaining for s in ids}
        protected_ids = {snapshot_ids[s] for s in protected}
        existing = {
            s["SnapshotId"]
            for s in ec2.describe_snapshots(Filters=[{"Name": "snapshot-id", "Values": snapshot_ids}])["Snapshots"]
        }
        deleted = set(snapshot_ids) - existing
        assert not deleted & still_used
        assert not deleted & protected_ids
        # and what was safe to delete was deleted
        assert deleted == set(victim_snapshots) - still_used - protected_ids
        wiring.reset()
