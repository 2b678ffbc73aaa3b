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
