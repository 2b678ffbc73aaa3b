"""CloudTrail emulation: EC2 API calls on the emulator become the events AWS would put on EventBridge.

Every call the stack subscribes to, successful or failed, becomes an `AWS API Call via CloudTrail` event with
CloudTrail's field names and shapes (lowerCamel `requestParameters` with `items` lists, `responseElements`,
`userIdentity` from the caller's access key, `eventID`, `eventTime`, `awsRegion`). Successful AMI calls are
followed by the `EC2 AMI State Change` event AWS sends.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl
from xml.etree import ElementTree

# AWS's names, spelled here apart from the product's (models/events.py): the emulator stands in for AWS and imports
# nothing of the product, so a misspelt name in the product fails on the emulator as it would in the cloud.
CLOUDTRAIL_DETAIL_TYPE = "AWS API Call via CloudTrail"
AMI_STATE_CHANGE_DETAIL_TYPE = "EC2 AMI State Change"
DEFAULT_ROLE = "PlatformEngineer"

# The state an AMI reports (EC2 AMI State Change) after each successful call. A new AMI (NEW_IMAGE_CALLS) ends in
# the state its model says: a copy may fail after the call succeeded (an unusable KMS key).
NEW_IMAGE_CALLS = frozenset({"CreateImage", "RegisterImage", "CopyImage"})
STATE_AFTER_CALL = {
    "CreateImage": "available",
    "RegisterImage": "available",
    "CopyImage": "available",
    "DeregisterImage": "deregistered",
    "DisableImage": "disabled",
    "EnableImage": "available",
}


@dataclass(frozen=True)
class Caller:
    """Who made a call, from the access key of its signature (see `PrincipalBook`)."""

    access_key: str
    arn: str
    invoked_by: str | None = None

    def user_identity(self, account: str) -> dict[str, Any]:
        identity: dict[str, Any] = {"principalId": f"AIDA{self.access_key.upper()[:16]}", "arn": self.arn,
                                    "accountId": account, "accessKeyId": self.access_key}  # fmt: skip
        assumed = re.fullmatch(r"arn:aws:sts::(\d{12}):assumed-role/([^/]+)/(.+)", self.arn)
        if assumed:
            role_account, role, session = assumed.groups()
            identity["type"] = "AssumedRole"
            identity["principalId"] = f"AROA{role.upper()[:16]}:{session}"
            identity["sessionContext"] = {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": f"AROA{role.upper()[:16]}",
                    "arn": f"arn:aws:iam::{role_account}:role/{role}",
                    "accountId": role_account,
                    "userName": role,
                },
                "attributes": {"creationDate": _now(), "mfaAuthenticated": "false"},
            }
        elif ":root" in self.arn:
            identity["type"] = "Root"
        else:
            identity["type"] = "IAMUser"
            identity["userName"] = self.arn.rsplit("/", 1)[-1]
        if self.invoked_by:
            identity["invokedBy"] = self.invoked_by
        return identity


class PrincipalBook:
    """Access key -> the principal CloudTrail names. Any key works; unknown keys are a session of the default
    role named after the key. `principals` maps keys to ARNs (`invoked-by:<service>` after a space marks a call
    made by an AWS service on its own behalf)."""

    def __init__(self, account: str, principals: Mapping[str, str] | None = None) -> None:
        self.account = account
        self._principals = dict(principals or {})

    def add(self, access_key: str, arn: str) -> None:
        self._principals[access_key] = arn

    def caller(self, access_key: str) -> Caller:
        entry = self._principals.get(access_key)
        if entry is None:
            session = re.sub(r"[^\w+=,.@-]", "-", access_key)[:64] or "anonymous"
            return Caller(access_key, f"arn:aws:sts::{self.account}:assumed-role/{DEFAULT_ROLE}/{session}")
        arn, _, rest = entry.partition(" ")
        invoked_by = rest.removeprefix("invoked-by:") if rest.startswith("invoked-by:") else None
        return Caller(access_key, arn, invoked_by)


@dataclass(frozen=True)
class ApiCall:
    action: str
    region: str
    params: dict[str, Any]  # the query parameters, nested (see `nest`)
    caller: Caller
    user_agent: str
    source_ip: str


def parse_query(body: str) -> dict[str, str]:
    return dict(parse_qsl(body, keep_blank_values=True))


def nest(flat: Mapping[str, str]) -> dict[str, Any]:
    """`TagSpecification.1.Tag.2.Key=x` -> {"TagSpecification": [{"Tag": [None, {"Key": "x"}]}]} (1-based lists)."""
    root: dict[str, Any] = {}
    for key, value in flat.items():
        parts = key.split(".")
        node: Any = root
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            following_is_index = not last and parts[index + 1].isdigit()
            if isinstance(node, list):
                position = int(part) - 1
                while len(node) <= position:
                    node.append(None)
                if last:
                    node[position] = value
                else:
                    if node[position] is None:
                        node[position] = [] if following_is_index else {}
                    node = node[position]
            elif last:
                node[part] = value
            else:
                node = node.setdefault(part, [] if following_is_index else {})
    return root


def _items(values: Any) -> list[Any]:
    return [value for value in (values or []) if value is not None]


def _bool(value: Any) -> bool | None:
    return None if value is None else str(value).lower() == "true"


def _int(value: Any) -> int | None:
    return None if value in (None, "") else int(value)


def _compact(node: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in node.items() if value is not None}


def _tags(values: Any) -> list[dict[str, Any]]:
    return [_compact({"key": tag.get("Key"), "value": tag.get("Value")}) for tag in _items(values)]


def _tag_specifications(params: dict[str, Any]) -> dict[str, Any] | None:
    specs = _items(params.get("TagSpecification"))
    if not specs:
        return None
    return {"items": [{"resourceType": spec.get("ResourceType"), "tags": _tags(spec.get("Tag"))} for spec in specs]}


def _block_device_mappings(params: dict[str, Any]) -> dict[str, Any] | None:
    mappings = _items(params.get("BlockDeviceMapping"))
    if not mappings:
        return None
    items = []
    for mapping in mappings:
        ebs = mapping.get("Ebs")
        items.append(
            _compact(
                {
                    "deviceName": mapping.get("DeviceName"),
                    "virtualName": mapping.get("VirtualName"),
                    "noDevice": mapping.get("NoDevice"),
                    "ebs": None
                    if ebs is None
                    else _compact(
                        {
                            "snapshotId": ebs.get("SnapshotId"),
                            "volumeSize": _int(ebs.get("VolumeSize")),
                            "deleteOnTermination": _bool(ebs.get("DeleteOnTermination")),
                            "volumeType": ebs.get("VolumeType"),
                            "iops": _int(ebs.get("Iops")),
                            "encrypted": _bool(ebs.get("Encrypted")),
                            "kmsKeyId": ebs.get("KmsKeyId"),
                        }
                    ),
                }
            )
        )
    return {"items": items}


def _create_image(p: dict[str, Any]) -> dict[str, Any]:
    return _compact(
        {
            "instanceId": p.get("InstanceId"),
            "name": p.get("Name"),
            "description": p.get("Description"),
            "noReboot": _bool(p.get("NoReboot")) or False,
            "blockDeviceMapping": _block_device_mappings(p),
            "tagSpecificationSet": _tag_specifications(p),
        }
    )


def _register_image(p: dict[str, Any]) -> dict[str, Any]:
    return _compact(
        {
            "name": p.get("Name"),
            "description": p.get("Description"),
            "imageLocation": p.get("ImageLocation"),
            "architecture": p.get("Architecture"),
            "rootDeviceName": p.get("RootDeviceName"),
            "virtualizationType": p.get("VirtualizationType"),
            "enaSupport": _bool(p.get("EnaSupport")),
            "blockDeviceMapping": _block_device_mappings(p),
            "tagSpecificationSet": _tag_specifications(p),
        }
    )


def _copy_image(p: dict[str, Any]) -> dict[str, Any]:
    return _compact(
        {
            "sourceRegion": p.get("SourceRegion"),
            "sourceImageId": p.get("SourceImageId"),
            "name": p.get("Name"),
            "description": p.get("Description"),
            "encrypted": _bool(p.get("Encrypted")),
            "kmsKeyId": p.get("KmsKeyId"),
            "copyImageTags": _bool(p.get("CopyImageTags")),
            "clientToken": p.get("ClientToken"),
            "tagSpecificationSet": _tag_specifications(p),
        }
    )


def _image_only(p: dict[str, Any]) -> dict[str, Any]:
    return _compact({"imageId": p.get("ImageId")})


def _deregister_image(p: dict[str, Any]) -> dict[str, Any]:
    return _compact(
        {"imageId": p.get("ImageId"), "deleteAssociatedSnapshots": _bool(p.get("DeleteAssociatedSnapshots")) or False}
    )


def _tagging(p: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourcesSet": {"items": [{"resourceId": r} for r in _items(p.get("ResourceId"))]},
        "tagSet": {"items": _tags(p.get("Tag"))},
    }


def _image_deprecation(p: dict[str, Any]) -> dict[str, Any]:
    return _compact({"imageId": p.get("ImageId"), "deprecateAt": p.get("DeprecateAt")})


# LaunchPermission's fields (botocore's model) -> CloudTrail's names for them.
_GRANTEE_FIELDS = {
    "UserId": "userId",
    "Group": "group",
    "OrganizationArn": "organizationArn",
    "OrganizationalUnitArn": "organizationalUnitArn",
}


def _modify_image_attribute(p: dict[str, Any]) -> dict[str, Any]:
    # CloudTrail names the attribute changed in `attributeType`, also when the call gave only LaunchPermission.
    launch = p.get("LaunchPermission") or {}
    permissions = {
        verb.lower(): {
            "items": [
                _compact({name: grantee.get(field) for field, name in _GRANTEE_FIELDS.items()})
                for grantee in _items(launch.get(verb))
            ]
        }
        for verb in ("Add", "Remove")
        if _items(launch.get(verb))
    }
    attribute = p.get("Attribute") or ("launchPermission" if permissions else None)
    return _compact({"imageId": p.get("ImageId"), "attributeType": attribute, "launchPermission": permissions or None})


REQUEST_PARAMETERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "CreateImage": _create_image,
    "RegisterImage": _register_image,
    "CopyImage": _copy_image,
    "DeregisterImage": _deregister_image,
    "DisableImage": _image_only,
    "EnableImage": _image_only,
    "EnableImageDeprecation": _image_deprecation,
    "DisableImageDeprecation": _image_only,
    "ModifyImageAttribute": _modify_image_attribute,
    "CreateTags": _tagging,
    "DeleteTags": _tagging,
}
RECORDED_CALLS = frozenset(REQUEST_PARAMETERS)


def _xml_text(root: ElementTree.Element, name: str) -> str | None:
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] == name:
            return element.text
    return None


def _delete_snapshot_results(root: ElementTree.Element) -> dict[str, Any] | None:
    """DeregisterImage(DeleteAssociatedSnapshots=True) answers with `deleteSnapshotResultSet`; CloudTrail writes EC2
    response lists as `{"items": [...]}` with the XML's lowerCamel member names."""
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] != "deleteSnapshotResultSet":
            continue
        items = []
        for item in element:
            fields = {child.tag.rsplit("}", 1)[-1]: child.text for child in item}
            items.append(_compact({"snapshotId": fields.get("snapshotId"), "returnCode": fields.get("returnCode")}))
        return {"items": items}
    return None


