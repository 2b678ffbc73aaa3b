"""Granted == used, per function: a pytest plugin that records every AWS call each Lambda makes across the
integration and e2e suites and compares it with that function's role in the synthesized home template.

    pytest --iam-usage=strict    # make test, make iam-usage: a used action the role lacks fails the run, and so
                                 # does a granted action no test used (unless UNUSED_ALLOWED says why)
    pytest --iam-usage=used tests/integration/test_x.py   # a subset: only used-but-not-granted fails

How (`tests/iam/api_calls.py` records, `tests/iam/grants.py` compares):

- The process that runs the session (the xdist controller, or the only process) makes a run directory and passes
  it to the xdist workers in the environment. Every process that runs tests records into `<run>/<worker>/`:
  `tests.jsonl` (when each test started), `harness.jsonl` (the handlers' calls in that process, with the test and
  the digest of the policy the handler loaded, and that policy once), and `emulators/` (every emulator the e2e
  tests start inherits `AMI_GOVERNANCE_RECORD_API_CALLS` and records its functions' calls with the templates it
  deployed; a call belongs to the test of that worker that was running at its time).
- At the end the controller groups the policies into variants (`grants.variant_key`: the actions
  stacks/permissions.py gives each function under the policy), takes each variant's home template from an
  emulator that deployed it or synthesizes it once from a representative policy, and compares. A handler that
  failed before it loaded a policy is judged under the repository's policy. The table is printed in the terminal
  summary and written to `<run>/iam-usage.md`; any finding fails the session.
"""

from __future__ import annotations

import bisect
import json
import os
import shutil
import subprocess
import tempfile
import time
import traceback
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.iam.api_calls import HarnessRecorder, function_of_handler, iam_actions, policy_digest
from tests.iam.grants import (
    HOME_STACK,
    UNUSED_ALLOWED,
    Comparison,
    TemplateError,
    Use,
    compare,
    product_functions,
    render_table,
    role_grants,
    synthesize_home_template,
    template_policy,
    variant_key,
    variant_label,
)

RUN_DIR_ENV = "AMI_GOVERNANCE_IAM_USAGE_RUN"
RECORD_API_CALLS_ENV = "AMI_GOVERNANCE_RECORD_API_CALLS"  # emulator/api_call_recording.py
MODES = ("strict", "used")
REPO_ROOT = Path(__file__).resolve().parents[2]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("iam-usage").addoption(
        "--iam-usage",
        choices=MODES,
        default=None,
        help="record every AWS call each Lambda makes and compare with its role: 'strict' fails on a used action "
        "the role lacks and on a granted action no test used (the whole suite: make test); 'used' only on the "
        "first (a subset of the tests)",
    )


def pytest_configure(config: pytest.Config) -> None:
    mode = config.getoption("iam_usage")
    if mode is None:
        return
    if not hasattr(config, "workerinput"):
        # The session's own process: it owns the run directory; xdist workers inherit it at their start.
        run_dir = Path(tempfile.mkdtemp(prefix="ami-governance-iam-usage-"))
        os.environ[RUN_DIR_ENV] = str(run_dir)
        config.pluginmanager.register(UsageCheck(run_dir, mode), "iam-usage-check")
    run_dir = Path(os.environ[RUN_DIR_ENV])
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    config.pluginmanager.register(UsageRecording(run_dir / worker), "iam-usage-recording")


# ---- recording, in every process that runs tests -------------------------------------------------------------


