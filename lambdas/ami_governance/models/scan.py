"""What the report's scan learns about one (account, region): plain, frozen data that round-trips through JSON.

No boto3 response is kept: each record holds only what the findings need, so a scan unit stays small enough to be
passed between Step Functions states when the report fans out over an Organization's accounts and regions. Every
timestamp is an aware datetime in UTC. A listing that failed is named in `listing_errors` with AWS's error: its
records are then missing, and `complete` is False (never an empty list passed off as "none").
"""

from __future__ import annotations

import dataclasses
import json
import types
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum, StrEnum
from typing import Any, Self, TypeVar, Union, get_args, get_origin, get_type_hints

SCHEMA_VERSION = 1


class Listing(StrEnum):
    """The bulk listings of a scan; the keys of `listing_errors`."""

    IMAGES = "images"  # ec2:DescribeImages, owner self
    SNAPSHOTS = "snapshots"  # ec2:DescribeSnapshots, owner self
    PUBLIC_SNAPSHOTS = "public-snapshots"  # ec2:DescribeSnapshots, owner self, restorable by all
    INSTANCES = "instances"  # ec2:DescribeInstances
    LAUNCH_TEMPLATE_VERSIONS = "launch-template-versions"  # ec2:DescribeLaunchTemplateVersions $Latest + $Default
    PINNED_LAUNCH_TEMPLATE_VERSIONS = "pinned-launch-template-versions"  # numbered versions groups and fleets pin
    FLEETS = "fleets"  # ec2:DescribeFleets
    AUTO_SCALING_GROUPS = "auto-scaling-groups"  # autoscaling:DescribeAutoScalingGroups
    LAUNCH_CONFIGURATIONS = "launch-configurations"  # autoscaling:DescribeLaunchConfigurations
    SSM_IMAGE_PARAMETERS = "ssm-image-parameters"  # ssm:DescribeParameters (DataType aws:ec2:image) + GetParameters
    RECYCLE_BIN_IMAGES = "recycle-bin-images"  # ec2:ListImagesInRecycleBin
    RECYCLE_BIN_SNAPSHOTS = "recycle-bin-snapshots"  # ec2:ListSnapshotsInRecycleBin
    IMAGE_BLOCK_PUBLIC_ACCESS = "image-block-public-access"  # ec2:GetImageBlockPublicAccessState
    SNAPSHOT_BLOCK_PUBLIC_ACCESS = "snapshot-block-public-access"  # ec2:GetSnapshotBlockPublicAccessState
    IMAGE_REFERENCES = "image-references"  # ec2:DescribeImageReferences (per candidate)
    INSTANCE_IMAGE_METADATA = "instance-image-metadata"  # ec2:DescribeInstanceImageMetadata


@dataclass(frozen=True)
class ImageSnapshot:
    """One EBS block device of an AMI: the snapshot it is made from and the volume size (GiB) it declares."""

    snapshot_id: str
    volume_size_gib: int | None = None


@dataclass(frozen=True)
class ImageRecord:
    image_id: str
    name: str
    owner_id: str
    state: str  # available | pending | failed | disabled | ... (disabled ones are listed: IncludeDisabled)
    creation_date: datetime | None = None
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    snapshots: tuple[ImageSnapshot, ...] = ()
    public: bool = False
    last_launched_time: datetime | None = None  # AWS reports a launch up to 24 h late; absent = never since 2017
    source_image_id: str | None = None
    source_image_region: str | None = None
    deprecation_time: datetime | None = None

    @property
    def snapshot_ids(self) -> tuple[str, ...]:
        return tuple(snapshot.snapshot_id for snapshot in self.snapshots)


@dataclass(frozen=True)
class SnapshotRecord:
    snapshot_id: str
    owner_id: str
    state: str
    volume_size_gib: int
    start_time: datetime | None = None
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    storage_tier: str = "standard"  # standard | archive
    public: bool = False  # restorable by everyone (from the RestorableByUserIds=['all'] listing)
    volume_id: str | None = None


@dataclass(frozen=True)
class InstanceRecord:
    instance_id: str
    image_id: str
    state: str
    launch_time: datetime | None = None


@dataclass(frozen=True)
class LaunchTemplateVersionRecord:
    template_id: str
    template_name: str
    version: int
    default: bool
    latest: bool
    image_id: str | None = None  # resolved (ResolveAlias): never `resolve:ssm:...`


@dataclass(frozen=True)
class LaunchTemplateRef:
    """A launch template an Auto Scaling group or fleet launches from; `version` as it names it ($Default when
    it names none, as Auto Scaling does)."""

    template_id: str | None
    template_name: str | None
    version: str


@dataclass(frozen=True)
class AutoScalingGroupRecord:
    name: str
    launch_configuration_name: str | None = None
    launch_templates: tuple[LaunchTemplateRef, ...] = ()  # the group's own, its mixed policy's and overrides'


@dataclass(frozen=True)
class FleetRecord:
    """An EC2 Fleet: the launch templates (and versions) it launches from, and the AMIs its overrides name
    (`ImageId` overrides exist for instant fleets only)."""

    fleet_id: str
    fleet_type: str
    state: str
    launch_templates: tuple[LaunchTemplateRef, ...] = ()
    image_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class LaunchConfigurationRecord:
    name: str
    image_id: str


