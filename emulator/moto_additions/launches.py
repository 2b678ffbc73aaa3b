"""What a launch leaves behind: DescribeInstanceImageMetadata and the AMI's LastLaunchedTime.

moto 5.2.5 implements neither DescribeInstanceImageMetadata (NotImplementedError) nor LastLaunchedTime: it is absent
from DescribeImages and `DescribeImageAttribute(Attribute='lastLaunchedTime')` fails with AttributeError (a 500).

- DescribeInstanceImageMetadata (EC2 API reference): "Describes the AMI that was used to launch an instance, even
  if the AMI is deprecated, deregistered, made private ... or not allowed." So the AMI's metadata is recorded when
  an instance is launched and reported from that record once the AMI is gone, with State `deregistered`; an AMI the
  emulator never saw (an instance launched before the additions were applied) is reported by its ImageId only.
  `owner-id` and `owner-alias` filter on the AMI's owner; unknown instance ids are `InvalidInstanceID.NotFound`
  ("If you specify an instance ID that is not valid ... an error (InvalidInstanceID.NotFound) is returned");
  `MaxResults` 1-1000, "Default: 1000". `ImageAllowed` is left out: the emulator has no Allowed AMIs setting.
- LastLaunchedTime (Image doc): "The date and time, in ISO 8601 date-time format, when the AMI was last used to
  launch an EC2 instance. When the AMI is used to launch an instance, there is a 24-hour delay before that usage is
  reported." The emulator sets it at the launch, without the delay; `set_last_launched_time` sets it for tests.
"""

from __future__ import annotations

import fnmatch
from datetime import datetime
from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.exceptions import InvalidAMIIdError, InvalidInstanceIdError
from moto.ec2.models import ec2_backends
from moto.ec2.models.amis import Ami
from moto.ec2.models.instances import InstanceBackend
from moto.ec2.responses.amis import AmisResponse
from moto.ec2.responses.instances import InstanceResponse
from moto.ec2.utils import format_timestamp

from emulator.moto_additions._common import check_max_results, invalid_parameter, iso_seconds, now, page

# Filters of DescribeInstanceImageMetadata the emulator evaluates (the model documents these and `image-allowed`).
FILTERS = frozenset(
    {
        "instance-id", "instance-state-name", "instance-type", "availability-zone", "launch-time", "owner-id",
        "owner-alias",
    }
)  # fmt: skip


def apply() -> None:
    _record_launches()
    _last_launched_time_attribute()
    InstanceResponse.describe_instance_image_metadata = _describe_instance_image_metadata  # type: ignore[attr-defined]
    # Read by moto's response serializer as the Image member LastLaunchedTime (None = never launched: omitted).
    Ami.last_launched_time = None  # type: ignore[attr-defined]


def set_last_launched_time(account: str, region: str, image_id: str, when: datetime | None) -> None:
    """Set (or, with None, clear) an AMI's LastLaunchedTime, as AWS would report it a day after a launch."""
    image = ec2_backends[account][region].amis.get(image_id)
    if image is None:
        raise KeyError(f"{image_id} is not an AMI of {account} in {region}")
    image.last_launched_time = iso_seconds(when) if when is not None else None  # type: ignore[attr-defined]


def image_metadata(image: Ami) -> dict[str, Any]:
    """The ImageMetadata members AWS reports for an AMI (botocore's `ImageMetadata` shape)."""
    deprecation = getattr(image, "deprecation_time", None)
    metadata = {
        "ImageId": image.id,
        "Name": image.name,
        "OwnerId": image.owner_id,
        "ImageOwnerAlias": image.owner_alias,
        "State": image.state,
        "CreationDate": format_timestamp(image.creation_date),
        "DeprecationTime": iso_seconds(deprecation) if isinstance(deprecation, datetime) else deprecation,
        "IsPublic": image.is_public,
    }
    return {key: value for key, value in metadata.items() if value is not None}


def _record_launches() -> None:
    original = InstanceBackend.run_instances

    def run_instances(self: Any, *args: Any, **kwargs: Any) -> Any:
        reservation = original(self, *args, **kwargs)
        launched = iso_seconds(now())
        for instance in reservation.instances:
            image = self.amis.get(instance.image_id)
            if image is not None:
                instance.launched_image_metadata = image_metadata(image)  # type: ignore[attr-defined]
                image.last_launched_time = launched
        return reservation

    InstanceBackend.run_instances = run_instances  # type: ignore[method-assign]


