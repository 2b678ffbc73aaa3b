"""State that tests and the emulator's control API set directly on moto's backend, where no AWS API can."""

from __future__ import annotations

from moto.ec2.models import ec2_backends


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
