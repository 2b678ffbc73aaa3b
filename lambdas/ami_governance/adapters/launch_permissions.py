"""Who may launch an AMI: DescribeImageAttribute(launchPermission), the one per-image call no bulk listing avoids.

One reader per region, shared by the event path (enforce records a ModifyImageAttribute's outcome in the
inventory) and the report (which reads only the AMIs the inventory cannot vouch for, rules/launch_permissions.py).
Both parse EC2's answer with `launch_permissions_from`, so a reading means the same wherever it was made.

IAM: ec2:DescribeImageAttribute on the image (resource type `image`, which supports `ec2:Owner`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from ami_governance.adapters.call_counter import calls_made
from ami_governance.adapters.clients import client
from ami_governance.adapters.ec2 import MalformedImageId
from ami_governance.adapters.errors import IMAGE_GONE_CODES, error_code
from ami_governance.models.events import LAUNCH_PERMISSION_ATTRIBUTE
from ami_governance.models.findings import LaunchPermissions, VerifiedBy

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

logger = Logger(child=True)

# DescribeImageAttribute's group that makes an AMI public (PermissionGroup has no other value).
PUBLIC_GROUP = "all"


def launch_permissions_from(
    response: Mapping[str, Any], *, recorded_at: datetime, verified_by: VerifiedBy = VerifiedBy.DESCRIBE
) -> LaunchPermissions:
    """DescribeImageAttribute(launchPermission)'s answer as a value. Each entry names one grantee in one of four
    fields (botocore's LaunchPermission); account ids and ARNs are kept sorted and once each, so that two readings
    of the same permissions are equal."""
    entries = [entry for entry in response.get("LaunchPermissions") or () if isinstance(entry, Mapping)]

    def values(key: str) -> tuple[str, ...]:
        return tuple(sorted({str(entry[key]) for entry in entries if entry.get(key)}))

    return LaunchPermissions(
        image_id=str(response["ImageId"]),
        verified_by=verified_by,
        public=any(entry.get("Group") == PUBLIC_GROUP for entry in entries),
        accounts=values("UserId"),
        organization_arns=values("OrganizationArn"),
        ou_arns=values("OrganizationalUnitArn"),
        recorded_at=recorded_at,
    )


def _utc_now() -> datetime:
    return datetime.now(UTC)


class LaunchPermissionReader:
    """Reads AMIs' launch permissions in one region."""

    def __init__(self, region: str, *, ec2: EC2Client | None = None, now: Callable[[], datetime] = _utc_now) -> None:
        self.region = region
        # The adaptive client the report's scanner of this region uses (adapters/scan.py): the report makes one
        # call per AMI it cannot trust the inventory for, thousands on a first run, and adaptive retries pace
        # them once EC2 throttles; the scanner's count of the region's calls includes them.
        self._ec2 = ec2 if ec2 is not None else client("ec2", region, adaptive=True)
        self._now = now
        self._calls_before = calls_made(self._ec2)

    @property
    def api_calls(self) -> int:
        """Requests this reader's client sent since it was made (retries included)."""
        return calls_made(self._ec2) - self._calls_before

    def read_one(self, image_id: str) -> LaunchPermissions | None:
        """The AMI's launch permissions now, or None when EC2 no longer knows the AMI. A malformed id raises
        MalformedImageId; any other failure raises (the event path's retries take over)."""
        try:
            response = self._ec2.describe_image_attribute(ImageId=image_id, Attribute=LAUNCH_PERMISSION_ATTRIBUTE)
        except ClientError as error:
            code = error_code(error)
            if code in IMAGE_GONE_CODES:
                return None
            if code == "InvalidAMIID.Malformed":
                raise MalformedImageId(image_id) from error
            raise
        return launch_permissions_from(response, recorded_at=self._now())

    def read(self, image_ids: Sequence[str]) -> dict[str, LaunchPermissions]:
        """Each AMI's launch permissions, one call each. An AMI gone since it was listed is left out; one whose
        read failed (denied, throttled past the retries) is VerifiedBy.UNKNOWN with the error: its sharing is
        unknown, which the report must not take for "not shared"."""
        found: dict[str, LaunchPermissions] = {}
        for image_id in dict.fromkeys(image_ids):
            try:
                permissions = self.read_one(image_id)
            except MalformedImageId:
                permissions = _unknown(image_id, "InvalidAMIID.Malformed: not an AMI id")
            except (ClientError, BotoCoreError) as error:
                permissions = _unknown(image_id, f"{error_code(error)}: {error}")
            if permissions is None:
                logger.info("AMI gone before its launch permissions were read", extra={"image_id": image_id})
                continue
            if permissions.verified_by is VerifiedBy.UNKNOWN:
                logger.warning(
                    "Launch permissions could not be read",
                    extra={"image_id": image_id, "region": self.region, "error": permissions.error},
                )
            found[image_id] = permissions
        return found


def _unknown(image_id: str, error: str) -> LaunchPermissions:
    return LaunchPermissions(image_id=image_id, verified_by=VerifiedBy.UNKNOWN, error=error)
