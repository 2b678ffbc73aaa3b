"""What a Lambda really runs on, which is not what requirements.txt pins: the Lambda runtime brings its own boto3 and
botocore (their version depends on the runtime's release and the region), the Powertools layer brings Powertools
and pydantic. The versions are logged once per container, and the EC2 model is checked for what the code reads.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, Final

# Module -> the distribution whose metadata has its version, for a module that is not imported yet.
RUNTIME_PACKAGES: Final[Mapping[str, str]] = {
    "boto3": "boto3",
    "botocore": "botocore",
    "aws_lambda_powertools": "aws-lambda-powertools",
    "pydantic": "pydantic",
}

# Members of the EC2 model the code relies on -> the first botocore release whose model has them (botocore's
# changelog and the history of its EC2 model). An older model fails quietly where it matters most: botocore drops
# response members its model does not know, so a replica's SourceImageId would read as missing, the replica would
# not be recognised as one and its lineage tags would read as inherited. An unknown request parameter is refused.
EC2_MODEL_NEEDS: Final[Mapping[tuple[str, str], str]] = {
    # 2024-11-13, "adds the source AMI details in DescribeImages API" (and the source-image-* filters)
    ("Image", "SourceImageId"): "1.35.60",
    ("Image", "SourceImageRegion"): "1.35.60",
    # 2024-03-07: tags on the new AMI and its snapshots in the CopyImage call itself
    ("CopyImageRequest", "TagSpecifications"): "1.34.58",
    # 2023-10-12, with DisableImage and EnableImage
    ("DescribeImagesRequest", "IncludeDisabled"): "1.31.63",
    # 2022-11-18
    ("CopyImageRequest", "CopyImageTags"): "1.29.13",
}


def runtime_versions() -> dict[str, str]:
    """Python's version and each runtime package's. Modules already imported give their `__version__` for free;
    the others are read from their distribution's metadata, without importing them."""
    versions = {"python": ".".join(str(part) for part in sys.version_info[:3])}
    for module_name, distribution in RUNTIME_PACKAGES.items():
        versions[module_name] = _version(module_name, distribution)
    return versions


def _version(module_name: str, distribution: str) -> str:
    version = getattr(sys.modules.get(module_name), "__version__", None)
    if isinstance(version, str):
        return version
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def missing_model_members(service_model: Any, needs: Mapping[tuple[str, str], str] = EC2_MODEL_NEEDS) -> list[str]:
    """`Shape.Member (botocore >= X)` for each member of `needs` the botocore service model lacks."""
    # Imported here: the handler modules import this module at load time, before anything needs botocore, and
    # botocore.model brings most of botocore with it (about 170 ms of the cold start).
    from botocore.model import NoShapeFoundError

    missing = []
    for (shape_name, member), since in needs.items():
        try:
            members = service_model.shape_for(shape_name).members
        except NoShapeFoundError:
            members = {}
        if member not in members:
            missing.append(f"{shape_name}.{member} (botocore >= {since})")
    return missing
