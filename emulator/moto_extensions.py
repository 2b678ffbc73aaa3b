"""What moto 5.2 lacks for AMI snapshot and copy work, added to its EC2 backend (used by the emulator and the tests).

moto gives every AMI one auto-created snapshot, ignores the block device mappings of RegisterImage, does not
implement the DescribeImages filter `block-device-mapping.snapshot-id`, lets a snapshot be deleted while a
registered AMI still uses it, and accepts DeregisterImage's `DeleteAssociatedSnapshots` but deletes nothing. Its
CopyImage ignores everything but the source, name and description: no client
token, no tags, no encryption, no source recorded on the copy. AWS does all of these; the snapshot clean-up and
replication depend on them. Each patch below makes moto behave as the EC2 documentation says, for those cases only.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any, cast

from moto.core.responses import ActionResult
from moto.ec2.exceptions import (
    EC2ClientError,
    InvalidParameterCombination,
    InvalidSnapshotIdError,
    InvalidSnapshotInUse,
    InvalidTaggableResourceType,
)
from moto.ec2.models import ec2_backends
from moto.ec2.models.amis import Ami
from moto.ec2.models.elastic_block_store import EBSBackend, Snapshot
from moto.ec2.responses.amis import AmisResponse
from moto.ec2.utils import random_snapshot_id
from moto.kms.models import kms_backends

from emulator import moto_additions

_applied = False
# CopyImage's client tokens are checked and recorded under one lock: the emulator serves calls on many threads.
_copy_lock = threading.Lock()


def apply() -> None:
    """Idempotent: patch moto's EC2 model once per process."""
    global _applied  # noqa: PLW0603 - a process-wide patch, applied once
    if _applied:
        return
    _applied = True
    _mappings_from_register_image()
    _image_filters()
    _snapshot_in_use_by_any_ami()
    _deregister_image_deletes_associated_snapshots()
    _copy_image_as_aws_does()
    moto_additions.apply()


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


def _snapshot_ids(image: Ami) -> list[str]:
    return [m["Ebs"]["SnapshotId"] for m in image.block_device_mappings if m.get("Ebs", {}).get("SnapshotId")]


def _image_filters() -> None:
    original = Ami.get_filter_value

    def get_filter_value(self: Ami, filter_name: str, method_name: str | None = None) -> Any:
        if filter_name == "block-device-mapping.snapshot-id":
            return _snapshot_ids(self)
        # DescribeImages finds the copies of an AMI by these two (the attributes are set by CopyImage below).
        if filter_name == "source-image-id":
            return self.source_image_id  # type: ignore[attr-defined]
        if filter_name == "source-image-region":
            return self.source_image_region  # type: ignore[attr-defined]
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
        snapshot_ids = _snapshot_ids(image) if image is not None else []
        original(self)  # the image lookup, its errors and DryRun stay moto's
        results = []
        for snapshot_id in dict.fromkeys(snapshot_ids):
            snapshot = backend.snapshots.get(snapshot_id)
            if any(snapshot_id in _snapshot_ids(other) for other in backend.amis.values()):
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


# ---- CopyImage -------------------------------------------------------------------------------------------------