class UsageRecording:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        (directory / "emulators").mkdir(parents=True, exist_ok=True)
        # The emulators the e2e tests start inherit the environment, and give it to their workers.
        os.environ[RECORD_API_CALLS_ENV] = str(directory / "emulators")
        self.recorder = HarnessRecorder()
        self.recorder.install()
        self._policies_written: set[str] = set()

    def _append(self, name: str, lines: list[dict[str, Any]]) -> None:
        if lines:
            with (self.directory / name).open("a", encoding="utf-8") as sink:
                sink.writelines(json.dumps(line) + "\n" for line in lines)

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        self.recorder.start_test(nodeid)
        self._append("tests.jsonl", [{"test": nodeid, "start": time.time()}])

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        lines: list[dict[str, Any]] = []
        for invocation in self.recorder.finish_test():
            digest = None
            if invocation.policy_json is not None:
                digest = policy_digest(invocation.policy_json)
                if digest not in self._policies_written:
                    self._policies_written.add(digest)
                    lines.append({"policy": digest, "document": invocation.policy_json})
            for (service, operation, params), count in invocation.calls.items():
                lines.append(
                    {
                        "test": invocation.test or nodeid,
                        "function": invocation.function,
                        "policy_digest": digest,
                        "service": service,
                        "operation": operation,
                        "params": list(params),
                        "count": count,
                    }
                )
        if self.recorder.unattributed:
            lines.append({"unattributed": self.recorder.unattributed, "test": nodeid})
            self.recorder.unattributed = 0
        self._append("harness.jsonl", lines)

    def pytest_unconfigure(self) -> None:
        self.recorder.uninstall()


# ---- reading the run back ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedCall:
    function: str
    test: str
    service: str
    operation: str
    params: frozenset[str]
    count: int
    policy_digest: str | None = None  # harness calls: the policy the handler loaded
    template: int | None = None  # emulator calls: index into Run.templates


@dataclass
class Run:
    calls: list[RecordedCall] = field(default_factory=list)
    policies: dict[str, str] = field(default_factory=dict)
    templates: list[dict[str, Any]] = field(default_factory=list)
    unattributed: int = 0
    other_functions: int = 0  # calls of functions outside the product (an e2e test's own function)


def _lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_run(run_dir: Path) -> Run:
    run = Run()
    for worker in sorted(p for p in run_dir.iterdir() if p.is_dir()):
        starts = sorted((line["start"], line["test"]) for line in _lines(worker / "tests.jsonl"))
        for line in _lines(worker / "harness.jsonl"):
            if "document" in line:
                run.policies[line["policy"]] = line["document"]
            elif "unattributed" in line:
                run.unattributed += line["unattributed"]
            else:
                run.calls.append(
                    RecordedCall(
                        function=line["function"],
                        test=line["test"],
                        service=line["service"],
                        operation=line["operation"],
                        params=frozenset(line["params"]),
                        count=line["count"],
                        policy_digest=line["policy_digest"],
                    )
                )
        for emulator in sorted((worker / "emulators").glob("emulator-*")):
            _read_emulator(run, emulator, starts)
    return run


def _test_at(starts: list[tuple[float, str]], moment: float) -> str:
    # The test that was running: the last one to start before the call (the first, for a call before any).
    index = bisect.bisect_right(starts, (moment, "\uffff")) - 1
    return starts[max(index, 0)][1] if starts else "(no test)"


def _read_emulator(run: Run, directory: Path, starts: list[tuple[float, str]]) -> None:
    manifest_file = directory / "manifest.json"
    if not manifest_file.exists():
        return
    manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    index_of_stack: dict[str, int] = {}
    for stack, template in manifest["templates"].items():
        index_of_stack[stack] = len(run.templates)
        run.templates.append(template)
    for calls_file in sorted(directory.glob("calls-*.jsonl")):
        for line in _lines(calls_file):
            deployed = manifest["functions"].get(line["function"], {})
            function = function_of_handler(str(deployed.get("handler", "")))
            if function is None or deployed.get("stack") != HOME_STACK:
                run.other_functions += 1
                continue
            run.calls.append(
                RecordedCall(
                    function=function,
                    test=_test_at(starts, line["time"]),
                    service=line["service"],
                    operation=line["operation"],
                    params=frozenset(line["params"]),
                    count=1,
                    template=index_of_stack[deployed["stack"]],
                )
            )


