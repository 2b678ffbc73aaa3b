"""`npx cdk bootstrap`, run in the repository with no environment named, bootstraps every environment the app's
stacks name (the CDK CLI reads them from the synthesized assembly and fills in the account from the credentials):
that must be exactly one per governed region, and the README must not name environments of its own."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from emulator.assembly import run_app

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

REPO_ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "111122223333"
GOVERNED_REGIONS = ["eu-west-1", "us-east-1", "ap-southeast-2"]


def test_the_apps_stacks_name_one_environment_per_governed_region(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a policy governing three regions, and the account the CDK CLI resolves from the credentials
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(
        f"mode: audit\nhome_region: eu-west-1\ngoverned_regions: [{', '.join(GOVERNED_REGIONS)}]\n", encoding="utf-8"
    )
    monkeypatch.setenv("CDK_DEFAULT_ACCOUNT", ACCOUNT)

    # When app.py runs as the CLI runs it before bootstrapping
    result = run_app(tmp_path / "cdk.out", {"policy_file": str(policy_file)})
    assert result.returncode == 0, result.stderr

    # Then the assembly's stacks name exactly the governed regions, in that account
    manifest = json.loads((tmp_path / "cdk.out" / "manifest.json").read_text(encoding="utf-8"))
    environments = {
        artifact["environment"]
        for artifact in manifest["artifacts"].values()
        if artifact["type"] == "aws:cloudformation:stack"
    }
    assert environments == {f"aws://{ACCOUNT}/{region}" for region in GOVERNED_REGIONS}


def test_the_readme_bootstraps_the_apps_environments_rather_than_a_list_of_its_own() -> None:
    # Given the README's bootstrap command, then it names no environment: a list would drift from the policy
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    commands = [line for line in readme.splitlines() if re.match(r"\s*(npx )?cdk bootstrap\b", line)]
    assert commands
    for command in commands:
        assert "aws://" not in command
