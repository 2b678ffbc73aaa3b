"""Parser models for the EventBridge events the governance Lambdas receive.

Field names follow what AWS delivers: CloudTrail records (`AWS API Call via CloudTrail`) keep their
lowerCamel request parameters with `items` lists; `EC2 AMI State Change` uses PascalCase.
Only the fields the product reads are typed; everything else is allowed and ignored. Ids and region names must
have AWS's own shape (models/ids.py), and a call must name what it acts on: anything else is a malformed event,
dropped before any AWS call.

The envelope mirrors Powertools' `EventBridgeModel` field for field. It is declared here rather
than imported because importing anything under `aws_lambda_powertools.utilities.parser` loads every
event model Powertools ships (about 170 ms of cold start on the benchmark machine, see README).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ami_governance.models.ids import ImageId, InstanceId, RegionName, is_image_id

# The names AWS gives the events the product follows: the one list the Lambdas and the stacks' event patterns
# (stacks/event_patterns.py) share, so a rule cannot route a call the code does not know, or miss one it handles.
EC2_SOURCE: Final = "aws.ec2"  # `source` of every EC2 event on EventBridge, CloudTrail's included
EC2_EVENT_SOURCE: Final = "ec2.amazonaws.com"  # CloudTrail's `eventSource` of an EC2 API call
CLOUDTRAIL_DETAIL_TYPE: Final = "AWS API Call via CloudTrail"
AMI_STATE_CHANGE_DETAIL_TYPE: Final = "EC2 AMI State Change"

# EC2 API calls by CloudTrail `eventName`: those a Lambda names on its own, then the groups the rules route.
CREATE_IMAGE: Final = "CreateImage"
DEREGISTER_IMAGE: Final = "DeregisterImage"
CREATE_TAGS: Final = "CreateTags"
DELETE_TAGS: Final = "DeleteTags"
MODIFY_IMAGE_ATTRIBUTE: Final = "ModifyImageAttribute"
# The attribute of ModifyImageAttribute (CloudTrail's `requestParameters.attributeType`) that shares an AMI.
LAUNCH_PERMISSION_ATTRIBUTE: Final = "launchPermission"
# Calls that bring a new AMI into existence (the AMI is still pending when the call's event arrives). Tuples, not
# sets: the patterns list them in this order, so the synthesized template does not change from one synth to the next.
NEW_IMAGE_CALLS: Final = (CREATE_IMAGE, "RegisterImage", "CopyImage", "ImportImage", "CreateRestoreImageTask")
# Calls that change an existing AMI's lifecycle or sharing.
IMAGE_LIFECYCLE_CALLS: Final = (
    DEREGISTER_IMAGE,
    "DisableImage",
    "EnableImage",
    "EnableImageDeprecation",
    "DisableImageDeprecation",
    MODIFY_IMAGE_ATTRIBUTE,
)
TAG_CALLS: Final = (CREATE_TAGS, DELETE_TAGS)

# EventBridge and CloudTrail ids are UUIDs; the cap keeps a hostile one out of tags, records and logs.
EVENT_ID_MAX_LENGTH = 128
# EC2's limits for a tag ("Tag your Amazon EC2 resources": key 128, value 256 characters).
TAG_KEY_MAX_LENGTH = 128
TAG_VALUE_MAX_LENGTH = 256
# CreateTags and DeleteTags take at most 1,000 resource ids (EC2 API Reference): a successful call's record names no
# more. The cap bounds the work one event makes (its DescribeImages calls are one or two per 100 AMI ids).
TAG_CALL_MAX_RESOURCES = 1000


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


DetailT = TypeVar("DetailT")


class EventBridgeModel(_Lenient, Generic[DetailT]):
    """The EventBridge envelope (same fields and aliases as Powertools' EventBridgeModel)."""

    version: str
    id: str = Field(max_length=EVENT_ID_MAX_LENGTH)
    source: str
    account: str
    time: datetime
    region: RegionName
    resources: list[str]
    detail_type: str = Field(alias="detail-type")
    detail: DetailT
    replay_name: str | None = Field(default=None, alias="replay-name")


class SessionIssuer(_Lenient):
    type: str | None = None
    arn: str | None = None


class SessionContext(_Lenient):
    session_issuer: SessionIssuer | None = Field(default=None, alias="sessionIssuer")


class UserIdentity(_Lenient):
    type: str | None = None
    arn: str | None = None
    account_id: str | None = Field(default=None, alias="accountId")
    invoked_by: str | None = Field(default=None, alias="invokedBy")
    session_context: SessionContext | None = Field(default=None, alias="sessionContext")

    @property
    def principal_arn(self) -> str | None:
        """The stable principal: the role behind an assumed-role session, else the caller's own ARN."""
        issuer = self.session_context.session_issuer if self.session_context else None
        if self.type == "AssumedRole" and issuer is not None and issuer.arn:
            return issuer.arn
        return self.arn


class TagItem(_Lenient):
    key: str = Field(max_length=TAG_KEY_MAX_LENGTH)
    value: str | None = Field(default=None, max_length=TAG_VALUE_MAX_LENGTH)


class TagItems(_Lenient):
    items: list[TagItem] = Field(default_factory=list)


class TagSpecification(_Lenient):
    resource_type: str | None = Field(default=None, alias="resourceType")
    tags: list[TagItem] = Field(default_factory=list)


class TagSpecificationSet(_Lenient):
    items: list[TagSpecification] = Field(default_factory=list)


class ResourceItem(_Lenient):
    # Any resource type may be tagged with an AMI in one call: only `ami-` ids are read (and checked) here.
    resource_id: str = Field(alias="resourceId")


class ResourcesSet(_Lenient):
    items: list[ResourceItem] = Field(default_factory=list, max_length=TAG_CALL_MAX_RESOURCES)


class LaunchPermissionItem(_Lenient):
    # One grantee of ModifyImageAttribute's launchPermission, as CloudTrail writes it: exactly one field is set.
    user_id: str | None = Field(default=None, alias="userId")
    group: str | None = None
    organization_arn: str | None = Field(default=None, alias="organizationArn")
    organizational_unit_arn: str | None = Field(default=None, alias="organizationalUnitArn")


class LaunchPermissionItems(_Lenient):
    items: list[LaunchPermissionItem] = Field(default_factory=list)


class LaunchPermissionModifications(_Lenient):
    """What the caller asked to add and remove. Read for the log only: the AMI's permissions are read back from
    EC2 (a list of changes says nothing of the permissions it did not name, and events may arrive out of order)."""

    add: LaunchPermissionItems | None = None
    remove: LaunchPermissionItems | None = None

    def counts(self) -> dict[str, int]:
        return {"add": len(self.add.items) if self.add else 0, "remove": len(self.remove.items) if self.remove else 0}


class RequestParameters(_Lenient):
    """Union of the request fields of the AMI calls we handle; each call fills only its own."""

    instance_id: InstanceId | None = Field(default=None, alias="instanceId")
    name: str | None = None
    no_reboot: bool | None = Field(default=None, alias="noReboot")
    source_region: RegionName | None = Field(default=None, alias="sourceRegion")
    source_image_id: ImageId | None = Field(default=None, alias="sourceImageId")
    image_id: ImageId | None = Field(default=None, alias="imageId")
    delete_associated_snapshots: bool | None = Field(default=None, alias="deleteAssociatedSnapshots")
    tag_specification_set: TagSpecificationSet | None = Field(default=None, alias="tagSpecificationSet")
    resources_set: ResourcesSet | None = Field(default=None, alias="resourcesSet")
    tag_set: TagItems | None = Field(default=None, alias="tagSet")
    # ModifyImageAttribute: which attribute changed, and for launchPermission the grantees added and removed.
    attribute_type: str | None = Field(default=None, alias="attributeType")
    launch_permission: LaunchPermissionModifications | None = Field(default=None, alias="launchPermission")


class DeletedSnapshot(_Lenient):
    snapshot_id: str | None = Field(default=None, alias="snapshotId")
    return_code: str | None = Field(default=None, alias="returnCode")


class DeleteSnapshotResultSet(_Lenient):
    items: list[DeletedSnapshot] = Field(default_factory=list)


class ResponseElements(_Lenient):
    image_id: ImageId | None = Field(default=None, alias="imageId")
    # DeregisterImage(DeleteAssociatedSnapshots=True): what EC2 did with each snapshot of the AMI.
    delete_snapshot_results: DeleteSnapshotResultSet | None = Field(default=None, alias="deleteSnapshotResultSet")


class CloudTrailDetail(_Lenient):
    event_name: str = Field(alias="eventName")
    event_source: str = Field(alias="eventSource")
    event_time: datetime = Field(alias="eventTime")
    event_id: str = Field(alias="eventID", max_length=EVENT_ID_MAX_LENGTH)
    aws_region: RegionName = Field(alias="awsRegion")
    user_identity: UserIdentity = Field(default_factory=UserIdentity, alias="userIdentity")
    request_parameters: RequestParameters | None = Field(default=None, alias="requestParameters")
    response_elements: ResponseElements | None = Field(default=None, alias="responseElements")
    error_code: str | None = Field(default=None, alias="errorCode")
    error_message: str | None = Field(default=None, alias="errorMessage")

    @model_validator(mode="after")
    def _names_what_it_acts_on(self) -> CloudTrailDetail:
        # A successful call always names its subject; one that does not is hand-made or damaged. (A failed call
        # may name nothing: it is dropped as failed.)
        if self.error_code:
            return self
        params = self.request_parameters
        if self.event_name in (DEREGISTER_IMAGE, MODIFY_IMAGE_ATTRIBUTE) and (
            params is None or params.image_id is None
        ):
            raise ValueError(f"{self.event_name} names no requestParameters.imageId")
        if self.event_name in TAG_CALLS and (
            params is None or params.resources_set is None or not params.resources_set.items
        ):
            raise ValueError(f"{self.event_name} names no resource in requestParameters.resourcesSet")
        return self

    def image_tags_requested(self) -> dict[str, str]:
        """Tags the caller asked to put on the new image (tagSpecificationSet, resourceType=image)."""
        spec_set = self.request_parameters.tag_specification_set if self.request_parameters else None
        if spec_set is None:
            return {}
        return {
            tag.key: tag.value or "" for spec in spec_set.items if spec.resource_type == "image" for tag in spec.tags
        }

    def image_ids_in_resources(self) -> list[str]:
        """AMI ids among a CreateTags/DeleteTags call's resources, once each (other resource types are ignored, and
        so are `ami-` ids of a shape no AMI has: see `invalid_image_ids_in_resources`)."""
        return [resource for resource in self._ami_resources() if is_image_id(resource)]

    def invalid_image_ids_in_resources(self) -> list[str]:
        """The resources that claim to be AMIs (`ami-`) but have a shape no AMI id has: bad input, dropped."""
        return [resource for resource in self._ami_resources() if not is_image_id(resource)]

    def _ami_resources(self) -> list[str]:
        resources = self.request_parameters.resources_set if self.request_parameters else None
        if resources is None:
            return []
        return list(dict.fromkeys(item.resource_id for item in resources.items if item.resource_id.startswith("ami-")))

    def tags_set(self) -> dict[str, str]:
        """The tags a CreateTags call set (key -> value)."""
        tag_set = self.request_parameters.tag_set if self.request_parameters else None
        return {tag.key: tag.value or "" for tag in tag_set.items} if tag_set else {}

    def snapshot_deletions(self) -> dict[str, str] | None:
        """DeregisterImage's answer per snapshot (snapshot id -> ReturnCode), or None when it lists none."""
        results = self.response_elements.delete_snapshot_results if self.response_elements else None
        if results is None:
            return None
        return {item.snapshot_id: item.return_code or "" for item in results.items if item.snapshot_id}

    def changes_launch_permissions(self) -> bool:
        """A ModifyImageAttribute call on the AMI's launch permissions (not its description or IMDS support).
        CloudTrail names the attribute in `attributeType`; a record that lacks it but lists launchPermission
        changes is taken at its word."""
        params = self.request_parameters
        if self.event_name != MODIFY_IMAGE_ATTRIBUTE or params is None:
            return False
        if params.attribute_type is not None:
            return params.attribute_type == LAUNCH_PERMISSION_ATTRIBUTE
        return params.launch_permission is not None

    def tag_keys_changed(self) -> list[str]:
        tag_set = self.request_parameters.tag_set if self.request_parameters else None
        return [tag.key for tag in tag_set.items] if tag_set else []


class CloudTrailImageEvent(EventBridgeModel[CloudTrailDetail]):
    detail_type: Literal["AWS API Call via CloudTrail"] = Field(alias="detail-type")
    detail: CloudTrailDetail


class AmiStateDetail(_Lenient):
    request_id: str | None = Field(default=None, alias="RequestId")
    image_id: ImageId = Field(alias="ImageId")
    state: str = Field(alias="State")
    error_message: str | None = Field(default=None, alias="ErrorMessage")


class AmiStateChangeEvent(EventBridgeModel[AmiStateDetail]):
    detail_type: Literal["EC2 AMI State Change"] = Field(alias="detail-type")
    detail: AmiStateDetail


def detail_type_of(event: Any) -> str | None:
    if isinstance(event, dict):
        value = event.get("detail-type")
        return value if isinstance(value, str) else None
    return None