# ---- the check, in the session's own process ---------------------------------------------------------------


@dataclass
class Variant:
    key: str
    label: str
    name: str = ""
    source: str = ""
    grants: dict[str, frozenset[str]] = field(default_factory=dict)  # function -> granted actions
    calls: int = 0


@dataclass
class Report:
    comparison: Comparison
    variants: list[Variant]
    run: Run
    errors: list[str]
    failures: list[str]


def _quiet_jsii() -> None:
    """jsii prints a banner on stderr at start-up when it dislikes the Node.js version (tests/infra/conftest.py
    does the same); set before aws_cdk is first imported."""
    node = shutil.which("node")
    if node is None:
        return
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=False).stdout
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", version.strip().lstrip("v").split(".")[0])
    for warning in ("DEPRECATED", "UNTESTED", "KNOWN_BROKEN"):
        os.environ.setdefault(f"JSII_SILENCE_WARNING_{warning}_NODE_VERSION", "1")


def analyse(run_dir: Path, mode: str) -> Report:  # noqa: PLR0912 - reads the run, assigns variants, compares: one pass each
    from ami_governance.models.policy import load_policy_file, parse_policy

    _quiet_jsii()

    run = read_run(run_dir)
    errors: list[str] = []
    variants: dict[str, Variant] = {}
    representative: dict[str, Any] = {}

    def variant_of(policy: Any) -> Variant:
        key = variant_key(policy)
        if key not in variants:
            variants[key] = Variant(key=key, label=variant_label(policy))
            representative[key] = policy
        return variants[key]

    default_policy = load_policy_file(REPO_ROOT / "governance-policy.yaml")
    policy_variant = {digest: variant_of(parse_policy(json.loads(doc))) for digest, doc in sorted(run.policies.items())}
    template_variant: dict[int, Variant] = {}
    for index, template in enumerate(run.templates):
        if not product_functions(template):
            continue  # a forwarder stack, or an e2e test's own
        try:
            variant = variant_of(parse_policy(template_policy(template)))
        except TemplateError as error:
            errors.append(f"e2e emulator template #{index}: {error}")
            continue
        template_variant[index] = variant
        _merge_grants(variant, template, f"e2e emulator template #{index}", errors)

    uses: list[Use] = []
    for call in run.calls:
        if call.template is not None:
            variant = template_variant.get(call.template)
            if variant is None:
                continue
        elif call.policy_digest is not None and call.policy_digest in policy_variant:
            variant = policy_variant[call.policy_digest]
        else:
            variant = variant_of(default_policy)
        variant.calls += call.count
        for action in iam_actions(call.service, call.operation, call.params):
            uses.append(Use(call.function, variant.key, action.name, call.test, call.count, action.via))

    for key, variant in variants.items():
        # Synthesized when no emulator deployed the variant, or only a copy an e2e test broke (a handler typo hides
        # that function).
        replicates = bool(representative[key].replication.regions)
        deployed = {"enforce", "cleanup", "report", *(("replicate", "copy") if replicates else ())}
        if not deployed <= set(variant.grants):
            try:
                _merge_grants(variant, synthesize_home_template(representative[key]), "synthesized", errors)
            except Exception as error:  # a policy the app refuses: say so, do not hide the variant
                errors.append(f"synthesizing {variant.label}: {type(error).__name__}: {error}")
    ordered = sorted(variants.values(), key=lambda v: (v.label, v.key))
    for number, variant in enumerate(ordered, start=1):
        variant.name = f"V{number}"

    grants = {(f, v.key): actions for v in ordered for f, actions in v.grants.items()}
    comparison = compare(uses, grants, UNUSED_ALLOWED)
    names = {v.key: v.name for v in ordered}
    failures = [
        f"{r.function} uses {r.action} (tests: {', '.join(sorted(r.tests)[:3])}), which its role does not grant "
        f"under {', '.join(sorted(names[v] for v in r.missing_in))}"
        for r in comparison.missing
    ]
    if mode == "strict":
        failures += [
            f"{r.function}'s role grants {r.action}, which no test used: add the test that exercises it, or remove "
            "the grant, or say in tests/iam/grants.py UNUSED_ALLOWED why only AWS uses it"
            for r in comparison.unused
        ]
        failures += [f"UNUSED_ALLOWED{key} excuses nothing (the action is used, or granted nowhere)" for key in
                     comparison.stale_allowances]  # fmt: skip
    return Report(comparison, ordered, run, errors, failures + errors)


