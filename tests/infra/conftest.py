"""Shared fixtures of the infra tests: one synthesized app per distinct policy, reused by every test module."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


def _silence_jsii_node_warnings() -> None:
    """jsii prints a banner to stderr when it dislikes the Node.js version; here that is noise, and it would
    hide what app.py itself writes to stderr. (Set before aws_cdk is imported: the banner comes at start-up.)"""
    node = shutil.which("node")
    if node is None:
        return
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=False).stdout
    major = version.strip().lstrip("v").split(".")[0]
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", major)
    for warning in ("DEPRECATED", "UNTESTED", "KNOWN_BROKEN"):
        os.environ.setdefault(f"JSII_SILENCE_WARNING_{warning}_NODE_VERSION", "1")


_silence_jsii_node_warnings()

from aws_cdk import App, Stack  # noqa: E402
from aws_cdk.assertions import Template  # noqa: E402

from ami_governance.models.policy import GovernancePolicy, load_policy_file, parse_policy  # noqa: E402
from emulator.matcher import pattern_matches  # noqa: E402
from stacks.app_builder import build_app  # noqa: E402
from stacks.context_options import RECYCLE_BIN_RETENTION_DAYS_CONTEXT_KEY  # noqa: E402
from stacks.nag import add_nag_checks  # noqa: E402
from stacks.resource_names import HOME_STACK_NAME, forwarder_stack_name  # noqa: E402
from tests.infra.support import (  # noqa: E402
    CLEANUP_ENABLED_RETENTION_DAYS,
    REPLICATION_APPROVAL_TAG,
    REPLICATION_KMS_KEYS,
    REPLICATION_SHARE_WITH,
    REPLICATION_SOURCE_ONLY_REGIONS,
    REPLICATION_TARGETS,
    SWEEP_ENABLED,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
POLICY_FILE = REPO_ROOT / "governance-policy.yaml"
EVENTS_DIR = REPO_ROOT / "tests" / "events"


@dataclass
class BuiltApp:
    """An app built exactly as app.py builds it (cdk-nag plugin included), synthesized on first use."""

    app: App
    stacks: list[Stack]
    policy: GovernancePolicy
    outdir: Path

    def stack(self, name: str) -> Stack:
        return next(stack for stack in self.stacks if stack.stack_name == name)

    @property
    def home(self) -> Stack:
        return self.stack(HOME_STACK_NAME)

    def forwarder(self, region: str) -> Stack:
        return self.stack(forwarder_stack_name(region))

    def template(self, stack: Stack) -> Template:
        # The first call synthesizes the app (running the cdk-nag validation); later calls reuse the assembly.
        return Template.from_stack(stack)


def policy_variant(**changes: Any) -> GovernancePolicy:
    """The repository's policy with top-level keys replaced, validated by the same model app.py uses."""
    document = load_policy_file(POLICY_FILE).model_dump(mode="json")
    document.update(changes)
    return parse_policy(document, source="test policy")


def _build(policy: GovernancePolicy, outdir: Path, context: dict[str, Any] | None = None) -> BuiltApp:
    app = App(outdir=str(outdir), context=context or {})
    stacks = build_app(app, policy, account=None)
    add_nag_checks(app)
    return BuiltApp(app=app, stacks=stacks, policy=policy, outdir=outdir)


@pytest.fixture(scope="session")
def audit_app(tmp_path_factory: pytest.TempPathFactory) -> BuiltApp:
    return _build(policy_variant(mode="audit"), tmp_path_factory.mktemp("audit-assembly"))


@pytest.fixture(scope="session")
def enforce_disable_app(tmp_path_factory: pytest.TempPathFactory) -> BuiltApp:
    policy = policy_variant(mode="enforce", remediation={"action": "disable", "grace_period_days": 7})
    return _build(policy, tmp_path_factory.mktemp("enforce-assembly"))


@pytest.fixture(scope="session")
def cleanup_enabled_app(tmp_path_factory: pytest.TempPathFactory) -> BuiltApp:
    """Everything cleanup can be given: deletion (no dry-run), cascade to replicas, and the Recycle Bin option; and
    the report's sweep on (not a dry run), deleting orphaned snapshots and deregistering stale unused AMIs."""
    policy = policy_variant(
        cleanup={"dry_run": False, "cascade_to_replicas": True},
        report={"sweep": SWEEP_ENABLED},
    )
    context = {RECYCLE_BIN_RETENTION_DAYS_CONTEXT_KEY: CLEANUP_ENABLED_RETENTION_DAYS}
    return _build(policy, tmp_path_factory.mktemp("cleanup-enabled-assembly"), context)


@pytest.fixture(scope="session")
def replication_app(tmp_path_factory: pytest.TempPathFactory) -> BuiltApp:
    """Replication at full stretch: three target regions with a KMS key each (one per way of naming a key), shared
    with an account, an organization and an OU, a custom approval tag outside the prefix, and governed regions that
    are not targets (the home region and one forwarder region)."""
    policy = policy_variant(
        governed_regions=[*REPLICATION_SOURCE_ONLY_REGIONS, *REPLICATION_TARGETS],
        approval={"tag": REPLICATION_APPROVAL_TAG, "approvers": ["arn:aws:iam::*:role/AmiApprover"]},
        replication={
            "regions": list(REPLICATION_TARGETS),
            "kms_keys": REPLICATION_KMS_KEYS,
            "share_with": REPLICATION_SHARE_WITH,
        },
    )
    return _build(policy, tmp_path_factory.mktemp("replication-assembly"))


@pytest.fixture(scope="session")
def no_replication_app(tmp_path_factory: pytest.TempPathFactory) -> BuiltApp:
    """The repository's policy without replication regions: nothing of replication may be built."""
    policy = policy_variant(replication={"regions": []})
    return _build(policy, tmp_path_factory.mktemp("no-replication-assembly"))


@pytest.fixture(scope="session")
def home_template(audit_app: BuiltApp) -> Template:
    return audit_app.template(audit_app.home)


@pytest.fixture(scope="session")
def forwarder_region(audit_app: BuiltApp) -> str:
    others = [r for r in audit_app.policy.governed_regions if r != audit_app.policy.home_region]
    assert others, "the repository policy should govern at least one region besides the home region"
    return others[0]


@pytest.fixture(scope="session")
def forwarder_template(audit_app: BuiltApp, forwarder_region: str) -> Template:
    return audit_app.template(audit_app.forwarder(forwarder_region))


@pytest.fixture(scope="session")
def matches() -> Callable[[dict[str, Any], dict[str, Any]], bool]:
    return pattern_matches


def _load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS_DIR / name).read_text(encoding="utf-8"))
    return event


@pytest.fixture(scope="session")
def load_event() -> Callable[[str], dict[str, Any]]:
    """Sample events (real-shaped) from tests/events/ by file name."""
    return _load_event


@pytest.fixture(scope="session")
def make_policy() -> Callable[..., GovernancePolicy]:
    return policy_variant
