"""The report's scan of one (account, region): paged bulk listings into `models.scan` records.

Each listing uses botocore's paginator with the largest page AWS allows, so it costs ceil(N / page) calls (EC2's
unpaginated DescribeImages/DescribeSnapshots would be one call, but the model docs say "We strongly recommend using
only paginated requests. Unpaginated requests are susceptible to throttling and timeouts"). No per-AMI or
per-snapshot call is made here except the two per-candidate methods at the end. A listing that fails (an AWS error
or no answer at all) is recorded in `listing_errors` and the scan goes on with the others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from ami_governance.adapters.call_counter import calls_made
from ami_governance.adapters.clients import client
from ami_governance.adapters.errors import error_code
from ami_governance.models.scan import (
    AutoScalingGroupRecord,
    FleetRecord,
    ImageParameterRecord,
    ImageRecord,
    ImageReference,
    ImageSnapshot,
    InstanceImageMetadataScan,
    InstanceImageRecord,
    InstanceRecord,
    LaunchConfigurationRecord,
    LaunchTemplateRef,
    LaunchTemplateVersionRecord,
    Listing,
    RecycleBinImageRecord,
    RecycleBinSnapshotRecord,
    ReferenceCheck,
    RegionScan,
    SnapshotRecord,
)

if TYPE_CHECKING:
    from mypy_boto3_autoscaling import AutoScalingClient
    from mypy_boto3_autoscaling.type_defs import AutoScalingGroupTypeDef
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import ImageTypeDef, SnapshotTypeDef
    from mypy_boto3_ssm import SSMClient

T = TypeVar("T")

# Page sizes: the largest each API accepts (botocore model ranges and docs; /work notes "report research" 1.1).
IMAGES_PAGE = 1000  # DescribeImages: no range in the model; 1000 is what AWS SDKs' pagination fixes use
SNAPSHOTS_PAGE = 1000  # DescribeSnapshots: 5-1000
INSTANCES_PAGE = 1000  # DescribeInstances: 5-1000
LAUNCH_TEMPLATE_VERSIONS_PAGE = 200  # DescribeLaunchTemplateVersions: 1-200
FLEETS_PAGE = 1000  # DescribeFleets: 1-1000
AUTO_SCALING_PAGE = 100  # DescribeAutoScalingGroups / DescribeLaunchConfigurations MaxRecords: max 100
PARAMETERS_PAGE = 50  # ssm DescribeParameters: 1-50
PARAMETER_NAMES_PER_CALL = 10  # ssm GetParameters: 1-10 names
RECYCLE_BIN_PAGE = 1000  # ListImagesInRecycleBin 1-1000, ListSnapshotsInRecycleBin 5-1000
IMAGE_REFERENCES_IDS = 10  # DescribeImageReferences ImageIds: 1-10
IMAGE_REFERENCES_PAGE = 1000  # MaxResults: min 5, no maximum in the model
INSTANCE_IMAGE_METADATA_PAGE = 1000  # DescribeInstanceImageMetadata: 1-1000
# DescribeImageReferences checks only the 10 most recent versions of a launch template unless told otherwise
# (ResourceTypeOption doc: version-depth "Valid values: Integers between 1 and 10000, Default: 10"): an Auto
# Scaling group pinning an old version would be missed, so ask for the maximum.
LAUNCH_TEMPLATE_VERSION_DEPTH = 10000
# DescribeLaunchTemplateVersions with a template id: the numbered versions of one template per call.
VERSIONS_PER_CALL = 200

IMAGE_PARAMETER_DATA_TYPE = "aws:ec2:image"
# DescribeLaunchTemplateVersions with a named template: the template does not exist, or one asked version does not.
TEMPLATE_GONE_CODES = frozenset({"InvalidLaunchTemplateId.NotFound", "InvalidLaunchTemplateName.NotFoundException"})
VERSION_GONE_CODE = "InvalidLaunchTemplateId.VersionNotFound"


class ListingFailed(Exception):
    def __init__(self, listing: Listing, error: ClientError | BotoCoreError) -> None:
        super().__init__(f"{listing.value}: {describe_error(error)}")
        self.listing = listing
        self.error = error


def describe_error(error: ClientError | BotoCoreError) -> str:
    """AWS's error code and message (or botocore's exception class and text when AWS never answered)."""
    message = str(error.response.get("Error", {}).get("Message", "")) if isinstance(error, ClientError) else str(error)
    return f"{error_code(error)}: {message}"


class RegionScanner:
    """The bulk listings of one (account, region). Clients may be given (an assumed role's, for another account);
    by default they are the Lambda's cached clients for the region."""

    def __init__(
        self,
        account_id: str,
        region: str,
        *,
        ec2: EC2Client | None = None,
        autoscaling: AutoScalingClient | None = None,
        ssm: SSMClient | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.account_id = account_id
        self.region = region
        self._ec2 = ec2 or client("ec2", region, adaptive=True)
        self._autoscaling = autoscaling or client("autoscaling", region, adaptive=True)
        self._ssm = ssm or client("ssm", region, adaptive=True)
        self._now = now
        self._calls_before = self._calls()

    def _calls(self) -> int:
        return sum(calls_made(c) for c in {id(c): c for c in (self._ec2, self._autoscaling, self._ssm)}.values())

    @property
    def api_calls(self) -> int:
        """Requests this scanner's clients sent since it was made (retries included; calls others made with the
        same clients meanwhile too, such as the region's launch-permission reads)."""
        return self._calls() - self._calls_before

    # ---- the bulk scan ----------------------------------------------------------------------------------------

    def scan(self) -> RegionScan:
        errors: dict[str, str] = {}

        def listed(listing: Listing, fetch: Callable[[], T]) -> T | None:
            try:
                return fetch()
            except (ClientError, BotoCoreError) as error:
                errors[listing.value] = describe_error(error)
                return None

        scanned_at = self._now()
        images = listed(Listing.IMAGES, self.images) or ()
        public_ids = listed(Listing.PUBLIC_SNAPSHOTS, self.public_snapshot_ids) or frozenset()
        snapshots = listed(Listing.SNAPSHOTS, lambda: self.snapshots(public_ids)) or ()
        asgs = listed(Listing.AUTO_SCALING_GROUPS, self.auto_scaling_groups) or ()
        fleets = listed(Listing.FLEETS, self.fleets) or ()
        versions = listed(Listing.LAUNCH_TEMPLATE_VERSIONS, self.launch_template_versions) or ()
        pins = [ref for group in asgs for ref in group.launch_templates]
        pins += [ref for fleet in fleets for ref in fleet.launch_templates]
        pinned = listed(Listing.PINNED_LAUNCH_TEMPLATE_VERSIONS, lambda: self.pinned_versions(pins, versions)) or ()
        return RegionScan(
            account_id=self.account_id,
            region=self.region,
            scanned_at=scanned_at,
            images=images,
            snapshots=snapshots,
            instances=listed(Listing.INSTANCES, self.instances) or (),
            launch_template_versions=versions + pinned,
            auto_scaling_groups=asgs,
            fleets=fleets,
            launch_configurations=listed(Listing.LAUNCH_CONFIGURATIONS, self.launch_configurations) or (),
            image_parameters=listed(Listing.SSM_IMAGE_PARAMETERS, self.image_parameters) or (),
            recycle_bin_images=listed(Listing.RECYCLE_BIN_IMAGES, self.recycle_bin_images) or (),
            recycle_bin_snapshots=listed(Listing.RECYCLE_BIN_SNAPSHOTS, self.recycle_bin_snapshots) or (),
            image_block_public_access=listed(Listing.IMAGE_BLOCK_PUBLIC_ACCESS, self.image_block_public_access),
            snapshot_block_public_access=listed(
                Listing.SNAPSHOT_BLOCK_PUBLIC_ACCESS, self.snapshot_block_public_access
            ),
            listing_errors=errors,
        )

    def images(self) -> tuple[ImageRecord, ...]:
        # AWS leaves disabled AMIs out unless IncludeDisabled ("Default: No disabled AMIs are included"): without
        # it their snapshots would look orphaned. IncludeDeprecated is a no-op for an owner's own AMIs (doc), kept
        # so that the listing means the same if the owners ever widen.
        pages = self._ec2.get_paginator("describe_images").paginate(
            Owners=["self"],
            IncludeDisabled=True,
            IncludeDeprecated=True,
            PaginationConfig={"PageSize": IMAGES_PAGE},
        )
        return tuple(
            _image_record(raw)
            for page in pages
            for raw in page.get("Images", [])
            # "Recently deregistered images appear in the returned results for a short interval" (doc).
            if raw.get("State") != "deregistered"
        )

    def public_snapshot_ids(self) -> frozenset[str]:
        pages = self._ec2.get_paginator("describe_snapshots").paginate(
            OwnerIds=["self"], RestorableByUserIds=["all"], PaginationConfig={"PageSize": SNAPSHOTS_PAGE}
        )
        return frozenset(raw["SnapshotId"] for page in pages for raw in page.get("Snapshots", []))

    def snapshots(self, public_ids: frozenset[str] = frozenset()) -> tuple[SnapshotRecord, ...]:
        pages = self._ec2.get_paginator("describe_snapshots").paginate(
            OwnerIds=["self"], PaginationConfig={"PageSize": SNAPSHOTS_PAGE}
        )
        return tuple(
            _snapshot_record(raw, raw["SnapshotId"] in public_ids)
            for page in pages
            for raw in page.get("Snapshots", [])
        )

    def instances(self) -> tuple[InstanceRecord, ...]:
        # No state filter: stopped instances still pin their AMI (terminated ones stay listed about an hour).
        pages = self._ec2.get_paginator("describe_instances").paginate(PaginationConfig={"PageSize": INSTANCES_PAGE})
        return tuple(
            InstanceRecord(
                instance_id=instance["InstanceId"],
                image_id=instance.get("ImageId", ""),
                state=instance.get("State", {}).get("Name", "unknown"),
                launch_time=_utc(instance.get("LaunchTime")),
            )
            for page in pages
            for reservation in page.get("Reservations", [])
            for instance in reservation.get("Instances", [])
        )

    def launch_template_versions(self) -> tuple[LaunchTemplateVersionRecord, ...]:
        """$Latest and $Default of every launch template in bulk: with no template named, "You can specify
        $Latest and $Default in the same request" (DescribeLaunchTemplateVersions doc). ResolveAlias: an image
        given as `resolve:ssm:<parameter>` comes back as the AMI id the parameter holds."""
        pages = self._ec2.get_paginator("describe_launch_template_versions").paginate(
            Versions=["$Latest", "$Default"],
            ResolveAlias=True,
            PaginationConfig={"PageSize": LAUNCH_TEMPLATE_VERSIONS_PAGE},
        )
        raw_versions = [raw for page in pages for raw in page.get("LaunchTemplateVersions", [])]
        # A template whose default is its latest version is listed once for each alias: keep one.
        unique: dict[tuple[str, int], Any] = {}
        for raw in raw_versions:
            unique.setdefault((raw.get("LaunchTemplateId", ""), int(raw.get("VersionNumber", 0))), raw)
        listed_per_template: dict[str, int] = {}
        for template_id, _version in unique:
            listed_per_template[template_id] = listed_per_template.get(template_id, 0) + 1
        records = []
        for (template_id, version), raw in unique.items():
            default = bool(raw.get("DefaultVersion", False))
            # Each template answers its $Default and its $Latest: a non-default version listed here is the latest,
            # and a default version listed alone is both.
            latest = not default or listed_per_template[template_id] == 1
            records.append(_version_record(raw, template_id, version, latest=latest))
        return tuple(records)

    def pinned_versions(
        self, pins: Iterable[LaunchTemplateRef], listed: Sequence[LaunchTemplateVersionRecord]
    ) -> tuple[LaunchTemplateVersionRecord, ...]:
        """The numbered versions Auto Scaling groups and fleets pin that the bulk listing did not return: one call
        per template (numbers cannot be asked for without naming the template)."""
        known = {(record.template_id, record.version) for record in listed}
        known_names = {(record.template_name, record.version) for record in listed}
        wanted: dict[tuple[str, str], set[int]] = {}  # ("id"|"name", value) -> versions
        for ref in pins:
            if not ref.version.isdigit():
                continue  # $Latest / $Default: in the bulk listing
            version = int(ref.version)
            if ref.template_id:
                if (ref.template_id, version) not in known:
                    wanted.setdefault(("id", ref.template_id), set()).add(version)
            elif ref.template_name and (ref.template_name, version) not in known_names:
                wanted.setdefault(("name", ref.template_name), set()).add(version)
        records: list[LaunchTemplateVersionRecord] = []
        for (kind, value), numbers in sorted(wanted.items()):
            ordered = [str(number) for number in sorted(numbers)]
            for start in range(0, len(ordered), VERSIONS_PER_CALL):
                records += self._numbered_versions(kind, value, ordered[start : start + VERSIONS_PER_CALL])
        return tuple(records)

    def _numbered_versions(self, kind: str, value: str, versions: list[str]) -> list[LaunchTemplateVersionRecord]:
        try:
            if kind == "id":
                response = self._ec2.describe_launch_template_versions(
                    LaunchTemplateId=value, Versions=versions, ResolveAlias=True
                )
            else:
                response = self._ec2.describe_launch_template_versions(
                    LaunchTemplateName=value, Versions=versions, ResolveAlias=True
                )
        except ClientError as error:
            code = error_code(error)
            if code in TEMPLATE_GONE_CODES:
                return []  # the template is gone: its versions launch nothing
            if code != VERSION_GONE_CODE:
                raise
            if len(versions) == 1:
                return []  # a deleted version still named by a group or fleet launches nothing
            # One missing version fails the request: ask for each of this batch's versions alone.
            return [record for version in versions for record in self._numbered_versions(kind, value, [version])]
        return [
            _version_record(raw, raw.get("LaunchTemplateId", ""), int(raw.get("VersionNumber", 0)), latest=False)
            for raw in response.get("LaunchTemplateVersions", [])
        ]

    def fleets(self) -> tuple[FleetRecord, ...]:
        # Instant fleets are listed only when asked for by id (DescribeFleets doc); they launch once and are
        # left to the instance listing.
        pages = self._ec2.get_paginator("describe_fleets").paginate(PaginationConfig={"PageSize": FLEETS_PAGE})
        return tuple(_fleet_record(raw) for page in pages for raw in page.get("Fleets", []))

    def auto_scaling_groups(self) -> tuple[AutoScalingGroupRecord, ...]:
        pages = self._autoscaling.get_paginator("describe_auto_scaling_groups").paginate(
            PaginationConfig={"PageSize": AUTO_SCALING_PAGE}
        )
        return tuple(_group_record(raw) for page in pages for raw in page.get("AutoScalingGroups", []))

    def launch_configurations(self) -> tuple[LaunchConfigurationRecord, ...]:
        pages = self._autoscaling.get_paginator("describe_launch_configurations").paginate(
            PaginationConfig={"PageSize": AUTO_SCALING_PAGE}
        )
        return tuple(
            LaunchConfigurationRecord(name=raw["LaunchConfigurationName"], image_id=raw.get("ImageId", ""))
            for page in pages
            for raw in page.get("LaunchConfigurations", [])
        )

    def image_parameters(self) -> tuple[ImageParameterRecord, ...]:
        """SSM parameters of data type aws:ec2:image: DescribeParameters (metadata, 50 a page) then their values,
        GetParameters 10 names a call. GetParametersByPath cannot filter on DataType and pages by 10 over every
        parameter, so it costs more unless an account has almost no parameters."""
        pages = self._ssm.get_paginator("describe_parameters").paginate(
            ParameterFilters=[{"Key": "DataType", "Option": "Equals", "Values": [IMAGE_PARAMETER_DATA_TYPE]}],
            PaginationConfig={"PageSize": PARAMETERS_PAGE},
        )
        names = [raw["Name"] for page in pages for raw in page.get("Parameters", []) if "Name" in raw]
        records: list[ImageParameterRecord] = []
        for batch in _batches(names, PARAMETER_NAMES_PER_CALL):
            response = self._ssm.get_parameters(Names=batch)
            # A parameter deleted between the two calls is in InvalidParameters: it references nothing any more.
            records += [
                ImageParameterRecord(name=raw["Name"], image_id=raw.get("Value", ""))
                for raw in response.get("Parameters", [])
                if "Name" in raw
            ]
        return tuple(sorted(records, key=lambda record: record.name))

    def recycle_bin_images(self) -> tuple[RecycleBinImageRecord, ...]:
        pages = self._ec2.get_paginator("list_images_in_recycle_bin").paginate(
            PaginationConfig={"PageSize": RECYCLE_BIN_PAGE}
        )
        return tuple(
            RecycleBinImageRecord(
                image_id=raw.get("ImageId", ""),
                name=raw.get("Name", ""),
                description=raw.get("Description", ""),
                enter_time=_utc(raw.get("RecycleBinEnterTime")),
                exit_time=_utc(raw.get("RecycleBinExitTime")),
            )
            for page in pages
            for raw in page.get("Images", [])
        )

    def recycle_bin_snapshots(self) -> tuple[RecycleBinSnapshotRecord, ...]:
        pages = self._ec2.get_paginator("list_snapshots_in_recycle_bin").paginate(
            PaginationConfig={"PageSize": RECYCLE_BIN_PAGE}
        )
        return tuple(
            RecycleBinSnapshotRecord(
                snapshot_id=raw.get("SnapshotId", ""),
                description=raw.get("Description", ""),
                volume_id=raw.get("VolumeId"),
                enter_time=_utc(raw.get("RecycleBinEnterTime")),
                exit_time=_utc(raw.get("RecycleBinExitTime")),
            )
            for page in pages
            for raw in page.get("Snapshots", [])
        )

    def image_block_public_access(self) -> str:
        return str(self._ec2.get_image_block_public_access_state()["ImageBlockPublicAccessState"])

    def snapshot_block_public_access(self) -> str:
        return str(self._ec2.get_snapshot_block_public_access_state()["State"])

    # ---- per-candidate calls ----------------------------------------------------------------------------------

    def confirm_references(self, image_ids: Iterable[str]) -> ReferenceCheck:
        """What references each candidate AMI, across every resource type AWS tracks (instances, launch templates
        to the deepest version, SSM parameters, Image Builder recipes): 10 ids a call. A batch that fails leaves
        its ids `unchecked` with the error; the other batches are still asked."""
        candidates = list(dict.fromkeys(image_ids))
        checked: list[str] = []
        unchecked: list[str] = []
        references: list[ImageReference] = []
        errors: dict[str, str] = {}
        for batch in _batches(candidates, IMAGE_REFERENCES_IDS):
            try:
                found = [
                    ImageReference(
                        image_id=raw.get("ImageId", ""),
                        resource_type=raw.get("ResourceType", ""),
                        arn=raw.get("Arn", ""),
                    )
                    for raw in self._image_references(batch)
                ]
            except (ClientError, BotoCoreError) as error:
                unchecked += batch
                errors[Listing.IMAGE_REFERENCES.value] = describe_error(error)
                continue
            checked += batch
            references += found
        return ReferenceCheck(
            checked=tuple(checked), references=tuple(references), unchecked=tuple(unchecked), listing_errors=errors
        )

    def _image_references(self, batch: list[str]) -> Iterator[Any]:
        # IncludeAllResourceTypes with ResourceTypes: "If you also specify ResourceTypes with ResourceTypeOptions,
        # your specified values override the default values" (doc), so every type is checked, templates deeper.
        pages = self._ec2.get_paginator("describe_image_references").paginate(
            ImageIds=batch,
            IncludeAllResourceTypes=True,
            ResourceTypes=[
                {
                    "ResourceType": "ec2:LaunchTemplate",
                    "ResourceTypeOptions": [
                        {"OptionName": "version-depth", "OptionValues": [str(LAUNCH_TEMPLATE_VERSION_DEPTH)]}
                    ],
                }
            ],
            PaginationConfig={"PageSize": IMAGE_REFERENCES_PAGE},
        )
        # Fully read before the caller builds records, so a failing page fails the whole batch.
        return iter([raw for page in pages for raw in page.get("ImageReferences", [])])

    def instance_image_metadata(self) -> InstanceImageMetadataScan:
        """The AMI every instance was launched from, with its owner, also once the AMI is gone."""
        try:
            pages = self._ec2.get_paginator("describe_instance_image_metadata").paginate(
                PaginationConfig={"PageSize": INSTANCE_IMAGE_METADATA_PAGE}
            )
            raws = [raw for page in pages for raw in page.get("InstanceImageMetadata", [])]
        except (ClientError, BotoCoreError) as error:
            return InstanceImageMetadataScan(
                listing_errors={Listing.INSTANCE_IMAGE_METADATA.value: describe_error(error)}
            )
        records = []
        for raw in raws:
            image = raw.get("ImageMetadata", {})
            records.append(
                InstanceImageRecord(
                    instance_id=raw.get("InstanceId", ""),
                    state=raw.get("State", {}).get("Name", "unknown"),
                    launch_time=_utc(raw.get("LaunchTime")),
                    image_id=image.get("ImageId", ""),
                    image_owner_id=image.get("OwnerId"),
                    image_owner_alias=image.get("ImageOwnerAlias"),
                    image_name=image.get("Name"),
                    image_state=image.get("State"),
                )
            )
        return InstanceImageMetadataScan(records=tuple(records))


# ---- records from responses ---------------------------------------------------------------------------------


def _image_record(raw: ImageTypeDef) -> ImageRecord:
    snapshots = tuple(
        ImageSnapshot(
            snapshot_id=mapping["Ebs"]["SnapshotId"],
            volume_size_gib=int(mapping["Ebs"]["VolumeSize"]) if mapping["Ebs"].get("VolumeSize") else None,
        )
        for mapping in raw.get("BlockDeviceMappings", [])
        if mapping.get("Ebs", {}).get("SnapshotId")
    )
    return ImageRecord(
        image_id=raw["ImageId"],
        name=raw.get("Name", ""),
        owner_id=str(raw.get("OwnerId", "")),
        state=raw.get("State", "unknown"),
        creation_date=_parse_time(raw.get("CreationDate")),
        description=raw.get("Description", ""),
        tags=_tags(raw.get("Tags", [])),
        snapshots=snapshots,
        public=bool(raw.get("Public", False)),
        last_launched_time=_parse_time(raw.get("LastLaunchedTime")),
        source_image_id=raw.get("SourceImageId"),
        source_image_region=raw.get("SourceImageRegion"),
        deprecation_time=_parse_time(raw.get("DeprecationTime")),
    )


def _snapshot_record(raw: SnapshotTypeDef, public: bool) -> SnapshotRecord:
    return SnapshotRecord(
        snapshot_id=raw["SnapshotId"],
        owner_id=str(raw.get("OwnerId", "")),
        state=raw.get("State", "unknown"),
        volume_size_gib=int(raw.get("VolumeSize", 0)),
        start_time=_utc(raw.get("StartTime")),
        description=raw.get("Description", ""),
        tags=_tags(raw.get("Tags", [])),
        storage_tier=raw.get("StorageTier", "standard"),
        public=public,
        volume_id=raw.get("VolumeId"),
    )


def _version_record(raw: Any, template_id: str, version: int, *, latest: bool) -> LaunchTemplateVersionRecord:
    return LaunchTemplateVersionRecord(
        template_id=template_id,
        template_name=raw.get("LaunchTemplateName", ""),
        version=version,
        default=bool(raw.get("DefaultVersion", False)),
        latest=latest,
        image_id=raw.get("LaunchTemplateData", {}).get("ImageId"),
    )


def _group_record(raw: AutoScalingGroupTypeDef) -> AutoScalingGroupRecord:
    specifications: list[Any] = []
    if "LaunchTemplate" in raw:
        specifications.append(raw["LaunchTemplate"])
    mixed = raw.get("MixedInstancesPolicy", {}).get("LaunchTemplate", {})
    if "LaunchTemplateSpecification" in mixed:
        specifications.append(mixed["LaunchTemplateSpecification"])
    # An override may name another template than the policy's (Auto Scaling "LaunchTemplateOverrides" doc).
    specifications += [
        override["LaunchTemplateSpecification"]
        for override in mixed.get("Overrides", [])
        if "LaunchTemplateSpecification" in override
    ]
    refs = tuple(
        dict.fromkeys(
            LaunchTemplateRef(
                template_id=spec.get("LaunchTemplateId"),
                template_name=spec.get("LaunchTemplateName"),
                # "Default: $Default" when the group names no version (LaunchTemplateSpecification doc).
                version=str(spec.get("Version") or "$Default"),
            )
            for spec in specifications
        )
    )
    return AutoScalingGroupRecord(
        name=raw["AutoScalingGroupName"],
        launch_configuration_name=raw.get("LaunchConfigurationName"),
        launch_templates=refs,
    )


def _fleet_record(raw: Any) -> FleetRecord:
    refs: list[LaunchTemplateRef] = []
    image_ids: list[str] = []
    for config in raw.get("LaunchTemplateConfigs", []):
        spec = config.get("LaunchTemplateSpecification", {})
        if spec:
            refs.append(
                LaunchTemplateRef(
                    template_id=spec.get("LaunchTemplateId"),
                    template_name=spec.get("LaunchTemplateName"),
                    version=str(spec.get("Version") or "$Default"),
                )
            )
        image_ids += [override["ImageId"] for override in config.get("Overrides", []) if override.get("ImageId")]
    return FleetRecord(
        fleet_id=raw.get("FleetId", ""),
        fleet_type=raw.get("Type", ""),
        state=raw.get("FleetState", ""),
        launch_templates=tuple(dict.fromkeys(refs)),
        image_ids=tuple(dict.fromkeys(image_ids)),
    )


def _tags(tags: Iterable[Any]) -> dict[str, str]:
    return {str(tag["Key"]): str(tag.get("Value", "")) for tag in tags if "Key" in tag}


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


def _parse_time(value: str | None) -> datetime | None:
    """EC2 gives some image times as ISO 8601 strings (CreationDate, DeprecationTime, LastLaunchedTime)."""
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _batches(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])
