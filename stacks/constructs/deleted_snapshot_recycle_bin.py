"""A Recycle Bin retention rule that keeps the snapshots cleanup deletes restorable for a while."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_rbin as rbin
from constructs import Construct


@dataclass(frozen=True)
class DeletedSnapshotRetention:
    """Retain deleted EBS snapshots that carry `tag_key`=`tag_value` for `days` days."""

    days: int
    tag_key: str
    tag_value: str


class DeletedSnapshotRecycleBin(Construct):
    """A tag-level Recycle Bin rule for EBS snapshots, in the stack's region.

    Recycle Bin rules are regional, like snapshots: every governed region needs its own. The rule matches on the
    tag cleanup writes right before it deletes a snapshot, so snapshots deleted by anyone else are not retained
    (and not billed for the retention). A snapshot in the bin still costs its storage until the retention ends.
    """

    def __init__(self, scope: Construct, construct_id: str, *, retention: DeletedSnapshotRetention) -> None:
        super().__init__(scope, construct_id)
        self.rule = rbin.CfnRule(
            self,
            "Rule",
            resource_type="EBS_SNAPSHOT",
            retention_period=rbin.CfnRule.RetentionPeriodProperty(
                retention_period_value=retention.days, retention_period_unit="DAYS"
            ),
            resource_tags=[
                rbin.CfnRule.ResourceTagProperty(
                    resource_tag_key=retention.tag_key, resource_tag_value=retention.tag_value
                )
            ],
            description=(
                f"AMI governance: EBS snapshots deleted by cleanup (tagged {retention.tag_key}="
                f"{retention.tag_value}) stay restorable in the Recycle Bin for {retention.days} days"
            ),
        )
