"""What moto 5.2 lacks for AMI snapshot work, added to its EC2 backend (used by the emulator and the tests).

moto gives every AMI one auto-created snapshot, ignores the block device mappings of RegisterImage, does not
implement the DescribeImages filter `block-device-mapping.snapshot-id`, and lets a snapshot be deleted while a
registered AMI still uses it. AWS does all of these; the snapshot clean-up depends on them. Each patch below
makes moto behave as the EC2 documentation says, for those cases only.
"""

from __future__ import annotations

from typing import Any, cast

from moto.ec2.exceptions import InvalidSnapshotIdError, InvalidSnapshotInUse
from moto.ec2.models.amis import Ami
from moto.ec2.models.elastic_block_store import EBSBackend
from moto.ec2.responses.amis import AmisResponse

_applied = False


def apply() -> None:
    """Idempotent: patch moto's EC2 model once per process."""
    global _applied  # noqa: PLW0603 - a process-wide patch, applied once
    if _applied:
        return
    _applied = True
    _mappings_from_register_image()
    _filter_by_snapshot_id()
    _snapshot_in_use_by_any_ami()


def _mappings_from_register_image() -> None:
    original_register = AmisResponse.register_image
    original_mappings = Ami.block_device_mappings

    def register_image(self: AmisResponse) -> Any:
        result = original_register(self)
        requested = self._get_param("BlockDeviceMappings", [])
        if requested:
            image = self.ec2_backend.amis[cast(dict[str, str], result.result)["ImageId"]]
            # A registered AMI points at existing snapshots; moto's auto-created one does not exist in AWS.
            self.ec2_backend.snapshots.pop(image.ebs_snapshot.id, None)
            image.registered_block_device_mappings = [
                {"DeviceName": mapping.get("DeviceName"), "Ebs": dict(mapping["Ebs"])}
                for mapping in requested
                if mapping.get("Ebs", {}).get("SnapshotId")
            ]
        return result

    def block_device_mappings(self: Ami) -> list[dict[str, Any]]:
        registered = getattr(self, "registered_block_device_mappings", None)
        return registered if registered is not None else original_mappings.fget(self)  # type: ignore[attr-defined,no-any-return]

    AmisResponse.register_image = register_image  # type: ignore[method-assign]
    Ami.block_device_mappings = property(block_device_mappings)  # type: ignore[method-assign,assignment]


def _snapshot_ids(image: Ami) -> list[str]:
    return [m["Ebs"]["SnapshotId"] for m in image.block_device_mappings if m.get("Ebs", {}).get("SnapshotId")]


def _filter_by_snapshot_id() -> None:
    original = Ami.get_filter_value

    def get_filter_value(self: Ami, filter_name: str, method_name: str | None = None) -> Any:
        if filter_name == "block-device-mapping.snapshot-id":
            return _snapshot_ids(self)
        return original(self, filter_name, method_name)

    Ami.get_filter_value = get_filter_value  # type: ignore[method-assign]


def _snapshot_in_use_by_any_ami() -> None:
    def delete_snapshot(self: EBSBackend, snapshot_id: str) -> Any:
        if snapshot_id not in self.snapshots:
            raise InvalidSnapshotIdError()
        # EC2 refuses while any AMI (disabled and deprecated ones included) references the snapshot.
        for image in self.amis.values():  # type: ignore[attr-defined]
            if snapshot_id in _snapshot_ids(image):
                raise InvalidSnapshotInUse(snapshot_id, image.id)
        return self.snapshots.pop(snapshot_id)

    EBSBackend.delete_snapshot = delete_snapshot  # type: ignore[method-assign]


def set_image_state(account: str, region: str, image_id: str, state: str) -> None:
    """Set an AMI's state in moto's backend (moto has no pending AMIs); a no-op if the AMI is gone."""
    from moto.ec2.models import ec2_backends

    image = ec2_backends[account][region].amis.get(image_id)
    if image is not None:
        image.state = state
