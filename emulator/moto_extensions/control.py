"""State that tests and the emulator's control API set directly on moto's backend, where no AWS API can: an AMI's
state while the emulator shows it pending, and the age of AMIs and snapshots (moto stamps `CreationDate` and
`StartTime` with the time of the call, and EC2 has no API to change them, so an aged estate cannot be built
through the API alone)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from moto.ec2.models import ec2_backends


class UnknownResource(LookupError):
    """No such AMI or snapshot in that account and region."""


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


def set_image_creation_date(account: str, region: str, image_id: str, when: datetime) -> None:
    """Make an AMI look created at `when` (DescribeImages `CreationDate`)."""
    set_creation_dates(account, region, images={image_id: when})


def set_snapshot_start_time(account: str, region: str, snapshot_id: str, when: datetime) -> None:
    """Make a snapshot look started at `when` (DescribeSnapshots `StartTime`)."""
    set_creation_dates(account, region, snapshots={snapshot_id: when})


def set_creation_dates(
    account: str,
    region: str,
    images: Mapping[str, datetime] | None = None,
    snapshots: Mapping[str, datetime] | None = None,
) -> None:
    """Age AMIs (`CreationDate`) and snapshots (`StartTime`) at once: all of them, or none when an id is unknown
    (`UnknownResource`) or a time is in the future (`ValueError`: EC2 never reports one)."""
    backend = ec2_backends[account][region]
    images, snapshots = dict(images or {}), dict(snapshots or {})
    missing = [i for i in images if i not in backend.amis] + [s for s in snapshots if s not in backend.snapshots]
    if missing:
        raise UnknownResource(f"not in {account} {region}: {', '.join(missing)}")
    stamps = {resource_id: _utc(when) for resource_id, when in {**images, **snapshots}.items()}
    now = datetime.now(UTC).replace(tzinfo=None)
    future = [resource_id for resource_id, stamp in stamps.items() if stamp > now]
    if future:
        raise ValueError(f"creation time in the future: {', '.join(future)}")
    for image_id in images:
        backend.amis[image_id].creation_date = stamps[image_id]
    for snapshot_id in snapshots:
        backend.snapshots[snapshot_id].start_time = stamps[snapshot_id]


def _utc(when: datetime) -> datetime:
    # moto keeps naive UTC datetimes (moto.core.utils.utcnow); a naive `when` is taken as UTC.
    return when.astimezone(UTC).replace(tzinfo=None) if when.tzinfo else when
