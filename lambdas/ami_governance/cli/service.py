"""The report service of an operator's run: the Lambda's ReportService, built on the caller's session.

Same scanner, launch-permission reader and inventory adapters as the report Lambda (services/wiring.py), each given
the session's clients instead of the Lambda's cached ones; no sweeper, and the inventory is only read: the CLI
changes nothing in the account.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ami_governance.cli.report import Prepared, SetupError

if TYPE_CHECKING:
    from ami_governance.adapters.session import OperatorSession
    from ami_governance.cli import ReportOptions
    from ami_governance.models.findings import InventoryRecord, LaunchPermissions
    from ami_governance.models.policy import GovernancePolicy
    from ami_governance.services.report import ReportInventory, ReportService

NO_INVENTORY_NOTE = (
    "no inventory table given (--inventory-table): the inventory part is empty, so every AMI's launch permissions "
    "were read from EC2, and what only the event path records (snapshots of deregistered AMIs, replicas, clean-ups) "
    "is not in this report"
)


class ReadOnlyInventory:
    """The inventory table, read but never written: launch permissions the run reads are not recorded."""

    def __init__(self, inventory: ReportInventory) -> None:
        self._inventory = inventory

    def records(self) -> dict[str, list[InventoryRecord]]:
        return self._inventory.records()

    def record_launch_permissions(self, image_id: str, region: str, permissions: LaunchPermissions) -> None:
        pass


def prepare_report(options: ReportOptions) -> Prepared:
    from ami_governance.adapters.session import OperatorSession, SessionError
    from ami_governance.models.policy import PolicyError, known_ec2_regions, load_policy_file

    try:
        session = OperatorSession(options.profile, options.endpoint_url)
        if options.policy_parameter:
            parameter_region = options.home_region or session.region_name
            if not parameter_region:
                raise SetupError("--policy-parameter needs a region: give --home-region or a profile with a region")
            policy = session.policy_parameter(options.policy_parameter, parameter_region)
        else:
            policy = load_policy_file(options.policy_file)
        regions = options.regions or tuple(policy.governed_regions)
        unknown = [region for region in regions if region not in known_ec2_regions()]
        if unknown:
            raise SetupError(f"unknown region: {', '.join(unknown)} (not an EC2 region botocore knows)")
        home = options.home_region or policy.home_region
        account_id = session.account_id(home)
    except (SessionError, PolicyError) as error:
        raise SetupError(str(error)) from None
    notes = () if options.inventory_table else (NO_INVENTORY_NOTE,)
    service = report_service(session, policy, account_id, home, options.inventory_table)
    return Prepared(service=service, regions=regions, account_id=account_id, notes=notes)


def report_service(
    session: OperatorSession,
    policy: GovernancePolicy,
    account_id: str,
    home_region: str,
    inventory_table: str | None,
) -> ReportService:
    from ami_governance.adapters.inventory import Inventory
    from ami_governance.adapters.launch_permissions import LaunchPermissionReader
    from ami_governance.adapters.scan import RegionScanner
    from ami_governance.services.report import ReportService

    def scanner_for(region: str) -> RegionScanner:
        return RegionScanner(
            account_id,
            region,
            ec2=session.client("ec2", region),
            autoscaling=session.client("autoscaling", region),
            ssm=session.client("ssm", region),
        )

    def permissions_for(region: str) -> LaunchPermissionReader:
        return LaunchPermissionReader(region, ec2=session.client("ec2", region))

    # No table: None, which the service takes as "the inventory was not read" (not as an empty one).
    inventory = (
        ReadOnlyInventory(Inventory(inventory_table, home_region, dynamodb=session.client("dynamodb", home_region)))
        if inventory_table
        else None
    )
    return ReportService(
        policy=policy,
        account_id=account_id,
        scanner_for=scanner_for,
        inventory=inventory,
        permissions_for=permissions_for,
    )
