"""The report: scan every governed region at once, gather what the findings need, judge, sweep.

One (account, region) is one unit of work (`region_evidence`): its bulk listings, then the per-candidate calls the
listings could not make unnecessary — DescribeImageReferences for the AMIs that may be unused or stale, and
DescribeImageAttribute for the AMIs whose launch permissions the inventory has no fresh record of. The units run
concurrently, at most `max_workers` at a time (each region has its own clients and its own throttling buckets;
the bound keeps a Lambda's memory and connections in check). The findings are computed once all units are in,
because replication drift compares regions.

A unit that fails is reported as incomplete with its error, never as "no findings"; nothing in an incomplete region
is acted on (the sweep checks `RegionEvidence.complete`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from ami_governance.adapters.errors import error_code
from ami_governance.models.findings import (
    Finding,
    InventoryRecord,
    LaunchPermissions,
    RegionEvidence,
    RegionStatus,
    Report,
    SweepAction,
    VerifiedBy,
)
from ami_governance.models.policy import GovernancePolicy, known_ec2_regions
from ami_governance.models.scan import (
    InstanceImageMetadataScan,
    ReferenceCheck,
    RegionScan,
)
from ami_governance.rules.findings import find_all, reference_candidates
from ami_governance.rules.launch_permissions import needs_verification

logger = Logger(child=True)

# Four regions at a time: each unit is I/O-bound on EC2's answers, and more threads would mostly wait on the same
# few regions' throttling while holding their pages in memory.
DEFAULT_MAX_WORKERS = 4
# Inventory listing: the key the region's evidence names it under when it cannot be read.
INVENTORY = "inventory"


class Scanner(Protocol):
    """One (account, region)'s listings (adapters/scan.py RegionScanner)."""

    @property
    def api_calls(self) -> int: ...
    def scan(self) -> RegionScan: ...
    def confirm_references(self, image_ids: Sequence[str]) -> ReferenceCheck: ...
    def instance_image_metadata(self) -> InstanceImageMetadataScan: ...


class LaunchPermissionSource(Protocol):
    """DescribeImageAttribute(launchPermission) for the given AMIs of one region."""

    def read(self, image_ids: Sequence[str]) -> dict[str, LaunchPermissions]: ...


class ReportInventory(Protocol):
    def records(self) -> dict[str, list[InventoryRecord]]: ...
    def record_launch_permissions(self, image_id: str, region: str, permissions: LaunchPermissions) -> None: ...


class Sweeper(Protocol):
    def sweep(self, findings: Sequence[Finding], evidences: Sequence[RegionEvidence]) -> tuple[SweepAction, ...]: ...


class ProgressSink(Protocol):
    """What an operator sees while the report runs (the CLI's progress bars); the Lambda passes none."""

    def region_started(self, region: str) -> None: ...
    def region_step(self, region: str, step: str) -> None: ...
    def region_done(self, region: str, status: RegionStatus) -> None: ...


class _Silent:
    def region_started(self, region: str) -> None:
        pass

    def region_step(self, region: str, step: str) -> None:
        pass

    def region_done(self, region: str, status: RegionStatus) -> None:
        pass


