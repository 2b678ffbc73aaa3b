"""DescribeSnapshots on moto with emulator/moto_extensions applied behaves as the EC2 API reference documents it.

moto 5.2.5 ignores `OwnerIds` (`['self']` also lists the ~1,300 Amazon snapshots of its preloaded AMIs),
`RestorableByUserIds`, `MaxResults` and `NextToken`. The report lists its own snapshots with `OwnerIds=['self']`
and the public ones with `RestorableByUserIds=['all']`, paged.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from emulator import moto_extensions

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's
OTHER_ACCOUNT = "111122223333"

moto_extensions.apply()


@pytest.fixture
def ec2() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("ec2", region_name=REGION)


def create_snapshots(ec2: Any, count: int) -> list[str]:
    volume = ec2.create_volume(Size=8, AvailabilityZone=f"{REGION}a")["VolumeId"]
    return [str(ec2.create_snapshot(VolumeId=volume)["SnapshotId"]) for _ in range(count)]


def ids(snapshots: list[dict[str, Any]]) -> list[str]:
    return [snapshot["SnapshotId"] for snapshot in snapshots]


def share(ec2: Any, snapshot_id: str, **permission: str) -> None:
    ec2.modify_snapshot_attribute(
        SnapshotId=snapshot_id, Attribute="createVolumePermission", CreateVolumePermission={"Add": [permission]}
    )


def test_the_structured_create_volume_permission_form_shares_and_unshares(ec2):
    [snapshot] = create_snapshots(ec2, 1)

    share(ec2, snapshot, Group="all")
    share(ec2, snapshot, UserId=OTHER_ACCOUNT)
    shared = ec2.describe_snapshot_attribute(SnapshotId=snapshot, Attribute="createVolumePermission")
    ec2.modify_snapshot_attribute(
        SnapshotId=snapshot, Attribute="createVolumePermission", CreateVolumePermission={"Remove": [{"Group": "all"}]}
    )
    unshared = ec2.describe_snapshot_attribute(SnapshotId=snapshot, Attribute="createVolumePermission")

    assert sorted(shared["CreateVolumePermissions"], key=str) == [{"Group": "all"}, {"UserId": OTHER_ACCOUNT}]
    assert unshared["CreateVolumePermissions"] == [{"UserId": OTHER_ACCOUNT}]


# ---- OwnerIds --------------------------------------------------------------------------------------------------


def test_owner_self_lists_only_the_account_s_own_snapshots(ec2):
    own = create_snapshots(ec2, 3)

    listed = ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]

    assert sorted(ids(listed)) == sorted(own)
    assert {s["OwnerId"] for s in listed} == {ACCOUNT}


def test_owner_by_account_id_and_the_amazon_alias(ec2):
    own = create_snapshots(ec2, 2)

    by_account = ec2.describe_snapshots(OwnerIds=[ACCOUNT])["Snapshots"]
    amazon = ec2.describe_snapshots(OwnerIds=["amazon"])["Snapshots"]
    both = ec2.describe_snapshots(OwnerIds=["self", "amazon"])["Snapshots"]

    assert sorted(ids(by_account)) == sorted(own)
    # moto's preloaded AMIs are Amazon's, each with a snapshot of its own
    assert amazon
    assert ACCOUNT not in {s["OwnerId"] for s in amazon}
    assert len(both) == len(own) + len(amazon)


def test_another_account_owns_nothing_here(ec2):
    create_snapshots(ec2, 1)

    assert ec2.describe_snapshots(OwnerIds=[OTHER_ACCOUNT])["Snapshots"] == []


# ---- RestorableByUserIds ---------------------------------------------------------------------------------------


def test_restorable_by_all_lists_the_public_snapshots(ec2):
    public, shared, private = create_snapshots(ec2, 3)
    share(ec2, public, Group="all")
    share(ec2, shared, UserId=OTHER_ACCOUNT)

    assert ids(ec2.describe_snapshots(OwnerIds=["self"], RestorableByUserIds=["all"])["Snapshots"]) == [public]
    assert ids(ec2.describe_snapshots(RestorableByUserIds=["all"])["Snapshots"]) == [public]
    assert private not in ids(ec2.describe_snapshots(RestorableByUserIds=["all"])["Snapshots"])


def test_restorable_by_an_account_lists_the_snapshots_shared_with_it(ec2):
    public, shared, _private = create_snapshots(ec2, 3)
    share(ec2, public, Group="all")
    share(ec2, shared, UserId=OTHER_ACCOUNT)

    assert ids(ec2.describe_snapshots(RestorableByUserIds=[OTHER_ACCOUNT])["Snapshots"]) == [shared]
    both = ec2.describe_snapshots(OwnerIds=["self"], RestorableByUserIds=["all", OTHER_ACCOUNT])["Snapshots"]
    assert sorted(ids(both)) == sorted([public, shared])


def test_restorable_by_self_is_what_the_account_owns_or_was_given(ec2):
    own = create_snapshots(ec2, 2)

    assert sorted(ids(ec2.describe_snapshots(OwnerIds=["self"], RestorableByUserIds=["self"])["Snapshots"])) == sorted(
        own
    )


# ---- paging ----------------------------------------------------------------------------------------------------


def test_max_results_pages_and_the_pages_add_up(ec2):
    own = create_snapshots(ec2, 12)

    pages = list(ec2.get_paginator("describe_snapshots").paginate(OwnerIds=["self"], PaginationConfig={"PageSize": 5}))

    assert [len(p["Snapshots"]) for p in pages] == [5, 5, 2]
    assert "NextToken" not in pages[-1]
    assert sorted(i for p in pages for i in ids(p["Snapshots"])) == sorted(own)


def test_without_max_results_everything_comes_in_one_answer(ec2):
    own = create_snapshots(ec2, 12)

    answer = ec2.describe_snapshots(OwnerIds=["self"])

    assert sorted(ids(answer["Snapshots"])) == sorted(own)
    assert "NextToken" not in answer


def test_a_page_is_at_least_5_and_at_most_1000(ec2):
    create_snapshots(ec2, 3)

    with pytest.raises(ClientError, match="InvalidParameterValue"):
        ec2.describe_snapshots(OwnerIds=["self"], MaxResults=4)
    # "if MaxResults is given a value larger than 1,000, only 1,000 results are returned"
    page = ec2.describe_snapshots(OwnerIds=["amazon"], MaxResults=5000)
    assert len(page["Snapshots"]) == 1000
    assert page["NextToken"]


def test_max_results_with_snapshot_ids_is_refused(ec2):
    [snapshot] = create_snapshots(ec2, 1)

    with pytest.raises(ClientError, match="InvalidParameterCombination"):
        ec2.describe_snapshots(SnapshotIds=[snapshot], MaxResults=5)
    assert ids(ec2.describe_snapshots(SnapshotIds=[snapshot])["Snapshots"]) == [snapshot]
