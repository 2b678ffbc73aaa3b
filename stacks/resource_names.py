"""Names and ARNs that more than one stack must agree on without a cross-stack reference."""

from __future__ import annotations

from functools import cache

import boto3

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


# Name of the tag the cleanup Lambda puts on a snapshot right before it deletes it (key
# `policy.tag_key(CLEANUP_TAG_NAME)`, value `DELETING_TAG_VALUE`); the optional Recycle Bin rule matches it.
CLEANUP_TAG_NAME = SystemTag.CLEANUP.value
