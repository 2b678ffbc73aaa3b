"""A bad policy fails `cdk synth` (app.py) with one line naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator.assembly import run_app

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

REPO_ROOT = Path(__file__).resolve().parents[2]
GOOD_POLICY = """
mode: audit
home_region: us-east-1
governed_regions: [us-east-1, eu-west-1]
"""


@pytest.mark.parametrize(
    ("policy_text", "field"),
    [
        (GOOD_POLICY + "naming:\n  pattern: '^(unclosed'\n", "naming.pattern"),
        ("mode: audit\nhome_region: us-east-1\ngoverned_regions: [us-east-1, mars-north-1]\n", "governed_regions.1"),
        (GOOD_POLICY + "retention_days: 30\n", "retention_days"),
        (GOOD_POLICY.replace("audit", "enforced"), "mode"),
    ],
    ids=["regex-does-not-compile", "unknown-region", "unknown-key", "bad-mode"],
)
def test_bad_policy_fails_synth_with_one_line_naming_the_field(policy_text: str, field: str, tmp_path: Path) -> None:
    # Given a policy file with one mistake
    policy_file = tmp_path / "bad.yaml"
    policy_file.write_text(policy_text, encoding="utf-8")
    # When app.py runs as `cdk synth` runs it
    result = run_app(tmp_path / "cdk.out", {"policy_file": str(policy_file)})

    # Then it fails with exactly one line on stderr that names the field, and writes no templates
    assert result.returncode != 0
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert field in lines[0]
    assert not list((tmp_path / "cdk.out").glob("*.template.json"))


@pytest.mark.parametrize(
    ("home_region", "context", "expected"),
    [
        ("ca-west-1", {}, ["region ca-west-1", "not published", "home_region", "us-east-1", "us-gov-west-1"]),
        ("us-gov-west-1", {}, ["region us-gov-west-1", "-c powertools_layer_version=N"]),
        ("us-east-1", {"powertools_layer_version": "latest"}, ["context powertools_layer_version", "'latest'"]),
    ],
    ids=["no-layer-in-region", "govcloud-without-layer-version", "bad-layer-version"],
)
def test_a_home_region_the_lambdas_cannot_run_in_fails_synth_with_one_line(
    home_region: str, context: dict[str, str], expected: list[str], tmp_path: Path
) -> None:
    # Given a valid policy whose home region has no Powertools layer (or needs a layer version given)
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(f"mode: audit\nhome_region: {home_region}\ngoverned_regions: [{home_region}]\n")

    # When app.py runs as `cdk synth` runs it
    result = run_app(tmp_path / "cdk.out", {"policy_file": str(policy_file), **context})

    # Then it fails with one line that says what is wrong and where the layer is, and writes no templates
    assert result.returncode != 0
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for part in expected:
        assert part in lines[0]
    assert not list((tmp_path / "cdk.out").glob("*.template.json"))
