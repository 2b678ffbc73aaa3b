"""AMI behaviours moto 5.2.5 lacks: RegisterImage's block device mappings, the `block-device-mapping.snapshot-id` and
`source-image-*` filters of DescribeImages, and DeregisterImage's `DeleteAssociatedSnapshots`."""

from __future__ import annotations

from typing import Any, cast

from moto.core.responses import ActionResult
from moto.ec2.models.amis import Ami
from moto.ec2.responses.amis import AmisResponse


def apply() -> None:
    _mappings_from_register_image()
    _image_filters()
    _deregister_image_deletes_associated_snapshots()


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
                {"DeviceName": mapping.get("DeviceName"), "Ebs": _with_volume_size(self.ec2_backend, mapping["Ebs"])}
                for mapping in requested
                if mapping.get("Ebs", {}).get("SnapshotId")
            ]
        return result

    def block_device_mappings(self: Ami) -> list[dict[str, Any]]:
        registered = getattr(self, "registered_block_device_mappings", None)
        return registered if registered is not None else original_mappings.fget(self)  # type: ignore[attr-defined,no-any-return]

    AmisResponse.register_image = register_image  # type: ignore[method-assign]
    Ami.block_device_mappings = property(block_device_mappings)  # type: ignore[method-assign,assignment]


def _with_volume_size(backend: Any, ebs: dict[str, Any]) -> dict[str, Any]:
    """EC2 reports each mapping's VolumeSize; a mapping registered without one gets its snapshot's size."""
    ebs = dict(ebs)
    snapshot = backend.snapshots.get(ebs.get("SnapshotId"))
    if not ebs.get("VolumeSize") and snapshot is not None:
        ebs["VolumeSize"] = int(snapshot.volume.size)
    return ebs


def image_snapshot_ids(image: Ami) -> list[str]:
    return [m["Ebs"]["SnapshotId"] for m in image.block_device_mappings if m.get("Ebs", {}).get("SnapshotId")]


def _image_filters() -> None:
    original = Ami.get_filter_value

    def get_filter_value(self: Ami, filter_name: str, method_name: str | None = None) -> Any:
        if filter_name == "block-device-mapping.snapshot-id":
            return image_snapshot_ids(self)
        # DescribeImages finds the copies of an AMI by these two (the attributes are set by CopyImage below).
        if filter_name == "source-image-id":
            return self.source_image_id  # type: ignore[attr-defined]
        if filter_name == "source-image-region":
            return self.source_image_region  # type: ignore[attr-defined]
        return original(self, filter_name, method_name)

    Ami.get_filter_value = get_filter_value  # type: ignore[method-assign]


def _deregister_image_deletes_associated_snapshots() -> None:
    """DeregisterImage(DeleteAssociatedSnapshots=True), as the EC2 API reference documents it: the AMI goes, and
    each of its snapshots is deleted unless another AMI (disabled and deprecated ones included) uses it, which is
    `skipped`; a snapshot of another account cannot be deleted (`missing-permissions`). The answer lists one
    DeleteSnapshotResults entry {SnapshotId, ReturnCode} per snapshot of the AMI."""
    original = AmisResponse.deregister_image

    def deregister_image(self: AmisResponse) -> ActionResult:
        if not self._get_bool_param("DeleteAssociatedSnapshots", False):
            return original(self)
        backend = self.ec2_backend
        image = backend.amis.get(self._get_param("ImageId"))
        snapshot_ids = image_snapshot_ids(image) if image is not None else []
        original(self)  # the image lookup, its errors and DryRun stay moto's
        results = []
        for snapshot_id in dict.fromkeys(snapshot_ids):
            snapshot = backend.snapshots.get(snapshot_id)
            if any(snapshot_id in image_snapshot_ids(other) for other in backend.amis.values()):
                code = "skipped"
            elif snapshot is None:
                code = "client-error"
            elif snapshot.owner_id != backend.account_id:
                code = "missing-permissions"
            else:
                backend.snapshots.pop(snapshot_id)
                code = "success"
            results.append({"SnapshotId": snapshot_id, "ReturnCode": code})
        return ActionResult({"Return": True, "DeleteSnapshotResults": results})

    AmisResponse.deregister_image = deregister_image  # type: ignore[method-assign]