def _copy_image_as_aws_does() -> None:
    """CopyImage as the EC2 API reference documents it:

    - `ClientToken` makes the call idempotent per account and destination region: a repeat with the same
      parameters returns the first call's ImageId and copies nothing; other parameters are
      `IdempotentParameterMismatch`.
    - `CopyImageTags` copies the source's user tags (not `aws:` ones); `TagSpecifications` tag the new AMI
      (`image`) and its snapshots (`snapshot`), winning over a copied tag of the same key.
    - The copy names its source (`SourceImageId`, `SourceImageRegion` in DescribeImages and as filters).
    - Each source snapshot gets a copy described `Copied for DestinationAmi … from SourceAmi … for SourceSnapshot
      … Task created on <epoch ms>.`, encrypted with the resolved KMS key when `Encrypted` is true.
    - `KmsKeyId` without `Encrypted=true` is refused at once (`InvalidParameterCombination`); a key that is missing
      or unusable in the destination region is found only by the asynchronous copy, so the call succeeds and the
      AMI ends `failed` with a StateReason naming the key problem (and no snapshot).
    """
    original_copy = AmisResponse.copy_image

    def copy_image(self: AmisResponse) -> ActionResult:
        params = {k: v for k, v in self._get_params().items() if k not in ("ClientToken", "DryRun")}
        token = self._get_param("ClientToken")
        encrypted = bool(self._get_param("Encrypted", False))
        key_ref = self._get_param("KmsKeyId")
        if key_ref and not encrypted:
            raise InvalidParameterCombination("KmsKeyId can only be specified when Encrypted is true")
        for spec in self._get_param("TagSpecifications", []):
            if spec.get("ResourceType") not in ("image", "snapshot"):
                raise InvalidTaggableResourceType(str(spec.get("ResourceType")))
        self.error_on_dryrun()
        backend = self.ec2_backend
        fingerprint = json.dumps(params, sort_keys=True, default=str)
        with _copy_lock:
            tokens: dict[str, tuple[str, str]] = backend.__dict__.setdefault("copy_image_client_tokens", {})
            if token and token in tokens:
                first_fingerprint, image_id = tokens[token]
                if first_fingerprint != fingerprint:
                    raise EC2ClientError(
                        "IdempotentParameterMismatch",
                        "Arguments on this idempotent request are inconsistent with arguments used in previous "
                        "request(s).",
                    )
                return ActionResult({"ImageId": image_id})
            result = original_copy(self)  # the source lookup and its errors stay moto's
            image_id = cast(dict[str, str], result.result)["ImageId"]
            _complete_copy(
                backend,
                backend.amis[image_id],
                source_region=self._get_param("SourceRegion"),
                source_image_id=self._get_param("SourceImageId"),
                copy_tags=bool(self._get_param("CopyImageTags", False)),
                tag_specifications=self._get_param("TagSpecifications", []),
                encrypted=encrypted,
                key_ref=key_ref,
            )
            if token:
                tokens[token] = (fingerprint, image_id)
        return result

    def state_reason(self: Ami) -> dict[str, str] | None:
        # AWS reports a StateReason for failed AMIs only (the emulator shows a failed copy pending first).
        reason: dict[str, str] | None = getattr(self, "failure_reason", None)
        return reason if self.state == "failed" else None

    AmisResponse.copy_image = copy_image  # type: ignore[method-assign]
    # Read by moto's response serializer (botocore's Image members SourceImageId, SourceImageRegion, StateReason).
    Ami.source_image_id = None  # type: ignore[attr-defined]
    Ami.source_image_region = None  # type: ignore[attr-defined]
    Ami.state_reason = property(state_reason)  # type: ignore[attr-defined]


