"""Forwards a region's AMI events from its default bus to the governance bus."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.constructs.routed_rule import RoutedRule
from stacks.event_patterns import FORWARDING_PATTERNS


class AmiEventForwarder(Construct):
    """One rule per forwarding pattern on the default bus, all sending to `target_bus` through one role.

    CloudTrail delivers an API call's event only to the default bus of the region where the call was made,
    so every governed region (the home region included) needs these rules.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, target_bus: events.IEventBus, dead_letter_queue: sqs.IQueue
    ) -> None:
        super().__init__(scope, construct_id)
        account = Stack.of(self).account
        # The EventBus target grants this role events:PutEvents on the target bus and nothing else.
        self.role = iam.Role(
            self,
            "Role",
            description="Lets EventBridge put events of this region's default bus on the AMI governance bus",
            assumed_by=iam.ServicePrincipal(
                "events.amazonaws.com",
                # Only this account's rules may use the role (confused-deputy guard).
                conditions={"StringEquals": {"aws:SourceAccount": account}},
            ),
        )
        self.default_bus = events.EventBus.from_event_bus_name(self, "DefaultBus", "default")
        self.rules = [
            RoutedRule(
                self,
                name,
                event_bus=self.default_bus,
                event_pattern=pattern,
                description=f"Forward AMI events ({name}) to the AMI governance bus",
                target_bus=target_bus,
                target_bus_role=self.role,
                dead_letter_queue=dead_letter_queue,
            )
            for name, pattern in FORWARDING_PATTERNS.items()
        ]
