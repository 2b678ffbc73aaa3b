"""A regional forwarder stack: AMI events of one governed region go to the governance bus in the home region, and
(optionally) the region's Recycle Bin rule for the snapshots cleanup deletes."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_events as events
from constructs import Construct

from stacks.constructs.alarmed_dead_letter_queue import AlarmedDeadLetterQueue
from stacks.constructs.ami_event_forwarder import AmiEventForwarder
from stacks.constructs.deleted_snapshot_recycle_bin import DeletedSnapshotRecycleBin, DeletedSnapshotRetention
from stacks.constructs.routed_rule import RoutedRule
from stacks.event_patterns import ALARM_RAISED
from stacks.resource_names import governance_bus_arn


class AmiGovernanceForwarderStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        home_region: str,
        deleted_snapshot_retention: DeletedSnapshotRetention | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        # By ARN, not by reference: CloudFormation cannot reference another region's stack.
        self.governance_bus_arn = governance_bus_arn(home_region, self.account)
        governance_bus = events.EventBus.from_event_bus_arn(self, "GovernanceBus", self.governance_bus_arn)
        # The DLQ must be in this region (a rule's DLQ is in the rule's region). Its alarm has no action: alarm
        # actions can only reach an SNS topic in the alarm's own region, and the topic lives in the home region.
        # The alarm's state change event is the notification path instead: the AlarmsRaised rule below forwards
        # it to the governance bus, where a rule of the home stack publishes it to the topic.
        self.dead_letters = AlarmedDeadLetterQueue(self, "ForwardingDeadLetters", purpose="forwarding AMI events")
        forwarder = AmiEventForwarder(
            self, "Forwarder", target_bus=governance_bus, dead_letter_queue=self.dead_letters.queue
        )
        # Through the forwarder's role, whose events:PutEvents on the governance bus covers this rule too. When
        # what fails is forwarding itself (the home bus or this role), this event fails the same way and lands in
        # the same DLQ: that case stays in the alarm's own state and is not notified.
        RoutedRule(
            self,
            "AlarmsRaised",
            event_bus=forwarder.default_bus,
            event_pattern=ALARM_RAISED,
            description="Forward AMI governance alarms going into ALARM to the AMI governance bus",
            target_bus=governance_bus,
            target_bus_role=forwarder.role,
            dead_letter_queue=self.dead_letters.queue,
        )
        # Cleanup deletes snapshots in the region they live in, so each region needs its own Recycle Bin rule.
        if deleted_snapshot_retention is not None:
            DeletedSnapshotRecycleBin(self, "DeletedSnapshotRecycleBin", retention=deleted_snapshot_retention)
