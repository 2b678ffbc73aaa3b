#!/usr/bin/env python3
"""CDK entry point: validate the governance policy, then synthesize the stacks it describes."""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(REPO_ROOT / "lambdas"))

import aws_cdk as cdk  # noqa: E402

from ami_governance.models.policy import PolicyError, load_policy_file  # noqa: E402
from stacks.app_builder import build_app  # noqa: E402
from stacks.constructs.governed_function import PowertoolsLayerError  # noqa: E402
from stacks.context_options import ContextError  # noqa: E402
from stacks.nag import add_nag_checks  # noqa: E402

DEFAULT_POLICY_FILE = "governance-policy.yaml"


def main() -> None:
    app = cdk.App()
    # `-c policy_file=...`; a relative path is taken from the repository root, wherever cdk runs from.
    policy_file = REPO_ROOT / str(app.node.try_get_context("policy_file") or DEFAULT_POLICY_FILE)
    try:
        policy = load_policy_file(policy_file)
        build_app(app, policy, account=os.environ.get("CDK_DEFAULT_ACCOUNT"))
    except (PolicyError, ContextError, PowertoolsLayerError) as error:
        # One line naming the field, the context key or the region: what `cdk synth` shows for a bad policy or
        # option, or a home region the Lambdas cannot run in.
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        sys.exit(1)
    add_nag_checks(app)
    app.synth()


if __name__ == "__main__":
    main()
