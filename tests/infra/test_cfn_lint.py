"""cfn-lint on every synthesized template, in the template's own region."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cfnlint.api import lint

from tests.infra.support import APP_FIXTURES

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

# W3005 "dependency already enforced": CDK adds DependsOn on a function's role although Role: GetAtt already
# implies it. Harmless and not ours to change.
IGNORED_WARNINGS = {"W3005"}


@pytest.mark.parametrize("app_fixture", APP_FIXTURES)
def test_every_template_is_cfn_lint_clean(app_fixture: str, request: pytest.FixtureRequest) -> None:
    # Given the synthesized cloud assembly
    built: Any = request.getfixturevalue(app_fixture)
    assembly = built.app.synth()
    assert len(assembly.stacks) == len(built.stacks)

    for stack in assembly.stacks:
        # When each template is linted for its region
        template = json.dumps(stack.template)
        matches = lint(template, regions=[stack.environment.region])

        # Then there are no errors and no warnings beyond the known CDK one
        problems = [
            f"{m.rule.id} {m.message} ({'/'.join(str(p) for p in m.path)})"
            for m in matches
            if m.rule.id not in IGNORED_WARNINGS
        ]
        assert problems == [], f"{stack.stack_name}: {problems}"
