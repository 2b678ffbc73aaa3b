"""The deployer's CloudFormation intrinsics, as the CloudFormation Template Reference defines them (`Fn::Sub`).

A function's environment shows what a property resolved to: registering a function calls no AWS API, so these
tests need no endpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from emulator.assembly import StackArtifact
from emulator.deployer import DeployError, StackDeployer
from emulator.functions import FunctionRegistry

ACCOUNT = "123456789012"
REGION = "eu-west-1"


def function(environment: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    properties: dict[str, Any] = {"Handler": "h.handler", "Code": {"S3Key": "code.zip"}}
    if name is not None:
        properties["FunctionName"] = name
    return {"Type": "AWS::Lambda::Function", "Properties": {**properties, "Environment": {"Variables": environment}}}


def deploy(tmp_path: Path, resources: dict[str, Any]) -> FunctionRegistry:
    registry = FunctionRegistry("http://127.0.0.1:9", tmp_path / "logs", lambda spec: "key")
    deployer = StackDeployer("http://127.0.0.1:9", ACCOUNT, registry)
    deployer.deploy(StackArtifact("Home", REGION, {"Resources": resources}, assets={"code.zip": tmp_path}))
    return registry


def resolved(tmp_path: Path, sub: Any, **others: Any) -> str:
    """What `{"Fn::Sub": sub}` resolves to in a function deployed after `others`."""
    registry = deploy(tmp_path, {**others, "Subject": function({"VALUE": {"Fn::Sub": sub}}, name="subject")})
    return registry.get("subject").environment["VALUE"]


def test_an_escaped_variable_is_the_literal_text(tmp_path):
    # Given a Fn::Sub string that writes `${!Literal}` (CloudFormation: "resolves this text as ${Literal}")
    sub = "echo ${!Literal} in ${AWS::Region} and ${!Other.Attr}"

    # When it is resolved, then the escapes are the text `${Literal}` and the variable is substituted
    assert resolved(tmp_path, sub) == f"echo ${{Literal}} in {REGION} and ${{Other.Attr}}"


def test_an_escaped_variable_is_not_a_variable_of_the_map(tmp_path):
    # Given a variable map that names `Literal`, and a string that escapes it once and uses it once
    sub = ["${!Literal}=${Literal}", {"Literal": "value"}]

    # When it is resolved, then only the unescaped one is substituted
    assert resolved(tmp_path, sub) == "${Literal}=value"


def test_every_variable_form_resolves(tmp_path):
    # Given a string with a pseudo parameter, a resource (Ref), a resource attribute (GetAtt) and map variables,
    # one of them resolved from an intrinsic and one named like a resource (the map comes first)
    other = function({}, name="other")
    sub = [
        "${AWS::AccountId}:${AWS::Partition}:${Other}:${Other.Arn}:${Mapped}:${Other.Name}",
        {"Mapped": {"Ref": "Other"}, "Other.Name": "from-the-map"},
    ]

    # When it is resolved, then each form has its value
    assert resolved(tmp_path, sub, Other=other) == (
        f"{ACCOUNT}:aws:other:arn:aws:lambda:{REGION}:{ACCOUNT}:function:other:other:from-the-map"
    )


def test_a_variable_of_the_map_is_no_dependency_on_a_resource_of_that_name(tmp_path):
    # Given a resource whose Fn::Sub map defines `Later`, and a resource Later that references the first
    resources = {
        "First": function({"VALUE": {"Fn::Sub": ["${Later}", {"Later": "from-the-map"}]}}, name="first"),
        "Later": function({"FIRST": {"Ref": "First"}}, name="later"),
    }

    # When the stack is deployed, then there is no cycle: the map variable is not the resource
    registry = deploy(tmp_path, resources)
    assert registry.get("first").environment["VALUE"] == "from-the-map"
    assert registry.get("later").environment["FIRST"] == "first"


def test_a_variable_naming_nothing_fails_the_deployment(tmp_path):
    # Given a string with a variable that is neither in the map nor a resource, when it is resolved, then the
    # deployment fails naming it, as CloudFormation refuses the template
    with pytest.raises(DeployError, match="Missing is referenced before it exists"):
        resolved(tmp_path, "${Missing}")
