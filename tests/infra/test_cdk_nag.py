"""cdk-nag AwsSolutions: zero unacknowledged findings, and proof that a finding does fail the synth."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_sqs as sqs
from cdk_nag import AwsSolutionsChecks

from stacks.nag import add_nag_checks
from tests.infra.support import APP_FIXTURES

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]


def _findings(app: App) -> list[str]:
    # validate_scope runs the same rules as the synth-time plugin and returns what is not acknowledged,
    # errors and warnings alike.
    report = AwsSolutionsChecks().validate_scope(app)
    return sorted(
        f"{violation.severity} {violation.rule_name} at {resource.construct_path}: {violation.description}"
        for violation in report.violations
        for resource in violation.violating_resources
    )


@pytest.mark.parametrize("app_fixture", APP_FIXTURES)
def test_no_unacknowledged_findings(app_fixture: str, request: pytest.FixtureRequest) -> None:
    # Given the app as app.py builds it
    built: Any = request.getfixturevalue(app_fixture)

    # When the AwsSolutions pack checks it, then nothing is left unacknowledged
    assert _findings(built.app) == []


@pytest.mark.parametrize("app_fixture", APP_FIXTURES)
def test_synth_with_the_nag_plugin_succeeds(app_fixture: str, request: pytest.FixtureRequest) -> None:
    # Given the app with the plugin registered, when synthesized, then validation passes and the report is clean
    built: Any = request.getfixturevalue(app_fixture)
    assembly = built.app.synth()
    assert {s.stack_name for s in assembly.stacks} == {s.stack_name for s in built.stacks}


def test_an_unacknowledged_finding_fails_the_synth(tmp_path: Any) -> None:
    # Given an app with the plugin and a queue that breaks AwsSolutions rules
    app = App(outdir=str(tmp_path))
    sqs.Queue(Stack(app, "Careless"), "Plain", encryption=sqs.QueueEncryption.UNENCRYPTED)
    add_nag_checks(app)

    # When checked and synthesized, then the findings are reported and the synth fails
    assert any("AwsSolutions-SQS2" in finding for finding in _findings(app))
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
