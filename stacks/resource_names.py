"""Names and ARNs that more than one stack must agree on without a cross-stack reference."""

from __future__ import annotations

from functools import cache

import boto3
from aws_cdk import Stack
from constructs import IConstruct

from ami_governance.rules.tags import SystemTag

GOVERNANCE_BUS_NAME = "ami-governance"
POLICY_PARAMETER_NAME = "/ami-governance/policy"
HOME_STACK_NAME = "AmiGovernanceHome"
FORWARDER_STACK_PREFIX = "AmiGovernanceForwarder-"


@cache
def partition_of(region: str) -> str:
    """The ARN partition of a region ('aws', 'aws-cn', 'aws-us-gov'), from botocore's bundled data (offline)."""
    partition = boto3.Session().get_partition_for_region(region)
    return str(partition)


def governance_bus_arn(home_region: str, account: str) -> str:
    """ARN of the governance bus in the home region.

    Forwarder stacks live in other regions, where a CloudFormation cross-stack reference is impossible; the bus
    has a fixed name, so its ARN is known at synth time.
    """
    return f"arn:{partition_of(home_region)}:events:{home_region}:{account}:event-bus/{GOVERNANCE_BUS_NAME}"


def forwarder_stack_name(region: str) -> str:
    return f"{FORWARDER_STACK_PREFIX}{region}"


# Every CloudWatch alarm of this product is named with this prefix. Forwarder regions forward the state changes
# of exactly these alarms to the governance bus (see stacks/event_patterns.py, ALARM_RAISED).
ALARM_NAME_PREFIX = "AmiGovernance-"
ALARM_NAME_MAX_LENGTH = 255


def alarm_name(scope: IConstruct, name: str) -> str:
    """`ALARM_NAME_PREFIX`, the stack name, the path of `scope` inside its stack, then `name`, joined by '-'.

    Alarm names are unique per account and region, and so are stack names; construct paths are unique within a
    stack. With `name` unique within `scope`, the product's alarms get distinct names in every region.
    """
    stack = Stack.of(scope)
    # Construct ids cannot contain '/', the path separator.
    inside_stack = [part for part in scope.node.path.removeprefix(stack.node.path).split("/") if part]
    result = ALARM_NAME_PREFIX + "-".join([stack.stack_name, *inside_stack, name])
    if len(result) > ALARM_NAME_MAX_LENGTH:
        raise ValueError(f"alarm name longer than {ALARM_NAME_MAX_LENGTH} characters: {result}")
    return result


# Name of the tag the cleanup Lambda puts on a snapshot right before it deletes it (key
# `policy.tag_key(CLEANUP_TAG_NAME)`, value `DELETING_TAG_VALUE`); the optional Recycle Bin rule matches it.
CLEANUP_TAG_NAME = SystemTag.CLEANUP.value
