"""DescribeImageReferences, which moto 5.2.5 does not implement (NotImplementedError).

The EC2 API reference: "Describes your Amazon Web Services resources that are referencing the specified images",
1 to 10 `ImageIds`, "Either IncludeAllResourceTypes or ResourceTypes must be specified", `MaxResults` at least 5.
Each reference is {ImageId, ResourceType, Arn}, ResourceType one of the model's `ImageReferenceResourceType`.

What the emulator checks, per type:
- `ec2:Instance`: the account's instances in the region launched from the AMI, in every state unless the
  `state-name` option lists states ("Default: All states", ResourceTypeOption doc).
- `ec2:LaunchTemplate`: the `version-depth` most recent versions of each launch template ("The number of launch
  template versions to check, starting from the most recent version ... Default: 10", valid 1-10000). One
  reference per template, with the launch template's ARN, however many of its versions name the AMI.
- `ssm:Parameter`: the account's parameters of data type `aws:ec2:image` whose value is the AMI id.
- `imagebuilder:ImageRecipe` / `imagebuilder:ContainerRecipe`: out of scope, moto has no Image Builder; asked
  for, they find nothing.
ARNs follow the Service Authorization Reference's resource types (`instance/<id>`, `launch-template/<id>`,
`parameter/<name>`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.exceptions import MissingParameterError
from moto.ec2.responses.amis import AmisResponse
from moto.ssm.models import ssm_backends

from emulator.moto_additions._common import check_max_results, invalid_parameter, page

INSTANCE = "ec2:Instance"
LAUNCH_TEMPLATE = "ec2:LaunchTemplate"
SSM_PARAMETER = "ssm:Parameter"
RESOURCE_TYPES = (INSTANCE, LAUNCH_TEMPLATE, SSM_PARAMETER, "imagebuilder:ImageRecipe", "imagebuilder:ContainerRecipe")
INSTANCE_STATES = frozenset({"pending", "running", "shutting-down", "terminated", "stopping", "stopped"})
DEFAULT_VERSION_DEPTH = 10
MAX_IMAGE_IDS = 10


def apply() -> None:
    AmisResponse.describe_image_references = _describe_image_references  # type: ignore[attr-defined]


def _describe_image_references(self: AmisResponse) -> ActionResult:
    image_ids: list[str] = self._get_param("ImageIds", [])
    include_all = bool(self._get_bool_param("IncludeAllResourceTypes", False))
    requested: list[dict[str, Any]] = self._get_param("ResourceTypes", [])
    max_results = self._get_int_param("MaxResults")
    if not image_ids:
        raise MissingParameterError("ImageId")
    if len(image_ids) > MAX_IMAGE_IDS:
        raise invalid_parameter(f"The maximum number of image IDs is {MAX_IMAGE_IDS}, got {len(image_ids)}.")
    if not include_all and not requested:
        raise MissingParameterError("IncludeAllResourceTypes or ResourceTypes")
    check_max_results(max_results, 5, None)
    self.error_on_dryrun()

    options = _options(requested)
    # IncludeAllResourceTypes checks every type; options given in ResourceTypes override its defaults (doc).
    types = RESOURCE_TYPES if include_all else tuple(t for t in RESOURCE_TYPES if t in options)
    wanted = dict.fromkeys(image_ids)
    backend = self.ec2_backend
    references: list[dict[str, str]] = []
    if INSTANCE in types:
        references += _instance_references(backend, wanted, options.get(INSTANCE, {}).get("state-name"))
    if LAUNCH_TEMPLATE in types:
        depth = _version_depth(options.get(LAUNCH_TEMPLATE, {}).get("version-depth"))
        references += _launch_template_references(backend, wanted, depth)
    if SSM_PARAMETER in types:
        references += _parameter_references(backend, wanted)

    items, token = page(references, max_results, self._get_param("NextToken"))
    return ActionResult({"ImageReferences": items, "NextToken": token})


def _instance_references(backend: Any, wanted: Mapping[str, None], states: list[str] | None) -> list[dict[str, str]]:
    arn = f"arn:{backend.partition}:ec2:{backend.region_name}:{backend.account_id}:instance/"
    return [
        {"ImageId": instance.image_id, "ResourceType": INSTANCE, "Arn": arn + instance.id}
        for instance in backend.all_instances()
        if instance.image_id in wanted and instance.state in (states or INSTANCE_STATES)
    ]


def _launch_template_references(backend: Any, wanted: Mapping[str, None], depth: int) -> list[dict[str, str]]:
    arn = f"arn:{backend.partition}:ec2:{backend.region_name}:{backend.account_id}:launch-template/"
    references = []
    for template in backend.launch_templates.values():
        recent = sorted(template.versions, key=lambda v: v.number, reverse=True)[:depth]
        for image_id in dict.fromkeys(v.image_id for v in recent if v.image_id in wanted):
            references.append({"ImageId": image_id, "ResourceType": LAUNCH_TEMPLATE, "Arn": arn + template.id})
    return references


def _parameter_references(backend: Any, wanted: Mapping[str, None]) -> list[dict[str, str]]:
    ssm = ssm_backends[backend.account_id][backend.region_name]
    arn = f"arn:{backend.partition}:ssm:{backend.region_name}:{backend.account_id}:parameter/"
    references = []
    for name, versions in list(ssm._parameters.items()):
        # Public parameters (/aws/service/...) are AWS's, not the caller's resources.
        if not versions or str(name).startswith("/aws/"):
            continue
        parameter = versions[-1]
        if parameter.data_type == "aws:ec2:image" and parameter.value in wanted:
            references.append(
                {"ImageId": parameter.value, "ResourceType": SSM_PARAMETER, "Arn": arn + str(name).lstrip("/")}
            )
    return references


def _options(requested: list[dict[str, Any]]) -> dict[str, dict[str, list[str]]]:
    options: dict[str, dict[str, list[str]]] = {}
    for request in requested:
        resource_type = request.get("ResourceType")
        if resource_type not in RESOURCE_TYPES:
            raise invalid_parameter(f"The resource type '{resource_type}' is not valid.")
        given = options.setdefault(str(resource_type), {})
        for option in request.get("ResourceTypeOptions", []):
            name, values = option.get("OptionName"), [str(v) for v in option.get("OptionValues", [])]
            # "Valid only when ResourceType is ec2:Instance or ec2:LaunchTemplate" (ResourceTypeRequest doc).
            valid = {INSTANCE: "state-name", LAUNCH_TEMPLATE: "version-depth"}.get(str(resource_type))
            if name != valid:
                raise invalid_parameter(f"The option '{name}' is not valid for resource type '{resource_type}'.")
            if name == "state-name" and not set(values) <= INSTANCE_STATES:
                raise invalid_parameter(f"The state-name values {values} are not valid instance states.")
            given[name] = values
    return options


def _version_depth(values: list[str] | None) -> int:
    if not values:
        return DEFAULT_VERSION_DEPTH
    try:
        depth = int(values[0])
    except ValueError:
        depth = 0
    if not 1 <= depth <= 10000:
        raise invalid_parameter(f"The version-depth value {values[0]} is not an integer between 1 and 10000.")
    return depth
