"""Snapshot behaviours moto 5.2.5 lacks: DeleteSnapshot refuses a snapshot an AMI still uses."""

from __future__ import annotations

from typing import Any

from moto.ec2.exceptions import InvalidSnapshotIdError, InvalidSnapshotInUse
from moto.ec2.models.elastic_block_store import EBSBackend

from emulator.moto_extensions.images import image_snapshot_ids


def apply() -> None:
    _snapshot_in_use_by_any_ami()


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
