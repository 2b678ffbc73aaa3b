"""AMI launch permissions where moto 5.2.5 departs from the EC2 API.

- DescribeImageAttribute on an AMI moto does not know (never existed, or deregistered) fails with a KeyError
  (HTTP 500 on the server) instead of EC2's `InvalidAMIID.NotFound`, and takes any id without EC2's
  `InvalidAMIID.Malformed` check.
- ModifyImageAttribute's `Attribute=launchPermission` + `OperationType` form keeps only the first of its
  `UserGroups`, `OrganizationArns` and `OrganizationalUnitArns`; EC2 applies every one (botocore's model: each is
  a list, "This parameter can be used only when the Attribute parameter is launchPermission").

The `LaunchPermission={"Add": [...], "Remove": [...]}` form, and DescribeImageAttribute's entries (`UserId`,
`Group: all`, `OrganizationArn`, `OrganizationalUnitArn`), are right in moto and stay its own.
"""

from __future__ import annotations

import re
from typing import Any

from moto.core.responses import ActionResult, EmptyResult
from moto.ec2.exceptions import InvalidAMIIdError, MalformedAMIIdError
from moto.ec2.responses.amis import AmisResponse

# EC2's AMI ids: `ami-` and 8 (older) or 17 hexadecimal characters.
_IMAGE_ID = re.compile(r"ami-(?:[0-9a-f]{8}|[0-9a-f]{17})")

# ModifyImageAttribute's list parameters of the OperationType form -> the LaunchPermission field each one fills.
_GRANTEE_LISTS = {
    "UserGroups": "Group",
    "UserIds": "UserId",
    "OrganizationArns": "OrganizationArn",
    "OrganizationalUnitArns": "OrganizationalUnitArn",
}


def apply() -> None:
    _describe_image_attribute_of_a_known_image()
    _modify_image_attribute_applies_every_grantee()


def _describe_image_attribute_of_a_known_image() -> None:
    original = AmisResponse.describe_image_attribute

    def describe_image_attribute(self: AmisResponse) -> ActionResult:
        image_id = str(self._get_param("ImageId"))
        if not _IMAGE_ID.fullmatch(image_id):
            raise MalformedAMIIdError([image_id])
        if image_id not in self.ec2_backend.amis:
            raise InvalidAMIIdError(image_id)
        return original(self)

    AmisResponse.describe_image_attribute = describe_image_attribute  # type: ignore[method-assign]


def _modify_image_attribute_applies_every_grantee() -> None:
    def modify_image_attribute(self: AmisResponse) -> EmptyResult:
        launch: dict[str, Any] = self._get_param("LaunchPermission", {})
        to_add: list[dict[str, str]] = list(launch.get("Add", []))
        to_remove: list[dict[str, str]] = list(launch.get("Remove", []))
        operation = self._get_param("OperationType")
        if operation in ("add", "remove"):
            target = to_add if operation == "add" else to_remove
            for parameter, field in _GRANTEE_LISTS.items():
                target += [{field: str(value)} for value in self._get_param(parameter, [])]
        self.error_on_dryrun()
        self.ec2_backend.modify_image_attribute(
            ami_id=self._get_param("ImageId"),
            launch_permissions_to_add=to_add,
            launch_permissions_to_remove=to_remove,
        )
        return EmptyResult()

    AmisResponse.modify_image_attribute = modify_image_attribute  # type: ignore[method-assign]