def _last_launched_time_attribute() -> None:
    original = AmisResponse.describe_image_attribute

    def describe_image_attribute(self: AmisResponse) -> ActionResult:
        if self._get_param("Attribute") != "lastLaunchedTime":
            return original(self)
        image_id = self._get_param("ImageId")
        self.error_on_dryrun()
        image = self.ec2_backend.amis.get(image_id)
        if image is None:
            raise InvalidAMIIdError(image_id)
        launched = getattr(image, "last_launched_time", None)
        # An AttributeValue without Value when the AMI was never launched (or not within the 24 h lag).
        return ActionResult({"ImageId": image_id, "LastLaunchedTime": {"Value": launched} if launched else {}})

    AmisResponse.describe_image_attribute = describe_image_attribute  # type: ignore[method-assign]


def _describe_instance_image_metadata(self: InstanceResponse) -> ActionResult:
    instance_ids: list[str] = self._get_param("InstanceIds", [])
    filters: dict[str, list[str]] = self._filters_from_querystring()  # type: ignore[assignment]
    max_results = self._get_int_param("MaxResults")
    check_max_results(max_results, 1, 1000)
    for name in filters:
        if name not in FILTERS and not name.startswith("tag:"):
            raise invalid_parameter(f"The filter '{name}' is invalid")
    self.error_on_dryrun()
    backend = self.ec2_backend
    instances = backend.all_instances()
    if instance_ids:
        known = {instance.id for instance in instances}
        missing = [instance_id for instance_id in instance_ids if instance_id not in known]
        if missing:
            raise InvalidInstanceIdError(missing)
        instances = [instance for instance in instances if instance.id in instance_ids]
    items = []
    for instance in instances:
        entry = _metadata_of(backend, instance)
        if _matches(entry, filters):
            items.append(entry)
    # "Default: 1000" (MaxResults doc).
    chosen, token = page(items, max_results or 1000, self._get_param("NextToken"))
    return ActionResult({"InstanceImageMetadata": chosen, "NextToken": token})


def _metadata_of(backend: Any, instance: Any) -> dict[str, Any]:
    image = backend.amis.get(instance.image_id)
    if image is not None:
        metadata = image_metadata(image)
    else:
        recorded = getattr(instance, "launched_image_metadata", None)
        metadata = {**recorded, "State": "deregistered"} if recorded else {"ImageId": instance.image_id}
    tags = backend.tags.get(instance.id, {})
    entry = {
        "InstanceId": instance.id,
        "InstanceType": instance.instance_type,
        "LaunchTime": instance.launch_time,
        "AvailabilityZone": instance.placement.zone,
        "State": {"Code": instance.state_code, "Name": instance.state},
        "OwnerId": instance.owner_id,
        "Tags": [{"Key": key, "Value": value} for key, value in tags.items()],
        "ImageMetadata": metadata,
    }
    return {key: value for key, value in entry.items() if value not in (None, [])}


def _matches(entry: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    image = entry["ImageMetadata"]
    tags = {tag["Key"]: tag["Value"] for tag in entry.get("Tags", [])}
    for name, values in filters.items():
        if name.startswith("tag:"):
            actual: Any = tags.get(name.removeprefix("tag:"))
        else:
            actual = {
                "instance-id": entry["InstanceId"],
                "instance-state-name": entry["State"]["Name"],
                "instance-type": entry.get("InstanceType"),
                "availability-zone": entry.get("AvailabilityZone"),
                "launch-time": _milliseconds(entry["LaunchTime"]) if entry.get("LaunchTime") else None,
                "owner-id": image.get("OwnerId"),
                "owner-alias": image.get("ImageOwnerAlias"),
            }[name]
        # Filter values may use `*` and `?` wildcards (the EC2 API reference's filter convention).
        if actual is None or not any(fnmatch.fnmatchcase(str(actual), value) for value in values):
            return False
    return True


def _milliseconds(moment: datetime) -> str:
    """The filter's `YYYY-MM-DDThh:mm:ss.sssZ` (launch-time doc)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
