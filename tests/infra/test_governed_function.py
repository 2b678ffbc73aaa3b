"""The Lambda factory construct and the policy parameter sizing, in isolation (small, fast synths)."""

from __future__ import annotations

import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_ssm as ssm
from aws_cdk.assertions import Template

from ami_governance.models.policy import PolicyError
from stacks.constructs.governed_function import POWERTOOLS_LAYER_VERSION_CONTEXT_KEY, GovernedFunction
from stacks.home_stack import policy_parameter_tier

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]


def _function_template(context: dict[str, object] | None = None) -> Template:
    app = App(context=context or {})
    stack = Stack(app, "Probe", env=Environment(region="eu-central-1"))
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


@pytest.mark.parametrize(
    ("size", "tier"),
    [(10, ssm.ParameterTier.STANDARD), (4096, ssm.ParameterTier.STANDARD), (4097, ssm.ParameterTier.ADVANCED)],
)
def test_policy_parameter_tier_follows_the_policy_size(size: int, tier: ssm.ParameterTier) -> None:
    assert policy_parameter_tier("x" * size) == tier


def test_policy_too_large_for_ssm_is_a_policy_error() -> None:
    with pytest.raises(PolicyError, match="8192"):
        policy_parameter_tier("x" * 8193)
