"""The cloud assembly the emulator deploys: synthesized exactly as `cdk synth` does, or read from a cdk.out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent


class AssemblyError(RuntimeError):
    pass


@dataclass(frozen=True)
class StackArtifact:
    name: str
    region: str
    template: dict[str, Any]
    # S3 object key of a file asset (what the template's Code.S3Key names) -> its directory in the assembly
    assets: dict[str, Path] = field(default_factory=dict)
    dependencies: tuple[str, ...] = ()


def run_app(outdir: Path, context: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """Run app.py exactly as the CDK CLI does (CDK_OUTDIR, CDK_CONTEXT_JSON): what `cdk synth` runs."""
    env = {
        **os.environ,
        "CDK_OUTDIR": str(outdir),
        "CDK_CONTEXT_JSON": json.dumps(context),
        # jsii prints a banner on Node.js 20; without it, stderr holds only what app.py says
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": os.environ.get(
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20"
        ),
    }
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "app.py")],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def synthesize(outdir: Path, policy_file: Path | None = None, context: dict[str, Any] | None = None) -> Path:
    """Synthesize the app into `outdir` and return it. A bad policy fails here with app.py's one-line error, as
    `cdk synth` would."""
    full_context = dict(context or {})
    if policy_file is not None:
        full_context["policy_file"] = str(Path(policy_file).resolve())
    result = run_app(outdir, full_context)
    if result.returncode != 0:
        raise AssemblyError(f"synth failed: {result.stderr.strip() or result.stdout.strip()}")
    return outdir


def read_assembly(outdir: Path) -> list[StackArtifact]:
    """The CloudFormation stacks of a cloud assembly, dependencies first."""
    outdir = outdir.resolve()
    manifest_path = outdir / "manifest.json"
    if not manifest_path.exists():
        raise AssemblyError(f"{outdir} is not a cloud assembly (no manifest.json); run `make synth` first")
    manifest = json.loads(manifest_path.read_text())
    stacks: dict[str, StackArtifact] = {}
    for name, artifact in manifest.get("artifacts", {}).items():
        if artifact.get("type") != "aws:cloudformation:stack":
            continue
        region = artifact["environment"].rsplit("/", 1)[-1]
        template = json.loads((outdir / artifact["properties"]["templateFile"]).read_text())
        stacks[name] = StackArtifact(
            name=name,
            region=region,
            template=template,
            assets=_file_assets(outdir, name),
            dependencies=tuple(d for d in artifact.get("dependencies", []) if not d.endswith(".assets")),
        )
    return _dependencies_first(stacks)


def _file_assets(outdir: Path, stack_name: str) -> dict[str, Path]:
    assets_file = outdir / f"{stack_name}.assets.json"
    if not assets_file.exists():
        return {}
    assets: dict[str, Path] = {}
    for entry in json.loads(assets_file.read_text()).get("files", {}).values():
        source = outdir / entry["source"]["path"]
        for destination in entry.get("destinations", {}).values():
            assets[destination["objectKey"]] = source
    return assets


def _dependencies_first(stacks: dict[str, StackArtifact]) -> list[StackArtifact]:
    ordered: list[StackArtifact] = []
    done: set[str] = set()

    def visit(name: str, trail: tuple[str, ...]) -> None:
        if name in done or name not in stacks:
            return
        if name in trail:
            raise AssemblyError(f"stack dependency cycle: {' -> '.join((*trail, name))}")
        for dependency in stacks[name].dependencies:
            visit(dependency, (*trail, name))
        done.add(name)
        ordered.append(stacks[name])

    for name in sorted(stacks):
        visit(name, ())
    return ordered