def _complete_copy(
    backend: Any,
    image: Ami,
    source_region: str,
    source_image_id: str,
    copy_tags: bool,
    tag_specifications: list[dict[str, Any]],
    encrypted: bool,
    key_ref: str | None,
) -> None:
    source_backend = ec2_backends[backend.account_id][source_region]
    source = source_backend.amis[source_image_id]
    image.source_image_id = source_image_id  # type: ignore[attr-defined]
    image.source_image_region = source_region  # type: ignore[attr-defined]

    tags: dict[str, dict[str, str]] = {"image": {}, "snapshot": {}}
    if copy_tags:
        source_tags = source_backend.tags.get(source.id, {})
        tags["image"].update({k: v for k, v in source_tags.items() if not k.startswith("aws:")})
    for spec in tag_specifications:
        tags[spec["ResourceType"]].update({t["Key"]: t.get("Value", "") for t in spec.get("Tags", [])})
    if tags["image"]:
        backend.create_tags([image.id], tags["image"])

    # moto's auto-created snapshot does not describe a copy; AWS makes one copy per source snapshot instead.
    backend.snapshots.pop(image.ebs_snapshot.id, None)
    key_arn, problem = _resolve_kms_key(backend.account_id, backend.region_name, key_ref) if key_ref else (None, None)
    if problem is not None:
        image.state = "failed"
        image.failure_reason = problem  # type: ignore[attr-defined]
    mappings = []
    task_created = int(time.time() * 1000)
    for mapping in source.block_device_mappings:
        ebs = dict(mapping.get("Ebs") or {})
        source_snapshot = source_backend.snapshots.get(str(ebs.pop("SnapshotId", "")))
        if problem is None and source_snapshot is not None:
            snapshot_encrypted = encrypted or bool(source_snapshot.encrypted)
            if snapshot_encrypted and key_arn is None:
                # Encryption without a key (or of an encrypted source) uses the region's default EBS key.
                key_arn = backend.default_kms_key_id or backend._create_default_encryption_key()
            snapshot = Snapshot(
                backend,
                random_snapshot_id(),
                source_snapshot.volume,
                f"Copied for DestinationAmi {image.id} from SourceAmi {source_image_id} for SourceSnapshot "
                f"{source_snapshot.id}. Task created on {task_created}.",
                encrypted=snapshot_encrypted,
                kms_key_id=key_arn if snapshot_encrypted else None,
                owner_id=backend.account_id,
                from_ami=image.id,
            )
            backend.snapshots[snapshot.id] = snapshot
            if tags["snapshot"]:
                backend.create_tags([snapshot.id], tags["snapshot"])
            ebs["SnapshotId"] = snapshot.id
            if snapshot_encrypted:
                ebs.update(Encrypted=True, KmsKeyId=key_arn)
        mappings.append({"DeviceName": mapping.get("DeviceName"), "Ebs": ebs})
    image.registered_block_device_mappings = mappings  # type: ignore[attr-defined]


def _resolve_kms_key(account: str, region: str, key_ref: str) -> tuple[str | None, dict[str, str] | None]:
    """(key ARN, None) for a usable key of the destination region, else (None, the StateReason AWS reports).
    `key_ref` is a key id, key ARN, alias name or alias ARN, as CopyImage accepts."""
    kms = kms_backends[account][region]
    key = None
    if key_ref.startswith("arn:"):
        parts = key_ref.split(":", 5)
        in_region = len(parts) == 6 and parts[3] == region and parts[4] == account
        resource = parts[5] if in_region else ""
    else:
        resource = key_ref
    if resource.startswith("key/"):
        key = kms.keys.get(resource.removeprefix("key/"))
    elif resource == "alias/aws/ebs":
        # The AWS managed EBS key exists in every region from its first use; moto makes it on demand.
        key = kms.keys.get(kms.get_key_id(ec2_backends[account][region]._create_default_encryption_key()))
    elif resource.startswith("alias/"):
        key_id = next((k.id for k in kms.keys.values() if resource in k.aliases), None)
        key = kms.keys.get(key_id) if key_id else None
    elif resource:
        key = kms.keys.get(resource)
    if key is None:
        code = "Client.InvalidKMSKey.NotFound"
        return None, {"Code": code, "Message": f"{code}: The KMS key {key_ref} does not exist in {region}"}
    if key.key_state != "Enabled":
        code = "Client.InvalidKMSKey.InvalidState"
        state = {"Disabled": "disabled", "PendingDeletion": "pending deletion"}.get(key.key_state, key.key_state)
        return None, {"Code": code, "Message": f"{code}: The KMS key {key.arn} is {state}"}
    return str(key.arn), None


def set_image_state(account: str, region: str, image_id: str, state: str) -> None:
    """Set an AMI's state in moto's backend (moto has no pending AMIs); a no-op if the AMI is gone."""
    image = ec2_backends[account][region].amis.get(image_id)
    if image is not None:
        image.state = state


def image_state(account: str, region: str, image_id: str) -> tuple[str, str]:
    """The AMI's state in moto's backend and, if it failed, the message of its StateReason ("" otherwise)."""
    image = ec2_backends[account][region].amis.get(image_id)
    if image is None:
        return "deregistered", ""
    reason = image.state_reason  # type: ignore[attr-defined]
    return str(image.state), str(reason["Message"]) if reason else ""
