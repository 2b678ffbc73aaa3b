"""EC2 image operations for one region. The only module that talks to the EC2 API."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from ami_governance.adapters.clients import client
from ami_governance.adapters.errors import IMAGE_GONE_CODES, error_code
from ami_governance.models.cleanup import SnapshotFacts
from ami_governance.models.image import ImageFacts
from ami_governance.models.jobs import CopyRequest
from ami_governance.models.policy import Sharing
from ami_governance.rules.cleanup import description_filters

if TYPE_CHECKING:
    from mypy_boto3_ec2.type_defs import (
        CopyImageRequestTypeDef,
        DescribeSnapshotsResultTypeDef,
        ImageTypeDef,
        LaunchPermissionTypeDef,
    )

# CreateTags and DeleteTags accept up to 1000 resource ids per call: more are sent in several calls.
MAX_RESOURCES_PER_TAG_CALL = 1000
# Image ids per DescribeImages call when one event names several AMIs (at most FILTER_VALUES_PER_CALL: a batch
# naming an unknown id is asked again as a filter).
DESCRIBE_BATCH = 100
# Values per filter in one Describe* call.
FILTER_VALUES_PER_CALL = 200
# Page sizes: DescribeImages and DescribeSnapshots return everything in one response unless paged.
IMAGES_PAGE_SIZE = 1000
SNAPSHOTS_PAGE_SIZE = 1000


class MalformedImageId(ValueError):
    """EC2 rejected an image id as malformed: bad input, not worth a retry."""


class TagLimitExceeded(RuntimeError):
    """The resource already has the maximum number of tags: permanent until someone removes some."""


def to_image_facts(raw: ImageTypeDef, region: str) -> ImageFacts:
    ebs = [mapping["Ebs"] for mapping in raw.get("BlockDeviceMappings", []) if mapping.get("Ebs", {}).get("SnapshotId")]
    snapshots = tuple(volume["SnapshotId"] for volume in ebs)
    sizes = {volume["SnapshotId"]: int(volume["VolumeSize"]) for volume in ebs if volume.get("VolumeSize")}
    return ImageFacts(
        image_id=raw["ImageId"],
        region=region,
        owner_id=str(raw.get("OwnerId", "")),
        name=raw.get("Name", ""),
        state=raw.get("State", "unknown"),
        tags={tag["Key"]: tag.get("Value", "") for tag in raw.get("Tags", [])},
        snapshot_ids=snapshots,
        snapshot_sizes=sizes,
        source_image_id=raw.get("SourceImageId"),
        source_region=raw.get("SourceImageRegion"),
        source_instance_id=raw.get("SourceInstanceId"),
        creation_date=raw.get("CreationDate"),
        deprecation_time=raw.get("DeprecationTime"),
        description=raw.get("Description", ""),
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

    def describe_images(self, image_ids: Sequence[str]) -> dict[str, ImageFacts | None]:
        """Several images in as few calls as possible; None for each one that is gone or malformed."""
        found: dict[str, ImageFacts | None] = {}
        for batch in _batches(image_ids, DESCRIBE_BATCH):
            try:
                response = self._ec2.describe_images(ImageIds=batch, IncludeDisabled=True, IncludeDeprecated=True)
            except ClientError as error:
                if error_code(error) not in IMAGE_GONE_CODES | {"InvalidAMIID.Malformed"}:
                    raise
                # One unknown id fails the whole request (InvalidAMIID.NotFound): ask again by filter, which
                # leaves the unknown ones out instead. One call per id would make an event naming 1,000 ids
                # that no AMI has cost 1,000 DescribeImages calls.
                response = self._ec2.describe_images(
                    Filters=[{"Name": "image-id", "Values": batch}], IncludeDisabled=True, IncludeDeprecated=True
                )
            for raw in response.get("Images", []):
                found[raw["ImageId"]] = to_image_facts(raw, self.region)
        return {image_id: found.get(image_id) for image_id in image_ids}

    def create_tags(self, resource_ids: Sequence[str], tags: Mapping[str, str]) -> None:
        """Write these tags on every resource, in as many calls as CreateTags' limit on ids per call needs
        (each call is idempotent, so a retry after a partial failure writes the same tags again)."""
        if not resource_ids or not tags:
            return
        for batch in _batches(resource_ids, MAX_RESOURCES_PER_TAG_CALL):
            try:
                self._ec2.create_tags(
                    Resources=batch, Tags=[{"Key": key, "Value": value} for key, value in tags.items()]
                )
            except ClientError as error:
                if error_code(error) == "TagLimitExceeded":
                    raise TagLimitExceeded(str(error)) from error
                raise

    def delete_tags(self, resource_ids: Sequence[str], keys: Sequence[str]) -> None:
        """Delete these keys, whatever their value (a key is always named: no key would delete every tag)."""
        if not resource_ids or not keys:
            return
        for batch in _batches(resource_ids, MAX_RESOURCES_PER_TAG_CALL):
            self._ec2.delete_tags(Resources=batch, Tags=[{"Key": key} for key in keys])

    # ---- snapshots -----------------------------------------------------------------------------

    def describe_snapshots(self, snapshot_ids: Sequence[str]) -> dict[str, SnapshotFacts]:
        """The snapshots that still exist among `snapshot_ids` (one call; a filter where some are gone)."""
        if not snapshot_ids:
            return {}
        try:
            pages = self._ec2.get_paginator("describe_snapshots").paginate(SnapshotIds=list(snapshot_ids))
            return {facts.snapshot_id: facts for facts in self._snapshot_pages(pages)}
        except ClientError as error:
            if error_code(error) != "InvalidSnapshot.NotFound":
                raise
        # One missing id fails a SnapshotIds request; a snapshot-id filter just leaves it out.
        found: dict[str, SnapshotFacts] = {}
        for batch in _batches(snapshot_ids, FILTER_VALUES_PER_CALL):
            pages = self._ec2.get_paginator("describe_snapshots").paginate(
                Filters=[{"Name": "snapshot-id", "Values": batch}],
                PaginationConfig={"PageSize": SNAPSHOTS_PAGE_SIZE},
            )
            found.update((facts.snapshot_id, facts) for facts in self._snapshot_pages(pages))
        return found

    def find_snapshots_by_description(self, image_id: str) -> list[SnapshotFacts]:
        """This account's snapshots whose description names `image_id` (both AWS formats, one paged call)."""
        pages = self._ec2.get_paginator("describe_snapshots").paginate(
            OwnerIds=["self"],
            Filters=[{"Name": "description", "Values": description_filters(image_id)}],
            PaginationConfig={"PageSize": SNAPSHOTS_PAGE_SIZE},
        )
        return list(self._snapshot_pages(pages))

    @staticmethod
    def _snapshot_pages(pages: Iterable[DescribeSnapshotsResultTypeDef]) -> Iterator[SnapshotFacts]:
        for page in pages:
            for raw in page.get("Snapshots", []):
                yield SnapshotFacts(
                    snapshot_id=raw["SnapshotId"],
                    owner_id=str(raw.get("OwnerId", "")),
                    state=raw.get("State", "unknown"),
                    volume_size_gb=int(raw.get("VolumeSize", 0)),
                    start_time=raw["StartTime"],
                    description=raw.get("Description", ""),
                    tags={tag["Key"]: tag.get("Value", "") for tag in raw.get("Tags", [])},
                )

    def images_using_snapshots(self, snapshot_ids: Sequence[str]) -> dict[str, dict[str, str]]:
        """Snapshot -> {AMI id: state} of the AMIs (disabled and deprecated included) whose block device
        mappings use it."""
        users: dict[str, dict[str, str]] = {snapshot_id: {} for snapshot_id in snapshot_ids}
        for batch in _batches(snapshot_ids, FILTER_VALUES_PER_CALL):
            pages = self._ec2.get_paginator("describe_images").paginate(
                Filters=[{"Name": "block-device-mapping.snapshot-id", "Values": batch}],
                IncludeDisabled=True,
                IncludeDeprecated=True,
                PaginationConfig={"PageSize": IMAGES_PAGE_SIZE},
            )
            for page in pages:
                for raw in page.get("Images", []):
                    for snapshot_id in to_image_facts(raw, self.region).snapshot_ids:
                        if snapshot_id in users:
                            users[snapshot_id][raw["ImageId"]] = raw.get("State", "unknown")
        return users

    def delete_snapshot(self, snapshot_id: str) -> None:
        self._ec2.delete_snapshot(SnapshotId=snapshot_id)

    def deregister_image(self, image_id: str) -> None:
        self._ec2.deregister_image(ImageId=image_id)

    def disable_image(self, image_id: str) -> None:
        self._ec2.disable_image(ImageId=image_id)

    def enable_image(self, image_id: str) -> None:
        self._ec2.enable_image(ImageId=image_id)

    def enable_deprecation(self, image_id: str, deprecate_at: datetime) -> None:
        self._ec2.enable_image_deprecation(ImageId=image_id, DeprecateAt=deprecate_at)

    def disable_deprecation(self, image_id: str) -> None:
        self._ec2.disable_image_deprecation(ImageId=image_id)

    # ---- replication ---------------------------------------------------------------------------

    def copy_image(self, request: CopyRequest) -> str:
        """CopyImage into this region (the destination), tagged with its lineage as it is created. The user tags
        of the source come along (CopyImageTags); launch permissions do not (see `share_image`)."""
        parameters: CopyImageRequestTypeDef = {
            "SourceImageId": request.source_image_id,
            "SourceRegion": request.source_region,
            "ClientToken": request.client_token,
            "Name": request.name,
            "CopyImageTags": True,
            "TagSpecifications": [
                {"ResourceType": kind, "Tags": [{"Key": k, "Value": v} for k, v in request.tags.items()]}
                for kind in ("image", "snapshot")
            ],
        }
        if request.description:
            parameters["Description"] = request.description
        if request.encrypted:
            parameters["Encrypted"] = True
            if request.kms_key_id:
                parameters["KmsKeyId"] = request.kms_key_id
        response = self._ec2.copy_image(**parameters)
        return str(response["ImageId"])

    def find_copies(self, source_image_id: str, source_region: str) -> list[ImageFacts]:
        """This account's live AMIs in this region copied from the source: pending or available (DescribeImages
        still lists an AMI for a while after it is deregistered or fails; disabled ones are left out)."""
        pages = self._ec2.get_paginator("describe_images").paginate(
            Owners=["self"],
            Filters=[
                {"Name": "source-image-id", "Values": [source_image_id]},
                {"Name": "source-image-region", "Values": [source_region]},
                {"Name": "state", "Values": ["pending", "available"]},
            ],
            IncludeDeprecated=True,
            PaginationConfig={"PageSize": IMAGES_PAGE_SIZE},
        )
        return [to_image_facts(raw, self.region) for page in pages for raw in page.get("Images", [])]

    def share_image(self, image_id: str, sharing: Sharing) -> bool:
        """Add launch permissions for the accounts, organizations and OUs (one call; adding an existing
        permission is a no-op). False when there is nothing to share with."""
        permissions: list[LaunchPermissionTypeDef] = [{"UserId": account} for account in sharing.accounts]
        permissions += [{"OrganizationArn": arn} for arn in sharing.organization_arns]
        permissions += [{"OrganizationalUnitArn": arn} for arn in sharing.ou_arns]
        if not permissions:
            return False
        self._ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": permissions})
        return True


def _batches(ids: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])
