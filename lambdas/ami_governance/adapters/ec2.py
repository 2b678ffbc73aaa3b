"""EC2 image operations for one region. The only module that talks to the EC2 API."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from ami_governance.adapters.clients import client
from ami_governance.adapters.errors import IMAGE_GONE_CODES, error_code
from ami_governance.models.image import ImageFacts

# CreateTags accepts up to 1000 resource ids per call; we never need more for one AMI's snapshots.
MAX_RESOURCES_PER_TAG_CALL = 1000


class MalformedImageId(ValueError):
    """EC2 rejected an image id as malformed: bad input, not worth a retry."""


def to_image_facts(raw: Mapping[str, Any], region: str) -> ImageFacts:
    snapshots = tuple(
        mapping["Ebs"]["SnapshotId"]
        for mapping in raw.get("BlockDeviceMappings", [])
        if mapping.get("Ebs", {}).get("SnapshotId")
    )
    return ImageFacts(
        image_id=raw["ImageId"],
        region=region,
        owner_id=str(raw.get("OwnerId", "")),
        name=raw.get("Name", ""),
        state=raw.get("State", "unknown"),
        tags={tag["Key"]: tag.get("Value", "") for tag in raw.get("Tags", [])},
        snapshot_ids=snapshots,
        source_image_id=raw.get("SourceImageId"),
        source_region=raw.get("SourceImageRegion"),
        creation_date=raw.get("CreationDate"),
        deprecation_time=raw.get("DeprecationTime"),
    )


class Ec2Images:
    """AMI reads and writes in one region."""

    def __init__(self, region: str) -> None:
        self.region = region
        self._ec2 = client("ec2", region)

    def describe_image(self, image_id: str) -> ImageFacts | None:
        """The image, or None when it is gone. Disabled and deprecated images are included."""
        try:
            response = self._ec2.describe_images(ImageIds=[image_id], IncludeDisabled=True, IncludeDeprecated=True)
        except ClientError as error:
            code = error_code(error)
            if code in IMAGE_GONE_CODES:
                return None
            if code == "InvalidAMIID.Malformed":
                raise MalformedImageId(image_id) from error
            raise
        images = response.get("Images", [])
        return to_image_facts(images[0], self.region) if images else None

    def create_tags(self, resource_ids: Sequence[str], tags: Mapping[str, str]) -> None:
        if not resource_ids or not tags:
            return
        self._ec2.create_tags(
            Resources=list(resource_ids)[:MAX_RESOURCES_PER_TAG_CALL],
            Tags=[{"Key": key, "Value": value} for key, value in tags.items()],
        )

    def disable_image(self, image_id: str) -> None:
        self._ec2.disable_image(ImageId=image_id)

    def enable_image(self, image_id: str) -> None:
        self._ec2.enable_image(ImageId=image_id)

    def enable_deprecation(self, image_id: str, deprecate_at: datetime) -> None:
        self._ec2.enable_image_deprecation(ImageId=image_id, DeprecateAt=deprecate_at)

    def disable_deprecation(self, image_id: str) -> None:
        self._ec2.disable_image_deprecation(ImageId=image_id)