def _merge_grants(variant: Variant, template: dict[str, Any], source: str, errors: list[str]) -> None:
    """Take the template's grants for the variant; a second template of the same variant must agree (else the
    variant key misses something that changes a role)."""
    try:
        grants = {f: role_grants(template, logical_id) for f, logical_id in product_functions(template).items()}
    except TemplateError as error:
        errors.append(f"{source}: {error}")
        return
    for function, actions in grants.items():
        known = variant.grants.get(function)
        if known is None:
            variant.grants[function] = actions
            variant.source = variant.source or source
        elif known != actions:
            errors.append(
                f"two templates of variant {variant.label} grant {function} different actions "
                f"({sorted(known ^ actions)}): tests/iam/grants.py variant_key misses what makes them differ"
            )


@dataclass
class Finding:
    """An entry of the terminal reporter's stats: an object with a __dict__, as pytest's own reports are."""

    message: str


class UsageCheck:
    def __init__(self, run_dir: Path, mode: str) -> None:
        self.run_dir = run_dir
        self.mode = mode
        self.report: Report | None = None
        self.crash: str | None = None

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        try:
            self.report = analyse(self.run_dir, self.mode)
        except Exception:  # the check itself broke: fail loudly rather than pass silently
            self.crash = traceback.format_exc()
        failed = self.crash is not None or (self.report is not None and self.report.failures)
        if failed and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        write = terminalreporter.write_line
        terminalreporter.section("IAM: granted vs used, per function")
        if self.crash is not None:
            write("the granted-vs-used check failed to run:", red=True)
            for line in self.crash.splitlines():
                write(line, red=True)
            terminalreporter.stats.setdefault("IAM check error", []).append(Finding(self.crash))
            return
        report = self.report
        if report is None:
            return
        lines = _report_lines(report, self.run_dir)
        (self.run_dir / "iam-usage.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
        for line in lines:
            write(line)
        for failure in report.failures:
            write(f"FAILED (IAM): {failure}", red=True)
        write(f"table: {self.run_dir / 'iam-usage.md'}")
        if report.failures:
            # Counted in the final summary line; plugins read every entry of stats as a report (hypothesis reads
            # its __dict__), so not plain strings.
            terminalreporter.stats.setdefault("IAM findings", []).extend(Finding(f) for f in report.failures)


def _report_lines(report: Report, run_dir: Path) -> list[str]:
    calls = sum(c.count for c in report.run.calls)
    lines = [f"{calls} AWS calls of the Lambdas recorded; roles of these policy variants:"]
    lines += [f"- {v.name}: {v.label} ({v.source or 'no template'}; {v.calls} calls)" for v in report.variants]
    lines += ["", *render_table(report.comparison, {v.key: v.name for v in report.variants}), ""]
    names = {v.key: v for v in report.variants}
    notes = defaultdict(int)
    for (function, key), count in report.comparison.not_deployed.items():
        notes[f"{function} under {names[key].name} (not deployed there: a test of the feature switched off)"] += count
    if report.run.unattributed:
        notes["Lambda code outside a handler (adapter tests), not attributed to a function"] += report.run.unattributed
    if report.run.other_functions:
        notes["functions outside the product (an e2e test's own), not checked"] += report.run.other_functions
    lines += [f"- {count} calls of {what}" for what, count in sorted(notes.items())]
    return lines
