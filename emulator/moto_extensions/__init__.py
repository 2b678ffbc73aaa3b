"""What moto 5.2 lacks or gets wrong for AMI, snapshot and listing work, patched into its EC2 backend (used by the
emulator and the tests). Each patch makes moto behave as the EC2 documentation says, for those cases only; each
module covers one area and says which moto gaps it closes.

`apply()` patches moto once per process; `from emulator import moto_extensions; moto_extensions.apply()`.
"""

from __future__ import annotations

from emulator import moto_additions
from emulator.moto_extensions import copy_image, image_attributes, images, instances, launch_templates, snapshots
from emulator.moto_extensions.control import (
    UnknownResource,
    image_state,
    set_creation_dates,
    set_image_creation_date,
    set_image_state,
    set_snapshot_start_time,
)

__all__ = [
    "UnknownResource",
    "apply",
    "image_state",
    "set_creation_dates",
    "set_image_creation_date",
    "set_image_state",
    "set_snapshot_start_time",
]

_applied = False


def apply() -> None:
    """Idempotent: patch moto's EC2 model once per process."""
    global _applied  # noqa: PLW0603 - a process-wide patch, applied once
    if _applied:
        return
    _applied = True
    images.apply()
    image_attributes.apply()
    snapshots.apply()
    copy_image.apply()
    instances.apply()
    launch_templates.apply()
    # Last: the Recycle Bin wraps the DeregisterImage and DeleteSnapshot patches above.
    moto_additions.apply()