class UnknownRegion(ValueError):
    """A region name EC2 does not know: asked for by mistake, never scanned as if it were empty."""


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class ReportService:
    policy: GovernancePolicy
    account_id: str
    scanner_for: Callable[[str], Scanner]
    permissions_for: Callable[[str], LaunchPermissionSource]
    inventory: ReportInventory | None  # None: the CLI without a table; the report then says the inventory was not read
    sweeper: Sweeper | None = None
    now: Callable[[], datetime] = field(default=_now)
    max_workers: int = DEFAULT_MAX_WORKERS

    def run(
        self,
        regions: Sequence[str] | None = None,
        *,
        progress: ProgressSink | None = None,
        run_id: str | None = None,
    ) -> Report:
        started = self.now()
        units = self._units(regions, progress, started)
        evidences = [evidence for evidence, _status in units]
        findings = tuple(find_all(self.policy, evidences, started))
        sweep = self.policy.report.sweep
        actions: tuple[SweepAction, ...] = ()
        if sweep.enabled and self.sweeper is not None:
            actions = self.sweeper.sweep(findings, evidences)
        return Report(
            run_id=run_id or new_run_id(started),
            generated_at=started,
            mode=self.policy.mode.value,
            sweep="off" if not sweep.enabled else ("dry-run" if sweep.dry_run else "on"),
            regions=tuple(status for _evidence, status in units),
            findings=findings,
            actions=actions,
        )

    def evidence(
        self,
        regions: Sequence[str] | None = None,
        *,
        progress: ProgressSink | None = None,
        now: datetime | None = None,
    ) -> list[RegionEvidence]:
        """Every region's evidence, in the order the regions were given."""
        return [evidence for evidence, _status in self._units(regions, progress, now or self.now())]

    def _units(
        self, regions: Sequence[str] | None, progress: ProgressSink | None, at: datetime
    ) -> list[tuple[RegionEvidence, RegionStatus]]:
        wanted = list(dict.fromkeys(regions or self.policy.governed_regions))
        unknown = [region for region in wanted if known_ec2_regions() and region not in known_ec2_regions()]
        if unknown:
            raise UnknownRegion(f"unknown region(s): {', '.join(unknown)}")
        sink = progress or _Silent()
        records, inventory_error = self._inventory_records()
        workers = max(1, min(self.max_workers, len(wanted)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="report-region") as pool:
            futures = [
                pool.submit(self._region_evidence, region, records.get(region, []), inventory_error, at, sink)
                for region in wanted
            ]
            return [future.result() for future in futures]

    def _inventory_records(self) -> tuple[dict[str, list[InventoryRecord]], str | None]:
        if self.inventory is None:
            return {}, None
        try:
            return self.inventory.records(), None
        except (ClientError, BotoCoreError) as error:
            # Without the inventory, recorded snapshots, replicas and clean-ups are unknown: every region says so.
            logger.warning("Inventory could not be read; the report is incomplete", extra={"error": str(error)})
            return {}, f"{error_code(error)}: {error}"

    def _region_evidence(
        self,
        region: str,
        records: list[InventoryRecord],
        inventory_error: str | None,
        now: datetime,
        progress: ProgressSink,
    ) -> tuple[RegionEvidence, RegionStatus]:
        progress.region_started(region)
        scanner: Scanner | None = None
        try:
            scanner = self.scanner_for(region)
            evidence = self._gather(scanner, region, records, inventory_error, now, progress)
        except Exception as error:
            # Not an AWS error of one listing (those are in the scan's listing_errors): the unit itself broke.
            # The region is reported incomplete with the error; the other regions' evidence still stands.
            logger.exception("Region scan failed", extra={"region": region})
            evidence = RegionEvidence(
                scan=RegionScan(
                    account_id=self.account_id,
                    region=region,
                    scanned_at=now,
                    listing_errors={"scan": f"{type(error).__name__}: {error}"},
                )
            )
        status = self._status(evidence, api_calls=scanner.api_calls if scanner is not None else 0)
        progress.region_done(region, status)
        return evidence, status

    def _gather(
        self,
        scanner: Scanner,
        region: str,
        records: list[InventoryRecord],
        inventory_error: str | None,
        now: datetime,
        progress: ProgressSink,
    ) -> RegionEvidence:
        progress.region_step(region, "listings")
        scan = scanner.scan()
        progress.region_step(region, "instance images")
        instance_images = scanner.instance_image_metadata()
        progress.region_step(region, "references")
        candidates = reference_candidates(self.policy, scan, records, now)
        references = scanner.confirm_references(candidates) if candidates else ReferenceCheck()
        progress.region_step(region, "launch permissions")
        permissions = self._launch_permissions(region, scan, records, now)
        return RegionEvidence(
            scan=scan,
            references=references,
            instance_images=instance_images,
            launch_permissions=permissions,
            inventory=tuple(records),
            inventory_error=inventory_error,
        )

    def _launch_permissions(
        self, region: str, scan: RegionScan, records: Sequence[InventoryRecord], now: datetime
    ) -> tuple[LaunchPermissions, ...]:
        """From the inventory where the event path recorded them recently enough; otherwise read from EC2 (one
        call per AMI) and recorded, so that the next run reads them from the inventory."""
        by_image = {record.image_id: record for record in records}
        known: dict[str, LaunchPermissions] = {}
        to_read: list[str] = []
        for image in scan.images:
            record = by_image.get(image.image_id)
            recorded = record.launch_permissions if record else None
            if recorded is not None and not needs_verification(record, now, self.policy.report.full_verification_days):
                known[image.image_id] = recorded
            else:
                to_read.append(image.image_id)
        if to_read:
            read = self.permissions_for(region).read(to_read)
            known.update(read)
            self._record_read(region, read)
        return tuple(known[image.image_id] for image in scan.images if image.image_id in known)

    def _record_read(self, region: str, read: Mapping[str, LaunchPermissions]) -> None:
        if self.inventory is None:
            return
        for image_id, permissions in read.items():
            if permissions.verified_by is not VerifiedBy.DESCRIBE:
                continue
            try:
                self.inventory.record_launch_permissions(image_id, region, permissions)
            except (ClientError, BotoCoreError) as error:
                # The reading stands for this report; the next run reads the AMI again.
                logger.warning(
                    "Launch permissions not recorded",
                    extra={"image_id": image_id, "region": region, "error": error_code(error)},
                )

    @staticmethod
    def _status(evidence: RegionEvidence, api_calls: int) -> RegionStatus:
        verified: dict[str, int] = {}
        for permissions in evidence.launch_permissions:
            verified[permissions.verified_by.value] = verified.get(permissions.verified_by.value, 0) + 1
        return RegionStatus(
            account_id=evidence.account_id,
            region=evidence.region,
            complete=evidence.complete,
            errors=evidence.errors,
            images=len(evidence.scan.images),
            snapshots=len(evidence.scan.snapshots),
            instances=len(evidence.scan.instances),
            verified_by=verified,
            api_calls=api_calls,
        )


def new_run_id(at: datetime) -> str:
    """Sortable by time, unique across concurrent runs: '20261201T060000Z-1a2b3c4d'."""
    return f"{at.astimezone(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