def cloudtrail_event(call: ApiCall, account: str, status: int, response_body: str) -> dict[str, Any]:
    """The CloudTrail record of one EC2 call, wrapped as EventBridge delivers it."""
    event_time = _now()
    try:
        root = ElementTree.fromstring(response_body) if response_body.strip() else None
    except ElementTree.ParseError:
        root = None
    request_id = (_xml_text(root, "requestId") or _xml_text(root, "RequestID")) if root is not None else None
    request_id = request_id or str(uuid.uuid4())
    detail: dict[str, Any] = {
        "eventVersion": "1.11",
        "userIdentity": call.caller.user_identity(account),
        "eventTime": event_time,
        "eventSource": "ec2.amazonaws.com",
        "eventName": call.action,
        "awsRegion": call.region,
        "sourceIPAddress": call.caller.invoked_by or call.source_ip,
        "userAgent": call.caller.invoked_by or call.user_agent,
        "requestParameters": REQUEST_PARAMETERS[call.action](call.params),
        "responseElements": None,
        "requestID": request_id,
        "eventID": str(uuid.uuid4()),
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
    }
    if status >= 400:
        detail["errorCode"] = (_xml_text(root, "Code") if root is not None else None) or f"HTTP{status}"
        detail["errorMessage"] = (_xml_text(root, "Message") if root is not None else None) or ""
    else:
        image_id = _xml_text(root, "imageId") if root is not None else None
        detail["responseElements"] = (
            {"requestId": request_id, "imageId": image_id} if image_id else {"requestId": request_id, "_return": True}
        )
        deleted = _delete_snapshot_results(root) if root is not None and call.action == "DeregisterImage" else None
        if deleted is not None:
            detail["responseElements"]["deleteSnapshotResultSet"] = deleted
    return _envelope(CLOUDTRAIL_DETAIL_TYPE, account, call.region, event_time, detail, resources=[])


def image_of_call(event: dict[str, Any]) -> str | None:
    """The AMI a successful call created or acted on, for its state-change event."""
    detail = event["detail"]
    response = detail.get("responseElements") or {}
    return response.get("imageId") or (detail.get("requestParameters") or {}).get("imageId")


def state_change_event(
    image_id: str, state: str, region: str, account: str, request_id: str, error_message: str = ""
) -> dict[str, Any]:
    """`EC2 AMI State Change`; `error_message` is the failed AMI's StateReason message, empty otherwise."""
    return _envelope(
        AMI_STATE_CHANGE_DETAIL_TYPE,
        account,
        region,
        _now(),
        {"RequestId": request_id, "ImageId": image_id, "State": state, "ErrorMessage": error_message},
        resources=[f"arn:aws:ec2:{region}::image/{image_id}"],
    )


def _envelope(
    detail_type: str, account: str, region: str, time: str, detail: dict[str, Any], resources: list[str]
) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": "aws.ec2",
        "account": account,
        "time": time,
        "region": region,
        "resources": resources,
        "detail": detail,
    }


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
