"""AMI behaviours moto 5.2.5 lacks or gets wrong.

moto ignores RegisterImage's block device mappings, the DescribeImages filters `block-device-mapping.snapshot-id`
and `source-image-*`, DeregisterImage's `DeleteAssociatedSnapshots`, and DescribeImages' `IncludeDisabled`,
`MaxResults` and `NextToken` (disabled AMIs always listed, never a page); DisableImage leaves a public AMI public;
CreateImage describes its snapshot without the volume it was made from; and every built-in AMI claims the owner
alias `amazon`, Canonical's Ubuntu images included.
"""

from __future__ import annotations

from typing import Any, cast

from moto.core.responses import ActionResult
from moto.ec2.models.amis import Ami, AmiBackend
from moto.ec2.responses.amis import AmisResponse

from emulator.moto_extensions.paging import page, page_size

# DescribeImages' MaxResults has no documented range ("see Pagination"); 1000 is what the SDKs send for a full
# page (the Ruby SDK's ResourcePaginationFix), and no EC2 describe call documents a larger page.
IMAGES_PAGE_MAX = 1000


def apply() -> None:
    _mappings_from_register_image()
    _image_filters()
    _deregister_image_deletes_associated_snapshots()
    _describe_images_hides_disabled_and_pages()
    _disable_image_removes_launch_permissions()
    _create_image_names_the_volume()
    _third_party_images_have_no_amazon_alias()


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
        # DescribeImages finds the copies of an AMI by these two (the attributes are set by copy_image.py).
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


def _describe_images_hides_disabled_and_pages() -> None:
    """DescribeImages `IncludeDisabled`: "Default: No disabled AMIs are included in the response" (botocore's
    model; DisableImage: "A disabled AMI does not appear in DescribeImages API calls by default"). The model names
    no exception for `ImageIds`, so a disabled AMI asked for by id is left out too unless IncludeDisabled=true.
    `MaxResults`/`NextToken` page the result; without them everything comes in one answer, as on EC2."""
    original = AmisResponse.describe_images

    def describe_images(self: AmisResponse) -> ActionResult:
        token = self._get_param("NextToken")
        size = page_size(self._get_int_param("MaxResults"), 1, IMAGES_PAGE_MAX, above_maximum="cap", paging=bool(token))
        images: list[Ami] = cast(dict[str, list[Ami]], original(self).result)["Images"]
        if not self._get_bool_param("IncludeDisabled", False):
            images = [image for image in images if image.state != "disabled"]
        if size is None:
            return ActionResult({"Images": images})
        chosen, next_token = page(images, lambda image: (image.id,), size, token)
        return ActionResult({"Images": chosen, "NextToken": next_token})

    AmisResponse.describe_images = describe_images  # type: ignore[method-assign]


def _disable_image_removes_launch_permissions() -> None:
    """DisableImage "Sets the AMI state to disabled and removes all launch permissions from the AMI ... If an AMI
    was public or previously shared, it is made private" (botocore's model); EnableImage does not restore them."""
    original = AmiBackend.disable_image

    def disable_image(self: AmiBackend, ami_id: str) -> None:
        original(self, ami_id)  # its errors (unknown or deregistered AMI) stay moto's
        self.amis[ami_id].launch_permissions.clear()

    AmiBackend.disable_image = disable_image  # type: ignore[method-assign]


def _create_image_names_the_volume() -> None:
    """CreateImage's snapshot is described `Created by CreateImage(i-…) for ami-… from vol-…` on EC2, naming the
    instance volume it was taken from; moto leaves out the ` from vol-…` part."""
    original = AmiBackend.create_image

    def create_image(self: AmiBackend, instance_id: str, *args: Any, **kwargs: Any) -> Ami:
        image = original(self, instance_id, *args, **kwargs)
        instance = self.get_instance(instance_id)  # type: ignore[attr-defined]
        mapping = instance.block_device_mapping
        root = mapping.get(instance.root_device_name) or next(iter(mapping.values()), None)
        if root is not None:
            image.ebs_snapshot.description += f" from {root.volume_id}"
        return image

    AmiBackend.create_image = create_image  # type: ignore[method-assign]


# Canonical publishes Ubuntu AMIs from its own account. `ImageOwnerAlias` is "The owner alias (amazon |
# aws-backup-vault | aws-marketplace)" (Image, EC2 API reference): an alias of Amazon's own, which a publisher's
# account does not have. moto stamps `amazon` on every AMI it loads ("we are assuming the default loaded amis are
# owned by amazon"), which would make a community image look like Amazon's.
THIRD_PARTY_PUBLISHERS = frozenset({"099720109477"})


def _third_party_images_have_no_amazon_alias() -> None:
    original_load = AmiBackend._load_amis

    def load_amis(self: AmiBackend) -> None:
        original_load(self)
        for image in self.amis.values():
            if image.owner_id in THIRD_PARTY_PUBLISHERS:
                image.owner_alias = None

    AmiBackend._load_amis = load_amis  # type: ignore[method-assign]
