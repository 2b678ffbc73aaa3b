"""What the sweep tests (test_sweep.py, test_blast_radius.py) hand the sweeper: the home region's evidence as the
report gathers it, and findings of a kind about one resource."""

from __future__ import annotations

from collections.abc import Sequence

from ami_governance.adapters.inventory import Inventory
from ami_governance.adapters.launch_permissions import LaunchPermissionReader
from ami_governance.adapters.scan import RegionScanner
from ami_governance.models.findings import Finding, FindingKind, InventoryRecord, RegionEvidence, ResourceType
from tests.integration.conftest import ACCOUNT, HOME, TABLE


def region_evidence(inventory_ids: Sequence[str] = ()) -> list[RegionEvidence]:
    """The home region scanned, with the inventory items of its AMIs and of `inventory_ids` (AMIs already gone)."""
    scanner = RegionScanner(ACCOUNT, HOME)
    scan = scanner.scan()
    ids = [image.image_id for image in scan.images]
    items = [item for item in (Inventory(TABLE, HOME).get(i, HOME) for i in [*ids, *inventory_ids]) if item]
    return [
        RegionEvidence(
            scan=scan,
            references=scanner.confirm_references(ids),
            instance_images=scanner.instance_image_metadata(),
            launch_permissions=tuple(LaunchPermissionReader(HOME).read(ids).values()),
            inventory=tuple(InventoryRecord.from_item(item) for item in items),
        )
    ]


def finding(kind: FindingKind, resource_id: str, detail: str = "") -> Finding:
    resource_type = ResourceType.SNAPSHOT if resource_id.startswith("snap-") else ResourceType.IMAGE
    return Finding(kind, ACCOUNT, HOME, resource_type, resource_id, reason="r", fix="f", detail=detail)
