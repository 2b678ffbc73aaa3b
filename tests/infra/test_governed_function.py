"""The Lambda factory construct and the policy parameter tier, in isolation (small synths)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Template

from ami_governance.models.policy import GovernancePolicy, PolicyError, known_ec2_regions
from stacks.constructs.governed_function import (
    POWERTOOLS_LAYER_ACCOUNTS,
    POWERTOOLS_LAYER_NAME,
    POWERTOOLS_VERSION,
    GovernedFunction,
    PowertoolsLayerError,
)
from stacks.context_options import POWERTOOLS_LAYER_VERSION_CONTEXT_KEY, ContextError
from stacks.home_stack import AmiGovernanceHomeStack, policy_parameter_value
from stacks.resource_names import partition_of

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

STANDARD_PARAMETER_MAX_BYTES = 4096


def _function_template(context: dict[str, object] | None = None, region: str = "eu-central-1") -> Template:
    app = App(context=context or {})
    stack = Stack(app, "Probe", env=Environment(region=region))
    GovernedFunction(
        stack,
        "Probe",
        handler="handlers.probe.handler",
        description="probe",
        environment={"EXTRA": "value"},
        dead_letter_queue=sqs.Queue(stack, "Dlq"),
    )
    return Template.from_stack(stack)


def test_powertools_layer_is_pinned_per_region_and_overridable_by_context() -> None:
    # Given a function in eu-central-1, with and without the layer-version context key
    default = _function_template()
    overridden = _function_template({POWERTOOLS_LAYER_VERSION_CONTEXT_KEY: "40"})

    # Then the layer is the regional Powertools arm64 layer, version 36 unless overridden
    layer = "arn:aws:lambda:eu-central-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python314-arm64"
    default.has_resource_properties("AWS::Lambda::Function", {"Layers": [f"{layer}:36"]})
    overridden.has_resource_properties("AWS::Lambda::Function", {"Layers": [f"{layer}:40"]})


@pytest.mark.parametrize(
    ("region", "layer_arn"),
    [
        ("cn-north-1", f"arn:aws-cn:lambda:cn-north-1:498634801083:layer:{POWERTOOLS_LAYER_NAME}:31"),
        ("us-gov-east-1", f"arn:aws-us-gov:lambda:us-gov-east-1:165087284144:layer:{POWERTOOLS_LAYER_NAME}:31"),
        ("us-gov-west-1", f"arn:aws-us-gov:lambda:us-gov-west-1:165093116878:layer:{POWERTOOLS_LAYER_NAME}:31"),
    ],
)
def test_china_and_govcloud_use_their_own_publisher_account_and_partition(region: str, layer_arn: str) -> None:
    # Given a function in a China or GovCloud region, with the layer version given
    template = _function_template({POWERTOOLS_LAYER_VERSION_CONTEXT_KEY: 31}, region=region)

    # Then the layer is the copy the publisher keeps in that partition, in that region's account
    template.has_resource_properties("AWS::Lambda::Function", {"Layers": [layer_arn]})


@pytest.mark.parametrize("region", ["cn-north-1", "us-gov-west-1"])
def test_china_and_govcloud_need_the_layer_version_given(region: str) -> None:
    # Given a function in a partition whose layer versions are numbered apart, without a version, then it is refused
    with pytest.raises(PowertoolsLayerError, match=f"{region}.*-c {POWERTOOLS_LAYER_VERSION_CONTEXT_KEY}=N"):
        _function_template(region=region)


@pytest.mark.parametrize("region", ["ca-west-1", "ap-southeast-6", "cn-northwest-1", "us-iso-east-1", "eusc-de-east-1"])
def test_a_region_without_the_layer_is_refused_with_where_it_is(region: str) -> None:
    # Given a region botocore knows but where the publisher has no Powertools layer
    assert region in known_ec2_regions()

    # When a function is built there, then it fails naming the region and the regions that have the layer
    with pytest.raises(PowertoolsLayerError) as raised:
        _function_template({POWERTOOLS_LAYER_VERSION_CONTEXT_KEY: 36}, region=region)
    message = str(raised.value)
    assert message.startswith(f"region {region}: ")
    assert "home_region" in message
    for published in ("us-east-1", "cn-north-1", "us-gov-west-1"):
        assert published in message
    assert "\n" not in message


@pytest.mark.parametrize("value", ["abc", "0", "-3", "", True, 2.5])
def test_a_bad_layer_version_is_a_context_error_naming_the_key(value: object) -> None:
    with pytest.raises(ContextError, match=POWERTOOLS_LAYER_VERSION_CONTEXT_KEY):
        _function_template({POWERTOOLS_LAYER_VERSION_CONTEXT_KEY: value})


def test_the_layer_region_list_holds_real_regions_filed_under_their_partition() -> None:
    # A typo in the list would refuse a real region and let a made-up one through.
    for partition, accounts in POWERTOOLS_LAYER_ACCOUNTS.items():
        for region, account in accounts.items():
            assert region in known_ec2_regions()
            assert partition_of(region) == partition
            assert re.fullmatch(r"\d{12}", account)


def test_the_default_layer_carries_the_powertools_version_requirements_pins() -> None:
    # The Lambdas run the layer's Powertools; the tests run the pinned one. They must be the same release.
    requirements = (Path(__file__).resolve().parents[2] / "requirements.txt").read_text(encoding="utf-8")
    [pin] = [line for line in requirements.splitlines() if line.startswith("aws-lambda-powertools")]
    assert pin.endswith(f"=={POWERTOOLS_VERSION}")


def test_caller_environment_is_added_to_the_powertools_settings() -> None:
    _function_template().has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Environment": {
                "Variables": {
                    "POWERTOOLS_SERVICE_NAME": "ami-governance",
                    "POWERTOOLS_METRICS_NAMESPACE": "AmiGovernance",
                    "EXTRA": "value",
                }
            }
        },
    )


def _team_tag_values(count: int) -> dict[str, Any]:
    """A required tag with `count` allowed values: about 13 bytes of policy JSON each."""
    return {"Team": {"values": [f"team-{i:04d}" for i in range(count)]}}


@pytest.mark.parametrize("team_values", [0, 300], ids=["policy-under-4-KB", "policy-over-4-KB"])
def test_policy_parameter_is_advanced_whatever_the_policy_size(
    team_values: int, make_policy: Callable[..., GovernancePolicy]
) -> None:
    # Given a policy either side of the standard tier's 4 KB
    policy = make_policy(required_tags=_team_tag_values(team_values)) if team_values else make_policy()
    size = len(policy.model_dump_json().encode())
    assert (size > STANDARD_PARAMETER_MAX_BYTES) == bool(team_values), size

    # When the home stack is built
    stack = AmiGovernanceHomeStack(App(), "Home", policy=policy, env=Environment(region=policy.home_region))

    # Then its parameter holds the policy in the advanced tier both times: a policy that shrinks below 4 KB later
    # must not ask CloudFormation to move the parameter back to standard, which Parameter Store refuses
    [parameter] = Template.from_stack(stack).find_resources("AWS::SSM::Parameter").values()
    assert parameter["Properties"]["Tier"] == "Advanced"
    assert parameter["Properties"]["Value"] == policy.model_dump_json()


def test_policy_too_large_for_ssm_is_a_policy_error(make_policy: Callable[..., GovernancePolicy]) -> None:
    # Given a policy whose JSON is over the advanced tier's 8 KB, then it is a policy error naming the limit
    policy = make_policy(required_tags=_team_tag_values(700))
    with pytest.raises(PolicyError, match="8192"):
        policy_parameter_value(policy)