@dataclass(frozen=True)
class ImageParameterRecord:
    """An SSM parameter of data type aws:ec2:image and the AMI id it holds."""

    name: str
    image_id: str


@dataclass(frozen=True)
class RecycleBinImageRecord:
    image_id: str
    name: str = ""
    description: str = ""
    enter_time: datetime | None = None
    exit_time: datetime | None = None


@dataclass(frozen=True)
class RecycleBinSnapshotRecord:
    snapshot_id: str
    description: str = ""
    volume_id: str | None = None
    enter_time: datetime | None = None
    exit_time: datetime | None = None


class ScanResult:
    """What one scan call returns: it round-trips through JSON exactly (a fan-out passes it between steps), and it
    is complete only when no listing failed (`listing_errors`: Listing value -> "Code: message")."""

    listing_errors: dict[str, str]

    @property
    def complete(self) -> bool:
        return not self.listing_errors

    def to_json(self) -> str:
        return to_json(self)

    @classmethod
    def from_json(cls, text: str) -> Self:
        return from_json(cls, text)


@dataclass(frozen=True)
class RegionScan(ScanResult):
    """Everything the bulk listings of one (account, region) returned."""

    account_id: str
    region: str
    scanned_at: datetime
    images: tuple[ImageRecord, ...] = ()
    snapshots: tuple[SnapshotRecord, ...] = ()
    instances: tuple[InstanceRecord, ...] = ()
    launch_template_versions: tuple[LaunchTemplateVersionRecord, ...] = ()
    auto_scaling_groups: tuple[AutoScalingGroupRecord, ...] = ()
    fleets: tuple[FleetRecord, ...] = ()
    launch_configurations: tuple[LaunchConfigurationRecord, ...] = ()
    image_parameters: tuple[ImageParameterRecord, ...] = ()
    recycle_bin_images: tuple[RecycleBinImageRecord, ...] = ()
    recycle_bin_snapshots: tuple[RecycleBinSnapshotRecord, ...] = ()
    image_block_public_access: str | None = None  # block-new-sharing | unblocked; None when the call failed
    snapshot_block_public_access: str | None = None  # block-all-sharing | block-new-sharing | unblocked
    listing_errors: dict[str, str] = field(default_factory=dict)  # Listing value -> "Code: message"
    schema_version: int = SCHEMA_VERSION


@dataclass(frozen=True)
class ImageReference:
    image_id: str
    resource_type: str  # ec2:Instance | ec2:LaunchTemplate | ssm:Parameter | imagebuilder:ImageRecipe | ...
    arn: str


@dataclass(frozen=True)
class ReferenceCheck(ScanResult):
    """DescribeImageReferences over candidate AMIs. `unchecked`: candidates whose call failed (error in
    `listing_errors`): nothing is known about them, so they are not "unreferenced"."""

    checked: tuple[str, ...] = ()
    references: tuple[ImageReference, ...] = ()
    unchecked: tuple[str, ...] = ()
    listing_errors: dict[str, str] = field(default_factory=dict)

    def referenced(self, image_id: str) -> bool:
        return any(reference.image_id == image_id for reference in self.references)


@dataclass(frozen=True)
class InstanceImageRecord:
    """The AMI an instance was launched from, as DescribeInstanceImageMetadata keeps it (also once it is gone)."""

    instance_id: str
    state: str
    launch_time: datetime | None
    image_id: str
    image_owner_id: str | None = None
    image_owner_alias: str | None = None
    image_name: str | None = None
    image_state: str | None = None


@dataclass(frozen=True)
class InstanceImageMetadataScan(ScanResult):
    records: tuple[InstanceImageRecord, ...] = ()
    listing_errors: dict[str, str] = field(default_factory=dict)


# ---- JSON codec: frozen dataclasses of str, int, float, bool, None, enums, datetime, tuples, str dicts, records ----

T = TypeVar("T")


def to_json(record: Any) -> str:
    return json.dumps(_encode(record), sort_keys=True, separators=(",", ":"))


def from_json(cls: type[T], text: str) -> T:
    decoded: T = _decode(cls, json.loads(text))
    return decoded


def _encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive datetime in a scan record: {value!r}")
        return value.astimezone(UTC).isoformat()
    if isinstance(value, tuple | list):
        return [_encode(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _encode(item) for key, item in value.items()}
    return value


def _decode(annotation: Any, value: Any) -> Any:  # noqa: PLR0911 - one return per kind of annotation
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        options = [option for option in get_args(annotation) if option is not type(None)]
        return None if value is None else _decode(options[0], value)
    if origin is tuple:
        (item_type, _ellipsis) = get_args(annotation)
        return tuple(_decode(item_type, item) for item in value)
    if origin is dict:
        _key_type, item_type = get_args(annotation)
        return {str(key): _decode(item_type, item) for key, item in value.items()}
    if annotation is datetime:
        return datetime.fromisoformat(value)
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return annotation(value)
    if annotation is float and isinstance(value, int):
        return float(value)
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        hints = get_type_hints(annotation)
        kwargs = {f.name: _decode(hints[f.name], value[f.name]) for f in dataclasses.fields(annotation) if f.init}
        return annotation(**kwargs)
    return value
