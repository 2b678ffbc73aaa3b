"""The EC2 side of the Recycle Bin: deleted AMIs and snapshots that a retention rule (rbin_service) keeps.

moto 5.2.5 has no Recycle Bin: DeregisterImage and DeleteSnapshot delete for good, and ListImagesInRecycleBin,
ListSnapshotsInRecycleBin and the two restores are NotImplementedError. As the EC2 API reference and the Recycle Bin
user guide describe it:
- DeregisterImage: "If a deregistered EBS-backed AMI matches a Recycle Bin retention rule, it moves to the Recycle
  Bin for the specified retention period ... If the deregistered AMI doesn't match a retention rule, it is
  permanently deleted immediately." DeleteSnapshot likewise, and so do the snapshots DeregisterImage deletes with
  `DeleteAssociatedSnapshots` (they are deleted snapshots like any other).
- "If a resource matches more than one retention rule upon deletion, then the retention rule with the longest
  retention period takes precedence"; "When a resource is sent to the Recycle Bin, the following system-generate
  tag is assigned to the resource: aws:recycle-bin:resource-in-bin = true ... When the resource is restored ... the
  tag is automatically removed" (Considerations for Recycle Bin).
- A resource in the bin is no longer an AMI or snapshot of the account (DescribeImages/DescribeSnapshots leave it
  out); it is listed with RecycleBinEnterTime and RecycleBinExitTime, and after the exit time it is gone.
- ListImagesInRecycleBin: up to 20 `ImageIds`, `MaxResults` 1-1000; ListSnapshotsInRecycleBin: `MaxResults` 5-1000.
The emulator restores at once (AWS shows a restored snapshot `recovering` for a while) and does not check that an
AMI's snapshots were restored before the AMI.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.exceptions import InvalidAMIIdError, InvalidSnapshotIdError
from moto.ec2.models.amis import Ami, AmiBackend
from moto.ec2.models.elastic_block_store import EBSBackend, Snapshot
from moto.ec2.responses.amis import AmisResponse
from moto.ec2.responses.elastic_block_store import ElasticBlockStore

from emulator.moto_additions import rbin_service
from emulator.moto_additions._common import check_max_results, invalid_parameter, now, page

IN_BIN_TAG = "aws:recycle-bin:resource-in-bin"
MAX_LISTED_IMAGE_IDS = 20


@dataclass
class Binned:
    resource: Any  # the moto Ami or Snapshot, kept as it was deleted
    enter_time: datetime
    exit_time: datetime


def apply() -> None:
    _retain_deregistered_images()
    _retain_deleted_snapshots()
    _retain_snapshots_deleted_with_their_image()
    AmisResponse.list_images_in_recycle_bin = _list_images  # type: ignore[attr-defined]
    AmisResponse.restore_image_from_recycle_bin = _restore_image  # type: ignore[attr-defined]
    ElasticBlockStore.list_snapshots_in_recycle_bin = _list_snapshots  # type: ignore[attr-defined]
    ElasticBlockStore.restore_snapshot_from_recycle_bin = _restore_snapshot  # type: ignore[attr-defined]


def images_bin(backend: Any) -> dict[str, Binned]:
    # Held on the EC2 backend, so a backend reset empties the bin with everything else.
    return _expired_removed(backend, backend.__dict__.setdefault("recycle_bin_images", {}))


def snapshots_bin(backend: Any) -> dict[str, Binned]:
    return _expired_removed(backend, backend.__dict__.setdefault("recycle_bin_snapshots", {}))


def _expired_removed(backend: Any, binned: dict[str, Binned]) -> dict[str, Binned]:
    moment = now()
    for resource_id in [r for r, entry in binned.items() if entry.exit_time <= moment]:
        del binned[resource_id]
        backend.tags.pop(resource_id, None)
    return binned


def _retention_days(backend: Any, resource_type: str, tags: dict[str, str]) -> int | None:
    days = [
        rule.retention_days
        for rule in rbin_service.rules_of(backend.account_id, backend.region_name)
        if rule.retains(resource_type, tags)
    ]
    return max(days) if days else None


def _put_in_bin(backend: Any, binned: dict[str, Binned], resource: Any, days: int) -> None:
    entered = now()
    binned[resource.id] = Binned(resource, entered, entered + timedelta(days=days))
    backend.tags[resource.id][IN_BIN_TAG] = "true"


def _ebs_backed(image: Ami) -> bool:
    return any((mapping.get("Ebs") or {}).get("SnapshotId") for mapping in image.block_device_mappings)


def _retain_deregistered_images() -> None:
    original = AmiBackend.deregister_image

    def deregister_image(self: Any, ami_id: str) -> None:
        image = self.amis.get(ami_id)
        tags = dict(self.tags.get(ami_id, {}))
        original(self, ami_id)
        if image is not None and _ebs_backed(image):
            days = _retention_days(self, "EC2_IMAGE", tags)
            if days is not None:
                _put_in_bin(self, images_bin(self), image, days)

    AmiBackend.deregister_image = deregister_image  # type: ignore[method-assign]


def _retain_deleted_snapshots() -> None:
    original = EBSBackend.delete_snapshot

    def delete_snapshot(self: Any, snapshot_id: str) -> Snapshot:
        tags = dict(self.tags.get(snapshot_id, {}))
        snapshot = original(self, snapshot_id)
        _retain_snapshot(self, snapshot, tags)
        return snapshot

    EBSBackend.delete_snapshot = delete_snapshot  # type: ignore[method-assign]


def _retain_snapshot(backend: Any, snapshot: Snapshot, tags: dict[str, str]) -> None:
    days = _retention_days(backend, "EBS_SNAPSHOT", tags)
    if days is not None:
        _put_in_bin(backend, snapshots_bin(backend), snapshot, days)


def _retain_snapshots_deleted_with_their_image() -> None:
    """DeregisterImage(DeleteAssociatedSnapshots=True) removes the snapshots itself (emulator/moto_extensions.py):
    whatever of the AMI's snapshots is gone after the call was deleted by it, and a rule may keep it."""
    original = AmisResponse.deregister_image

    def deregister_image(self: AmisResponse) -> Any:
        backend = self.ec2_backend
        image = backend.amis.get(self._get_param("ImageId"))
        before: dict[str, tuple[Snapshot, dict[str, str]]] = {}
        if image is not None and self._get_bool_param("DeleteAssociatedSnapshots", False):
            for mapping in image.block_device_mappings:
                snapshot = backend.snapshots.get((mapping.get("Ebs") or {}).get("SnapshotId"))
                if snapshot is not None:
                    before[snapshot.id] = (snapshot, dict(backend.tags.get(snapshot.id, {})))
        result = original(self)
        binned = snapshots_bin(backend)
        for snapshot_id, (snapshot, tags) in before.items():
            if snapshot_id not in backend.snapshots and snapshot_id not in binned:
                _retain_snapshot(backend, snapshot, tags)
        return result

    AmisResponse.deregister_image = deregister_image  # type: ignore[method-assign]


