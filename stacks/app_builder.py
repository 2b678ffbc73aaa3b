"""Composes the app from a validated policy; app.py and the infra tests both build through here."""

from __future__ import annotations

from aws_cdk import App, Environment, Stack

from ami_governance.models.policy import GovernancePolicy
from ami_governance.rules.cleanup import DELETING_TAG_VALUE
from stacks.constructs.deleted_snapshot_recycle_bin import DeletedSnapshotRetention
from stacks.context_options import recycle_bin_retention_days
from stacks.forwarder_stack import AmiGovernanceForwarderStack
from stacks.home_stack import AmiGovernanceHomeStack
from stacks.resource_names import CLEANUP_TAG_NAME, HOME_STACK_NAME, forwarder_stack_name


def build_app(app: App, policy: GovernancePolicy, *, account: str | None = None) -> list[Stack]:
    """The home stack in `policy.home_region` and a forwarder stack in every other governed region.

    `account` None leaves the stacks account-agnostic (resolved at deploy time). With the context option
    `recycle_bin_retention_days`, every governed region also gets a Recycle Bin rule for the snapshots cleanup
    deletes; a bad value raises ContextError before any stack is built.
    """
    retention_days = recycle_bin_retention_days(app.node)
    retention = (
        None
        if retention_days is None
        else DeletedSnapshotRetention(
            days=retention_days, tag_key=policy.tag_key(CLEANUP_TAG_NAME), tag_value=DELETING_TAG_VALUE
        )
    )
    home = AmiGovernanceHomeStack(
        app,
        HOME_STACK_NAME,
        policy=policy,
        deleted_snapshot_retention=retention,
        env=Environment(account=account, region=policy.home_region),
        description="AMI governance: governance bus, Lambdas, inventory, notifications (home region)",
    )
    stacks: list[Stack] = [home]
    for region in policy.governed_regions:
        if region == policy.home_region:
            continue
        forwarder = AmiGovernanceForwarderStack(
            app,
            forwarder_stack_name(region),
            home_region=policy.home_region,
            deleted_snapshot_retention=retention,
            env=Environment(account=account, region=region),
            description=f"AMI governance: forward {region} AMI events to the governance bus in {policy.home_region}",
        )
        forwarder.add_stack_dependency(home, "the forwarder's rules target the governance bus in the home stack")
        stacks.append(forwarder)
    return stacks
