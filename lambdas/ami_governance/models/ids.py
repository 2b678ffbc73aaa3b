"""AWS's own shapes for the ids and region names an event may carry.

EC2 ids are a type prefix and 8 hexadecimal digits (resources made before 2016-2018) or 17 (every id since),
lowercase ("Resource IDs", Amazon EC2 User Guide). Anything else cannot name a resource: passed to EC2 it is
`InvalidAMIID.Malformed` at best, and as a DynamoDB key it can exceed the key size limit (2048 bytes for a
partition key), a `ValidationException` that would be retried as if AWS had failed. So the event models reject
it, and the services drop it as bad input before any AWS call.
"""

from __future__ import annotations

import re
from typing import Annotated, Final

from pydantic import Field

IMAGE_ID_PATTERN: Final = r"^ami-(?:[0-9a-f]{8}|[0-9a-f]{17})$"
SNAPSHOT_ID_PATTERN: Final = r"^snap-(?:[0-9a-f]{8}|[0-9a-f]{17})$"
INSTANCE_ID_PATTERN: Final = r"^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$"
# us-east-1, us-gov-west-1, us-isob-east-1, eusc-de-east-1... The region must also be one the policy governs
# (or, for a copy's source, any region); the shape only keeps an absurd string out of the logs and the keys.
REGION_PATTERN: Final = r"^[a-z]{2,4}(?:-[a-z]+)+-[0-9]{1,2}$"
REGION_MAX_LENGTH: Final = 32

ImageId = Annotated[str, Field(pattern=IMAGE_ID_PATTERN)]
# No event field the product reads names a snapshot yet (DeregisterImage's deleteSnapshotResultSet would).
SnapshotId = Annotated[str, Field(pattern=SNAPSHOT_ID_PATTERN)]
InstanceId = Annotated[str, Field(pattern=INSTANCE_ID_PATTERN)]
RegionName = Annotated[str, Field(max_length=REGION_MAX_LENGTH, pattern=REGION_PATTERN)]

_IMAGE_ID = re.compile(IMAGE_ID_PATTERN)


def is_image_id(value: object) -> bool:
    return isinstance(value, str) and _IMAGE_ID.fullmatch(value) is not None
