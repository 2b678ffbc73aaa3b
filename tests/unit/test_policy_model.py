"""The governance policy model: the repository's policy is valid; every kind of mistake is named."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from ami_governance.models.policy import GovernancePolicy, Mode, PolicyError, load_policy_file, parse_policy
from tests.conftest import POLICY_FILE


@pytest.fixture
def document() -> dict[str, Any]:
    return yaml.safe_load(POLICY_FILE.read_text())


def test_repository_policy_is_valid():
    policy = load_policy_file(POLICY_FILE)

    assert policy.mode is Mode.AUDIT
    assert policy.home_region in policy.governed_regions
    assert policy.tag_key("compliance") == "ami-governance:compliance"
    assert policy.protection_tag_key == "ami-governance:protected"


def test_minimal_policy_takes_safe_defaults():
    policy = parse_policy({"home_region": "us-east-1", "governed_regions": ["us-east-1"]})

    assert policy.mode is Mode.AUDIT
    assert policy.remediation.action.value == "none"
    assert policy.naming is None
    assert policy.required_tags == {}


def test_policy_round_trips_through_json_for_the_ssm_parameter():
    policy = load_policy_file(POLICY_FILE)

    assert GovernancePolicy.model_validate_json(policy.model_dump_json()) == policy


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(colour="blue"), "colour: unknown key"),
        (lambda d: d.update(mode="strict"), "mode: Input should be 'audit' or 'enforce'"),
        (lambda d: d["naming"].update(pattern="([a-z"), "naming.pattern: regex '([a-z' does not compile"),
        (lambda d: d["naming"].update(group_tags={"team": "Team"}), "group_tags names group 'team'"),
        (lambda d: d["naming"].update(example="Bad Name"), "example 'Bad Name' does not match the pattern"),
        (lambda d: d.update(governed_regions=["us-east-1", "mars-north-1"]), "governed_regions.1: unknown region"),
        (lambda d: d.update(home_region="eu-central-1"), "home_region 'eu-central-1' must be one of governed_regions"),
        (lambda d: d.update(governed_regions=["us-east-1", "us-east-1"]), "regions are listed more than once"),
        (lambda d: d["required_tags"].update(Team={}), "required_tags.Team: a tag rule needs exactly one of"),
        (lambda d: d["required_tags"].update(Team={"values": ["a"], "pattern": "a"}), "exactly one of"),
        (lambda d: d["required_tags"].update(Team={"pattern": "*"}), "required_tags.Team.pattern: regex '*'"),
        (lambda d: d["required_tags"].update(Team={"values": []}), "required_tags.Team.values"),
        (lambda d: d["required_tags"].update({"aws:foo": {"values": ["a"]}}), "not a valid EC2 tag key"),
        (lambda d: d["required_tags"].update({"ami-governance:team": {"values": ["a"]}}), "uses the system tag prefix"),
        (lambda d: d.update(tag_prefix="aws:gov:"), "tag_prefix: the 'aws:' prefix is reserved"),
        (lambda d: d["consistency"].update(no_reboot="sometimes"), "consistency.no_reboot"),
        (lambda d: d["remediation"].update(action="delete"), "remediation.action"),
        (lambda d: d["remediation"].update(max_images_per_event=0), "remediation.max_images_per_event"),
        (lambda d: d["exemptions"].update(by_team=["x"]), "exemptions.by_team: unknown key"),
    ],
)
def test_bad_policy_is_rejected_with_the_field_named(document, change, message):
    bad = copy.deepcopy(document)
    change(bad)

    with pytest.raises(PolicyError) as raised:
        parse_policy(bad, source="governance-policy.yaml")

    text = str(raised.value)
    assert text.startswith("governance-policy.yaml: invalid governance policy: ")
    assert message in text
    assert "\n" not in text


def test_policy_that_is_not_a_mapping_is_rejected():
    with pytest.raises(PolicyError, match="the policy must be a mapping, got list"):
        parse_policy(["audit"])


def test_unreadable_yaml_is_a_policy_error(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("mode: [audit\n")

    with pytest.raises(PolicyError, match="cannot read the policy"):
        load_policy_file(path)
