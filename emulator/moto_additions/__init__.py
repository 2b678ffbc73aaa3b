"""EC2, SSM and Recycle Bin APIs the scheduled report reads, which moto 5.2.5 lacks or gets wrong.

Each module follows the AWS documentation it cites, with botocore's model for every request and response shape:

- image_references: DescribeImageReferences (instances, launch template versions, SSM parameters).
- launches: DescribeInstanceImageMetadata, and LastLaunchedTime in DescribeImages and DescribeImageAttribute.
- block_public_access: Get/Enable/Disable Image and Snapshot BlockPublicAccess; public AMI sharing refused when
  blocked.
- rbin_service + recycle_bin: the `rbin` service (retention rules) and the AMI and snapshot Recycle Bins
  (ListImagesInRecycleBin, ListSnapshotsInRecycleBin, RestoreImageFromRecycleBin, RestoreSnapshotFromRecycleBin).
- ssm_data_type: the DescribeParameters `DataType` filter.
- ssm_page_size: DescribeParameters honouring `MaxResults`.

`apply()` is called by emulator/moto_extensions.py's `apply()`, after its own patches (the Recycle Bin wraps its
DeregisterImage and DeleteSnapshot).
"""

from __future__ import annotations

from emulator.moto_additions import (
    block_public_access,
    image_references,
    launches,
    rbin_service,
    recycle_bin,
    ssm_data_type,
    ssm_page_size,
)
from emulator.moto_additions.launches import set_last_launched_time

__all__ = ["apply", "set_last_launched_time"]

_applied = False


def apply() -> None:
    """Idempotent: patch moto once per process."""
    global _applied  # noqa: PLW0603 - a process-wide patch, applied once
    if _applied:
        return
    _applied = True
    rbin_service.apply()
    image_references.apply()
    launches.apply()
    block_public_access.apply()
    recycle_bin.apply()
    ssm_data_type.apply()
    ssm_page_size.apply()
