"""SSM DescribeParameters with the `DataType` filter, which moto 5.2.5 refuses (its key pattern lacks DataType).

botocore's `ParameterStringFilterKey` pattern is `tag:.+|Name|Type|KeyId|Path|Label|Tier|DataType`, and the
ParameterStringFilter doc: "For DescribeParameters, all of the listed patterns are valid except Label. For
GetParametersByPath, the following patterns listed for Key aren't valid: tag, DataType, Name, Path, and Tier";
"valid options include Equals and BeginsWith". A parameter's data type is `text`, `aws:ec2:image` or
`aws:ssm:integration` (PutParameter DataType doc).
"""

from __future__ import annotations

from typing import Any

from moto.ssm.exceptions import InvalidFilterKey, InvalidFilterOption, InvalidFilterValue
from moto.ssm.models import Parameter, SimpleSystemManagerBackend

KEY = "DataType"


def apply() -> None:
    original_validate = SimpleSystemManagerBackend._validate_parameter_filters
    original_match = SimpleSystemManagerBackend._match_filters

    def validate(
        self: SimpleSystemManagerBackend, parameter_filters: list[dict[str, Any]] | None, by_path: bool
    ) -> None:
        data_type = [f for f in parameter_filters or [] if f.get("Key") == KEY]
        if data_type and by_path:
            raise InvalidFilterKey(
                f"The following filter key is not valid: {KEY}. Valid filter keys include: [Type, KeyId]."
            )
        if len(data_type) > 1:
            raise InvalidFilterKey(
                f"The following filter is duplicated in the request: {KEY}. A request can contain only one "
                "occurrence of a specific filter."
            )
        for data_filter in data_type:
            if not data_filter.get("Values"):
                raise InvalidFilterValue(f"The following filter values are missing : null for filter key {KEY}.")
            option = data_filter.get("Option", "Equals")
            if option not in ("Equals", "BeginsWith"):
                raise InvalidFilterOption(
                    f"The following filter option is not valid: {option}. Valid options include: [BeginsWith, Equals]."
                )
        original_validate(self, [f for f in parameter_filters or [] if f.get("Key") != KEY], by_path)

    def match(
        self: SimpleSystemManagerBackend, parameter: Parameter, filters: list[dict[str, Any]] | None = None
    ) -> bool:
        for data_filter in (f for f in filters or [] if f.get("Key") == KEY):
            data_type = parameter.data_type or "text"
            values = data_filter.get("Values", [])
            if data_filter.get("Option", "Equals") == "BeginsWith":
                if not any(data_type.startswith(value) for value in values):
                    return False
            elif data_type not in values:
                return False
        return bool(original_match(self, parameter, [f for f in filters or [] if f.get("Key") != KEY]))

    SimpleSystemManagerBackend._validate_parameter_filters = validate  # type: ignore[method-assign]
    SimpleSystemManagerBackend._match_filters = match  # type: ignore[method-assign]
