"""The report's findings (being written): candidates for DescribeImageReferences, and every finding kind."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ami_governance.models.findings import Finding, InventoryRecord, RegionEvidence
from ami_governance.models.policy import GovernancePolicy
from ami_governance.models.scan import RegionScan


def reference_candidates(
    policy: GovernancePolicy, scan: RegionScan, inventory: Sequence[InventoryRecord], now: datetime
) -> tuple[str, ...]:
    in_use = {instance.image_id for instance in scan.instances}
    in_use |= {version.image_id for version in scan.launch_template_versions if version.image_id}
    in_use |= {parameter.image_id for parameter in scan.image_parameters}
    in_use |= {configuration.image_id for configuration in scan.launch_configurations}
    return tuple(image.image_id for image in scan.images if image.image_id not in in_use)


def find_all(policy: GovernancePolicy, evidences: Sequence[RegionEvidence], now: datetime) -> list[Finding]:
    return []
