"""Block public access for AMIs and for snapshots, per account and region; moto 5.2.5 has neither API.

- AMIs (EC2 User Guide, "Understand block public access for AMIs", Default settings): enabled for new accounts and
  for existing accounts that never had a public AMI. The emulator's account starts with no public AMI of its own,
  so the state starts `block-new-sharing`. "When block public access is enabled, any attempt to make an AMI public
  is automatically blocked. However, if you already have public AMIs, they remain publicly available": a
  ModifyImageAttribute that adds the group `all` is refused with AWS's `OperationNotPermitted`; a test that needs
  a public AMI calls DisableImageBlockPublicAccess first, as an AWS user must.
- Snapshots (EBS User Guide, "Block public access for Amazon EBS snapshots"): off until enabled ("you can enable
  block public access for snapshots"), so the state starts `unblocked`. Not enforced on ModifySnapshotAttribute:
  the User Guide does not give the error AWS returns.
Both report `ManagedBy: account` (the emulator has no declarative policies). AWS takes up to 10 minutes to apply
EnableImageBlockPublicAccess ("During this time ... the response will be unblocked"); the emulator applies it at once.
"""

from __future__ import annotations

from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.exceptions import MissingParameterError, OperationNotPermitted
from moto.ec2.models.amis import AmiBackend
from moto.ec2.responses.amis import AmisResponse
from moto.ec2.responses.elastic_block_store import ElasticBlockStore

from emulator.moto_additions._common import invalid_parameter

IMAGE_DEFAULT = "block-new-sharing"
SNAPSHOT_DEFAULT = "unblocked"
SNAPSHOT_ENABLED_STATES = ("block-all-sharing", "block-new-sharing")
# The backend attributes holding the state: a backend's reset clears its __dict__, so each mock starts at the default.
_IMAGE_KEY = "image_block_public_access_state"
_SNAPSHOT_KEY = "snapshot_block_public_access_state"


def apply() -> None:
    AmisResponse.get_image_block_public_access_state = _get_image_state  # type: ignore[attr-defined]
    AmisResponse.enable_image_block_public_access = _enable_image  # type: ignore[attr-defined]
    AmisResponse.disable_image_block_public_access = _disable_image  # type: ignore[attr-defined]
    ElasticBlockStore.get_snapshot_block_public_access_state = _get_snapshot_state  # type: ignore[attr-defined]
    ElasticBlockStore.enable_snapshot_block_public_access = _enable_snapshot  # type: ignore[attr-defined]
    ElasticBlockStore.disable_snapshot_block_public_access = _disable_snapshot  # type: ignore[attr-defined]
    _refuse_public_sharing_when_blocked()


def image_state(backend: Any) -> str:
    return str(backend.__dict__.get(_IMAGE_KEY, IMAGE_DEFAULT))


def snapshot_state(backend: Any) -> str:
    return str(backend.__dict__.get(_SNAPSHOT_KEY, SNAPSHOT_DEFAULT))


def _get_image_state(self: AmisResponse) -> ActionResult:
    self.error_on_dryrun()
    return ActionResult({"ImageBlockPublicAccessState": image_state(self.ec2_backend), "ManagedBy": "account"})


def _enable_image(self: AmisResponse) -> ActionResult:
    state = self._get_param("ImageBlockPublicAccessState")
    if not state:
        raise MissingParameterError("ImageBlockPublicAccessState")
    if state != "block-new-sharing":  # the model's only ImageBlockPublicAccessEnabledState
        raise invalid_parameter(f"Value ({state}) for parameter ImageBlockPublicAccessState is invalid.")
    self.error_on_dryrun()
    self.ec2_backend.__dict__[_IMAGE_KEY] = state
    return ActionResult({"ImageBlockPublicAccessState": state})


def _disable_image(self: AmisResponse) -> ActionResult:
    self.error_on_dryrun()
    self.ec2_backend.__dict__[_IMAGE_KEY] = "unblocked"
    return ActionResult({"ImageBlockPublicAccessState": "unblocked"})


def _get_snapshot_state(self: ElasticBlockStore) -> ActionResult:
    self.error_on_dryrun()
    return ActionResult({"State": snapshot_state(self.ec2_backend), "ManagedBy": "account"})


def _enable_snapshot(self: ElasticBlockStore) -> ActionResult:
    state = self._get_param("State")
    if not state:
        raise MissingParameterError("State")
    # "unblocked is not a valid value for EnableSnapshotBlockPublicAccess" (State doc).
    if state not in SNAPSHOT_ENABLED_STATES:
        raise invalid_parameter(f"Value ({state}) for parameter State is invalid.")
    self.error_on_dryrun()
    self.ec2_backend.__dict__[_SNAPSHOT_KEY] = state
    return ActionResult({"State": state})


def _disable_snapshot(self: ElasticBlockStore) -> ActionResult:
    self.error_on_dryrun()
    self.ec2_backend.__dict__[_SNAPSHOT_KEY] = "unblocked"
    return ActionResult({"State": "unblocked"})


def _refuse_public_sharing_when_blocked() -> None:
    original = AmiBackend.modify_image_attribute

    def modify_image_attribute(
        self: Any,
        ami_id: str,
        launch_permissions_to_add: list[dict[str, str]],
        launch_permissions_to_remove: list[dict[str, str]],
    ) -> None:
        adds = launch_permissions_to_add or []
        self.describe_images(ami_ids=[ami_id])  # an unknown AMI is still moto's InvalidAMIID error
        if image_state(self) != "unblocked" and any(p.get("Group") == "all" for p in adds):
            # AWS's error for this call, as EC2 returns it.
            raise OperationNotPermitted(
                "You can’t publicly share this image because block public access for AMIs is enabled for this "
                "account. To publicly share the image, you must call the DisableImageBlockPublicAccess API."
            )
        original(self, ami_id, launch_permissions_to_add, launch_permissions_to_remove)

    AmiBackend.modify_image_attribute = modify_image_attribute  # type: ignore[method-assign]
