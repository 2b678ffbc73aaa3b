"""The Recycle Bin option: a retention rule for the snapshots cleanup deletes, in every governed region."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App

from emulator.assembly import run_app
from stacks.context_options import (
    RECYCLE_BIN_RETENTION_DAYS_CONTEXT_KEY,
    ContextError,
    recycle_bin_retention_days,
)
from stacks.resource_names import CLEANUP_TAG_NAME
from tests.infra.support import CLEANUP_ENABLED_RETENTION_DAYS

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

REPO_ROOT = Path(__file__).resolve().parents[2]
KEY = RECYCLE_BIN_RETENTION_DAYS_CONTEXT_KEY


def test_the_rule_retains_what_the_cleanup_service_marks(cleanup_enabled_app: Any) -> None:
    # Given the tag the cleanup service writes right before DeleteSnapshot, and the rule's tag
    from ami_governance.rules.cleanup import DELETING_TAG_VALUE
    from ami_governance.services.cleanup import CLAIM

    policy = cleanup_enabled_app.policy
    [rule] = cleanup_enabled_app.template(cleanup_enabled_app.home).find_resources("AWS::Rbin::Rule").values()

    # Then they are the same key and value
    assert rule["Properties"]["ResourceTags"] == [
        {"ResourceTagKey": policy.tag_key(CLAIM), "ResourceTagValue": DELETING_TAG_VALUE}
    ]
    assert CLEANUP_TAG_NAME == CLAIM


def test_without_the_option_no_stack_has_a_recycle_bin_rule(audit_app: Any) -> None:
    # Given the app built without the context option, then no region gets a rule
    for stack in audit_app.stacks:
        assert audit_app.template(stack).find_resources("AWS::Rbin::Rule") == {}, stack.stack_name


def test_with_the_option_every_governed_region_retains_the_snapshots_cleanup_deletes(cleanup_enabled_app: Any) -> None:
    # Given the app built with recycle_bin_retention_days
    policy = cleanup_enabled_app.policy
    days = CLEANUP_ENABLED_RETENTION_DAYS
    tag_key = f"{policy.tag_prefix}cleanup"

    # Then every governed region (the home stack's and each forwarder's) has exactly one rule, for EBS snapshots
    # carrying the tag cleanup writes right before it deletes one
    regions_with_a_rule = []
    for stack in cleanup_enabled_app.stacks:
        [rule] = cleanup_enabled_app.template(stack).find_resources("AWS::Rbin::Rule").values()
        regions_with_a_rule.append(stack.region)
        properties = rule["Properties"]
        assert properties["ResourceType"] == "EBS_SNAPSHOT"
        assert properties["RetentionPeriod"] == {"RetentionPeriodValue": days, "RetentionPeriodUnit": "DAYS"}
        assert properties["ResourceTags"] == [{"ResourceTagKey": tag_key, "ResourceTagValue": "deleting"}]
        assert f"restorable in the Recycle Bin for {days} days" in properties["Description"]
        assert len(properties["Description"]) <= 255
        assert "ExcludeResourceTags" not in properties
    assert sorted(regions_with_a_rule) == sorted(policy.governed_regions)


@pytest.mark.parametrize(
    ("value", "days"),
    [(None, None), (1, 1), (14, 14), (365, 365), ("30", 30), (" 7 ", 7)],
    ids=["absent", "min", "int", "max", "cli-string", "padded-string"],
)
def test_valid_retention_values(value: Any, days: int | None) -> None:
    # Given the option as cdk.json (a number) or `-c key=value` (a string) gives it, then it is read as days
    app = App(context={} if value is None else {KEY: value})
    assert recycle_bin_retention_days(app.node) == days


@pytest.mark.parametrize(
    "value",
    [0, 366, -1, "0", "abc", "7.5", 7.5, True, "", "1e2", [7]],
)
def test_invalid_retention_values_name_the_key(value: Any) -> None:
    # Given a value Recycle Bin would not accept (or that is not a whole number of days)
    app = App(context={KEY: value})

    # When read, then the error names the key, the accepted range and the value
    with pytest.raises(ContextError, match=rf"^context {KEY}: expected a whole number of days from 1 to 365, got "):
        recycle_bin_retention_days(app.node)


def test_bad_option_fails_synth_with_one_line_naming_the_key(tmp_path: Path) -> None:
    # Given the repository policy and an out-of-range option, as `cdk synth -c recycle_bin_retention_days=400`
    # passes it (conftest silences jsii's Node.js banner, so stderr holds only what app.py says)
    # When app.py runs as `cdk synth` runs it
    result = run_app(tmp_path / "cdk.out", {"policy_file": "governance-policy.yaml", KEY: "400"})

    # Then it fails with one line that names the key, and writes no templates
    assert result.returncode != 0
    assert result.stderr.splitlines() == [
        f"error: context {KEY}: expected a whole number of days from 1 to 365, got '400'"
    ]
    assert not list((tmp_path / "cdk.out").glob("*.template.json"))