def _list_images(self: AmisResponse) -> ActionResult:
    image_ids: list[str] = self._get_param("ImageIds", [])
    max_results = self._get_int_param("MaxResults")
    if len(image_ids) > MAX_LISTED_IMAGE_IDS:
        raise invalid_parameter(f"You can specify up to {MAX_LISTED_IMAGE_IDS} image IDs in a single request.")
    check_max_results(max_results, 1, 1000)
    self.error_on_dryrun()
    entries = [
        _present(
            ImageId=image_id, Name=entry.resource.name, Description=entry.resource.description,
            RecycleBinEnterTime=entry.enter_time, RecycleBinExitTime=entry.exit_time,
        )
        for image_id, entry in images_bin(self.ec2_backend).items()
        if not image_ids or image_id in image_ids
    ]  # fmt: skip
    items, token = page(entries, max_results, self._get_param("NextToken"))
    return ActionResult({"Images": items, "NextToken": token})


def _list_snapshots(self: ElasticBlockStore) -> ActionResult:
    snapshot_ids: list[str] = self._get_param("SnapshotIds", [])
    max_results = self._get_int_param("MaxResults")
    check_max_results(max_results, 5, 1000)
    self.error_on_dryrun()
    entries = [
        _present(
            SnapshotId=snapshot_id, Description=entry.resource.description, VolumeId=entry.resource.volume.id,
            RecycleBinEnterTime=entry.enter_time, RecycleBinExitTime=entry.exit_time,
        )
        for snapshot_id, entry in snapshots_bin(self.ec2_backend).items()
        if not snapshot_ids or snapshot_id in snapshot_ids
    ]  # fmt: skip
    items, token = page(entries, max_results, self._get_param("NextToken"))
    return ActionResult({"Snapshots": items, "NextToken": token})


def _restore_image(self: AmisResponse) -> ActionResult:
    image_id = self._get_param("ImageId")
    self.error_on_dryrun()
    backend = self.ec2_backend
    entry = images_bin(backend).pop(image_id, None)
    if entry is None:
        raise InvalidAMIIdError(image_id)
    backend.amis[image_id] = entry.resource
    if image_id in backend.deleted_amis:
        backend.deleted_amis.remove(image_id)
    backend.tags[image_id].pop(IN_BIN_TAG, None)
    return ActionResult({"Return": True})


def _restore_snapshot(self: ElasticBlockStore) -> ActionResult:
    snapshot_id = self._get_param("SnapshotId")
    self.error_on_dryrun()
    backend = self.ec2_backend
    entry = snapshots_bin(backend).pop(snapshot_id, None)
    if entry is None:
        raise InvalidSnapshotIdError()
    snapshot: Snapshot = entry.resource
    backend.snapshots[snapshot_id] = snapshot
    backend.tags[snapshot_id].pop(IN_BIN_TAG, None)
    return ActionResult(
        _present(
            SnapshotId=snapshot.id, Description=snapshot.description, Encrypted=bool(snapshot.encrypted),
            OwnerId=snapshot.owner_id, Progress="100%", StartTime=snapshot.start_time, State=snapshot.status,
            VolumeId=snapshot.volume.id, VolumeSize=int(snapshot.volume.size),
        )
    )  # fmt: skip


def _present(**members: Any) -> dict[str, Any]:
    return {key: value for key, value in members.items() if value not in (None, "")}
