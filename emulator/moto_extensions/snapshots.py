"""Snapshot behaviours moto 5.2.5 lacks or gets wrong.

moto lets a snapshot be deleted while an AMI uses it; its ModifySnapshotAttribute silently ignores the structured
`CreateVolumePermission={"Add"|"Remove": [...]}` form (only `OperationType` with `UserIds`/`GroupNames` works);
and its DescribeSnapshots ignores `OwnerIds`, `RestorableByUserIds`, `MaxResults` and `NextToken`:
`OwnerIds=['self']` lists the ~1,300 Amazon snapshots of moto's preloaded AMIs with the account's own, and nothing
is ever paged.
"""

from __future__ import annotations

from typing import Any, cast

from moto.core.responses import ActionResult, EmptyResult
from moto.ec2.exceptions import InvalidSnapshotIdError, InvalidSnapshotInUse
from moto.ec2.models.elastic_block_store import EBSBackend, Snapshot
from moto.ec2.responses.elastic_block_store import ElasticBlockStore

from emulator.moto_extensions.images import image_snapshot_ids
from emulator.moto_extensions.paging import page, page_size, refuse_with_ids

# DescribeSnapshots' MaxResults: "This value can be between 5 and 1,000; if this value is larger than 1,000, only
# 1,000 results are returned. ... You cannot specify this parameter and the snapshot IDs parameter in the same
# request." (the EC2 model's doc until 2023, e.g. the AWS SDK for .NET's DescribeSnapshotsRequest; today's doc
# only says "see Pagination").
SNAPSHOTS_PAGE_MIN = 5
SNAPSHOTS_PAGE_MAX = 1000


def apply() -> None:
    _snapshot_in_use_by_any_ami()
    _create_volume_permission_form()
    _describe_snapshots_scopes_and_pages()


def _snapshot_in_use_by_any_ami() -> None:
    def delete_snapshot(self: EBSBackend, snapshot_id: str) -> Any:
        if snapshot_id not in self.snapshots:
            raise InvalidSnapshotIdError()
        # EC2 refuses while any AMI (disabled and deprecated ones included) references the snapshot.
        for image in self.amis.values():  # type: ignore[attr-defined]
            if snapshot_id in image_snapshot_ids(image):
                raise InvalidSnapshotInUse(snapshot_id, image.id)
        return self.snapshots.pop(snapshot_id)

    EBSBackend.delete_snapshot = delete_snapshot  # type: ignore[method-assign]


def _create_volume_permission_form() -> None:
    """ModifySnapshotAttribute's `CreateVolumePermission` ({"Add": [{"Group": "all"} | {"UserId": ...}], "Remove":
    [...]}) shares or unshares, as its `OperationType` form does (botocore's model has both)."""
    original = ElasticBlockStore.modify_snapshot_attribute

    def modify_snapshot_attribute(self: ElasticBlockStore) -> Any:
        permission = self._get_param("CreateVolumePermission", {})
        if not permission:
            return original(self)
        snapshot_id = self._get_param("SnapshotId")
        self.error_on_dryrun()
        backend = self.ec2_backend
        changes = {"Add": backend.add_create_volume_permission, "Remove": backend.remove_create_volume_permission}
        for operation, change in changes.items():
            entries = permission.get(operation, [])
            user_ids = [entry["UserId"] for entry in entries if entry.get("UserId")]
            groups = [entry["Group"] for entry in entries if entry.get("Group")]
            if user_ids or groups:
                change(snapshot_id, user_ids=user_ids, groups=groups)  # moto's checks (unknown snapshot, group)
        return EmptyResult()

    ElasticBlockStore.modify_snapshot_attribute = modify_snapshot_attribute  # type: ignore[method-assign]


def _describe_snapshots_scopes_and_pages() -> None:
    """DescribeSnapshots as the EC2 API reference documents it:

    - `OwnerIds`: "only snapshots from the specified owners ... account IDs of the specified owners, `amazon` for
      snapshots owned by Amazon, or `self` for snapshots that you own".
    - `RestorableByUserIds`: "only snapshots with create snapshot permissions for those users ... account IDs (if
      you own the snapshots), `self` for snapshots for which you own or have explicit permissions, or `all` for
      public snapshots". Both lists narrow the result together; the values of one list add up.
    - `MaxResults` (5–1,000, more is 1,000) and `NextToken` page the result; not with `SnapshotIds`.
    """
    original = ElasticBlockStore.describe_snapshots

    def describe_snapshots(self: ElasticBlockStore) -> ActionResult:
        token = self._get_param("NextToken")
        requested = self._get_int_param("MaxResults")
        refuse_with_ids(self._get_param("SnapshotIds", []), requested, "snapshotSet")
        size = page_size(requested, SNAPSHOTS_PAGE_MIN, SNAPSHOTS_PAGE_MAX, above_maximum="cap", paging=bool(token))
        snapshots: list[Snapshot] = cast(dict[str, list[Snapshot]], original(self).result)["Snapshots"]
        owners = self._get_param("OwnerIds", [])
        if owners:
            snapshots = _owned_by(self.ec2_backend, snapshots, owners)
        restorable_by = self._get_param("RestorableByUserIds", [])
        if restorable_by:
            snapshots = [s for s in snapshots if _restorable_by(self.ec2_backend.account_id, s, restorable_by)]
        if size is None:
            return ActionResult({"Snapshots": snapshots})
        chosen, next_token = page(snapshots, lambda snapshot: (snapshot.id,), size, token)
        return ActionResult({"Snapshots": chosen, "NextToken": next_token})

    ElasticBlockStore.describe_snapshots = describe_snapshots  # type: ignore[method-assign]


def _owned_by(backend: Any, snapshots: list[Snapshot], owners: list[str]) -> list[Snapshot]:
    accounts = {backend.account_id if owner == "self" else owner for owner in owners if owner != "amazon"}
    if "amazon" in owners:
        # moto's preloaded AMIs are Amazon's (alias `amazon`), and so are the snapshots it made for them.
        accounts |= {image.owner_id for image in backend.amis.values() if image.owner_alias == "amazon"}
    return [snapshot for snapshot in snapshots if snapshot.owner_id in accounts]


def _restorable_by(account: str, snapshot: Snapshot, users: list[str]) -> bool:
    own = snapshot.owner_id == account
    for user in users:
        if user == "all" and "all" in snapshot.create_volume_permission_groups:
            return True
        if user == "self" and (own or account in snapshot.create_volume_permission_userids):
            return True
        if user not in ("all", "self") and own and user in snapshot.create_volume_permission_userids:
            return True
    return False
