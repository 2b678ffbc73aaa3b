"""What each function's role grants, in a synthesized home template, and the comparison with what it used.

Pure functions except `synthesize_home_template`: `role_grants` reads a template, `compare` takes the uses and the
grants and returns the findings and the table rows, `render_table` prints them.

Grants are compared by action only (conditions and resources are the authorization check's business,
`tests/iam/authorization.py`): a used action must match an `Allow` statement's action of the function's role
(IAM wildcards, case-insensitive, as IAM matches them); a granted action that nothing used is a finding unless
`UNUSED_ALLOWED` gives the reason.
"""

from __future__ import annotations

import json
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.iam.api_calls import function_of_handler
from tests.iam.patterns import granted_action_matches

HOME_STACK = "AmiGovernanceHome"
POLICY_PARAMETER = "/ami-governance/policy"
FUNCTION_ORDER = ("enforce", "cleanup", "replicate", "copy", "report")
EVERY_FUNCTION = "*"

# Actions the Lambda service itself performs with a function's execution role.
_LOGS = (
    "Lambda writes the function's logs to its log group with the execution role (Lambda developer guide, "
    "'Defining Lambda function permissions with an execution role')"
)
_TRACES = (
    "active tracing: Lambda sends the invocation's trace data with the execution role (Lambda developer guide, "
    "'Visualize Lambda function invocations using AWS X-Ray')"
)
_ASYNC_DLQ = (
    "Lambda sends an event that failed every retry of an asynchronous invocation to the function's dead-letter "
    "queue with the execution role (Lambda developer guide, 'Adding a dead-letter queue')"
)
_SQS_MAPPING = (
    "the SQS event source mapping receives, deletes and reads the queue with the function's execution role "
    "(Lambda developer guide, 'Using Lambda with Amazon SQS': ReceiveMessage, DeleteMessage, GetQueueAttributes)"
)
_IMAGE_REFERENCES = (
    "granted only under aws:CalledVia ec2-images.amazonaws.com: DescribeImageReferences reads each resource type "
    "it searches with the caller's permissions, and finds only the references the caller may read (EC2 User "
    "Guide, 'Identify your resources referencing specified AMIs', required permissions; the managed policy "
    "AmazonEC2ImageReferencesAccessPolicy); the code never calls it, and moto's DescribeImageReferences does not "
    "make the calls EC2 makes"
)
# Granted for a path of the report Lambda that the integration tests exercise below its handler (service and
# adapter tests, whose calls are attributed to no function) and no handler-level test exercises yet.
_REPORT_BELOW_HANDLER = (
    "the report's {path}: exercised below the handler ({test}), whose calls belong to no function; no integration "
    "or e2e test runs it through the handler yet"
)
# Granted, and never called by the function's code: why. (function, or "*" for every function; action) -> reason.
# Each entry must excuse something in a full run (`--iam-usage=strict`), or it is reported as stale.
UNUSED_ALLOWED: dict[tuple[str, str], str] = {
    (EVERY_FUNCTION, "logs:CreateLogStream"): _LOGS,
    (EVERY_FUNCTION, "logs:PutLogEvents"): _LOGS,
    (EVERY_FUNCTION, "xray:PutTraceSegments"): _TRACES,
    (EVERY_FUNCTION, "xray:PutTelemetryRecords"): _TRACES,
    ("enforce", "sqs:SendMessage"): _ASYNC_DLQ,
    ("cleanup", "sqs:SendMessage"): _ASYNC_DLQ,
    ("report", "sqs:SendMessage"): _ASYNC_DLQ,
    ("report", "ec2:DescribeLaunchTemplates"): _IMAGE_REFERENCES,
    ("report", "imagebuilder:ListImageRecipes"): _IMAGE_REFERENCES,
    ("report", "imagebuilder:ListContainerRecipes"): _IMAGE_REFERENCES,
    ("report", "imagebuilder:GetContainerRecipe"): _IMAGE_REFERENCES,
    ("report", "ssm:GetParameters"): _REPORT_BELOW_HANDLER.format(
        path="values of the parameters of data type aws:ec2:image (adapters/scan.py)",
        test="tests/integration/test_report_scan.py",
    ),
    ("report", "dynamodb:GetItem"): _REPORT_BELOW_HANDLER.format(
        path="sweep retrying a deferred clean-up through the clean-up service, which reads the AMI's item",
        test="tests/integration/test_sweep.py",
    ),
    ("report", "ec2:DeleteTags"): _REPORT_BELOW_HANDLER.format(
        path="sweep removing stale verdict tags when it judges an AMI, and the deletion mark of a snapshot EC2 "
        "refuses to delete as in use (services/sweep.py)",
        test="tests/integration/test_sweep.py",
    ),
    ("copy", "sqs:ReceiveMessage"): _SQS_MAPPING,
    ("copy", "sqs:DeleteMessage"): _SQS_MAPPING,
    ("copy", "sqs:GetQueueAttributes"): _SQS_MAPPING,
    ("copy", "sqs:GetQueueUrl"): (
        "CDK's SqsEventSource grants it with the others (grantConsumeMessages); neither the code nor the event "
        "source mapping calls it, and it reveals only the URL of the queue the role already consumes"
    ),
}


class TemplateError(RuntimeError):
    pass


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def product_functions(template: Mapping[str, Any]) -> dict[str, str]:
    """The product's functions in a home template: function (`enforce`, ...) -> logical id."""
    functions: dict[str, str] = {}
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Lambda::Function":
            continue
        function = function_of_handler(str(resource.get("Properties", {}).get("Handler", "")))
        if function is not None:
            functions[function] = logical_id
    return functions


def role_grants(template: Mapping[str, Any], function_logical_id: str) -> frozenset[str]:
    """The actions every `Allow` statement of the function's role names: the role's inline policies and the
    AWS::IAM::Policy resources attached to it. A managed policy or NotAction cannot be read offline: refused."""
    resources = template.get("Resources", {})
    role = resources[function_logical_id]["Properties"]["Role"]
    if not (isinstance(role, dict) and "Fn::GetAtt" in role):
        raise TemplateError(f"{function_logical_id}: role {role!r} is not a role of this template")
    role_id = role["Fn::GetAtt"][0]
    role_properties = resources[role_id].get("Properties", {})
    if role_properties.get("ManagedPolicyArns"):
        raise TemplateError(f"{role_id}: managed policies {role_properties['ManagedPolicyArns']} cannot be checked")
    documents = [p["PolicyDocument"] for p in role_properties.get("Policies", [])]
    documents += [
        resource["Properties"]["PolicyDocument"]
        for resource in resources.values()
        if resource.get("Type") == "AWS::IAM::Policy" and {"Ref": role_id} in resource["Properties"].get("Roles", [])
    ]
    actions: set[str] = set()
    for document in documents:
        for statement in _as_list(document.get("Statement", [])):
            if "NotAction" in statement:
                raise TemplateError(f"{role_id}: a NotAction statement cannot be compared action by action")
            if statement.get("Effect") == "Allow":
                actions.update(str(a) for a in _as_list(statement.get("Action", [])))
    return frozenset(actions)


def template_policy(template: Mapping[str, Any]) -> dict[str, Any]:
    """The governance policy a home template deploys (the value of its policy parameter)."""
    for resource in template.get("Resources", {}).values():
        properties = resource.get("Properties", {})
        if resource.get("Type") == "AWS::SSM::Parameter" and properties.get("Name") == POLICY_PARAMETER:
            document: dict[str, Any] = json.loads(properties["Value"])
            return document
    raise TemplateError("the template has no policy parameter")


# ---- policy variants ---------------------------------------------------------------------------------------


def variant_key(policy: Any) -> str:
    """What makes two policies' roles differ: the actions stacks/permissions.py gives each function under the
    policy (the other grants of the home stack are the same for every policy), whether replication is built, and
    whether the report's sweep retries clean-ups (the home stack then grants it the inventory's GetItem). Derived
    from the stacks' own code, so a new policy-dependent grant there changes the key with it."""
    from stacks.permissions import (
        cleanup_permissions,
        copy_permissions,
        enforce_permissions,
        replicate_permissions,
        report_permissions,
        sweep_retries_cleanups,
    )

    def actions(permissions: Iterable[Any]) -> list[str]:
        return sorted({f"{p.statement.effect.value} {a}" for p in permissions for a in p.statement.actions})

    account = "123456789012"
    parts: dict[str, list[str]] = {
        "enforce": actions(enforce_permissions(policy, account)),
        "cleanup": actions(cleanup_permissions(policy, account)),
        "report": actions(report_permissions(policy, account, report_objects=["arn:aws:s3:::reports/*"])),
        "report inventory": ["GetItem"] if sweep_retries_cleanups(policy) else [],
    }
    if policy.replication.regions:
        queue = f"arn:aws:sqs:{policy.home_region}:{account}:copy-jobs"
        parts["replicate"] = actions(replicate_permissions(policy, account, copy_queue_arn=queue))
        parts["copy"] = actions(copy_permissions(policy, account))
    return json.dumps(parts, sort_keys=True)


def variant_label(policy: Any) -> str:
    """A short human name of what the policy switches on (the grant-relevant fields)."""
    mode = str(policy.mode.value)
    if mode == "enforce":
        mode += f"/{policy.remediation.action.value}"
    cleanup = "dry-run"
    if not policy.cleanup.dry_run:
        cleanup = "delete+cascade" if policy.cleanup.cascade_to_replicas else "delete"
    replication = "no replication"
    if policy.replication.regions:
        extras = [
            name
            for name, on in (
                ("kms", bool(policy.replication.kms_keys)),
                ("share", any(policy.replication.share_with.model_dump().values())),
            )
            if on
        ]
        replication = "replication" + "".join(f"+{e}" for e in extras)
    sweep = policy.report.sweep
    report = "sweep off"
    if sweep.enabled:
        report = "sweep dry-run" if sweep.dry_run else "sweep acting"
    return f"{mode}, cleanup {cleanup}, {replication}, {report}"


def synthesize_home_template(policy: Any) -> dict[str, Any]:
    """The home template `cdk synth` makes for this policy (the app as app.py builds it, without cdk-nag, which
    changes no statement)."""
    from aws_cdk import App

    from stacks.app_builder import build_app

    with tempfile.TemporaryDirectory(prefix="ami-governance-iam-usage-synth-") as outdir:
        app = App(outdir=outdir)
        build_app(app, policy, account=None)
        app.synth()
        template: dict[str, Any] = json.loads((Path(outdir) / f"{HOME_STACK}.template.json").read_text())
    return template


# ---- comparison --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Use:
    """`count` calls needing `action`, made by `function` under a policy of `variant`, in `test`."""

    function: str
    variant: str
    action: str
    test: str
    count: int = 1
    via: str | None = None  # an action AWS performs on the call's behalf: the call that implies it


@dataclass
class Row:
    """One line of the table: an action of a function, granted (a pattern of its role) or used or both."""

    function: str
    action: str
    granted_in: set[str] = field(default_factory=set)  # variants whose role grants it
    deployed_in: set[str] = field(default_factory=set)  # variants where the function exists
    calls: int = 0
    used_as: set[str] = field(default_factory=set)  # the used actions it covers, when it is a wildcard
    via: set[str] = field(default_factory=set)
    tests: set[str] = field(default_factory=set)
    missing_in: set[str] = field(default_factory=set)  # used but not granted under these variants
    allowed_unused: str | None = None

    @property
    def unused(self) -> bool:
        return bool(self.granted_in) and self.calls == 0 and self.allowed_unused is None


@dataclass
class Comparison:
    rows: list[Row]
    # (function, variant) -> calls of a function that variant does not deploy (a test of a disabled feature)
    not_deployed: dict[tuple[str, str], int]
    stale_allowances: list[tuple[str, str]]

    @property
    def missing(self) -> list[Row]:
        return [r for r in self.rows if r.missing_in]

    @property
    def unused(self) -> list[Row]:
        return [r for r in self.rows if r.unused]


def _allowance(function: str, action: str, allowlist: Mapping[tuple[str, str], str]) -> tuple[str, str] | None:
    for key in ((function, action), (EVERY_FUNCTION, action)):
        if key in allowlist:
            return key
    return None


def compare(  # noqa: PLR0912 - grants, uses and the allowlist folded into one table of rows
    uses: Iterable[Use],
    grants: Mapping[tuple[str, str], frozenset[str]],
    allowlist: Mapping[tuple[str, str], str] = UNUSED_ALLOWED,
) -> Comparison:
    """Uses against grants ((function, variant) -> granted action patterns).

    A use is missing if its function's role under its variant grants no matching action. A granted action is
    unused if no use of that function, under any variant, matches it, and the allowlist does not excuse it.
    """
    rows: dict[tuple[str, str], Row] = {}
    for (function, variant), patterns in grants.items():
        for pattern in patterns:
            row = rows.setdefault((function, pattern), Row(function, pattern))
            row.granted_in.add(variant)
    deployed: dict[str, set[str]] = defaultdict(set)
    for function, variant in grants:
        deployed[function].add(variant)

    not_deployed: dict[tuple[str, str], int] = defaultdict(int)
    for use in uses:
        patterns = grants.get((use.function, use.variant))
        if patterns is None:
            not_deployed[(use.function, use.variant)] += use.count
            continue
        granting = [p for p in patterns if granted_action_matches(p, use.action)]
        if granting:
            targets = [rows[(use.function, p)] for p in granting]
        else:
            targets = [rows.setdefault((use.function, use.action), Row(use.function, use.action))]
        for row in targets:
            row.calls += use.count
            row.tests.add(use.test)
            if use.via:
                row.via.add(use.via)
            if row.action != use.action:
                row.used_as.add(use.action)
            if not granting:
                row.missing_in.add(use.variant)

    used_allowances: set[tuple[str, str]] = set()
    for row in rows.values():
        row.deployed_in = set(deployed[row.function])
        if row.granted_in and row.calls == 0:
            key = _allowance(row.function, row.action, allowlist)
            if key is not None:
                row.allowed_unused = allowlist[key]
                used_allowances.add(key)
    stale = sorted(set(allowlist) - used_allowances)
    order = {name: i for i, name in enumerate(FUNCTION_ORDER)}
    ordered = sorted(rows.values(), key=lambda r: (order.get(r.function, len(order)), r.function, r.action.lower()))
    return Comparison(rows=ordered, not_deployed=dict(not_deployed), stale_allowances=stale)


# ---- rendering ---------------------------------------------------------------------------------------------


def _short_test(nodeid: str) -> str:
    return nodeid.removeprefix("tests/")


def _granted_cell(row: Row, variant_names: Mapping[str, str]) -> str:
    if row.missing_in:
        return "**NO** under " + ", ".join(sorted(variant_names.get(v, v) for v in row.missing_in))
    if row.granted_in >= row.deployed_in:
        return "yes"
    return "under " + ", ".join(sorted(variant_names.get(v, v) for v in row.granted_in))


def _used_cell(row: Row, notes: dict[str, int]) -> str:
    if row.calls == 0:
        if row.allowed_unused is None:
            return "**never**"
        number = notes.setdefault(row.allowed_unused, len(notes) + 1)
        return f"not by the code [{number}]"
    used = f"{row.calls} call" + ("s" if row.calls != 1 else "")
    if row.used_as:
        used += " as " + ", ".join(sorted(row.used_as))
    if row.via:
        used += " (by AWS for " + ", ".join(sorted(row.via)) + ")"
    return used


def _tests_cell(row: Row, examples: int) -> str:
    if not row.tests:
        return ""
    names = sorted(row.tests)
    shown = ", ".join(_short_test(t) for t in names[:examples])
    more = len(names) - examples
    return f"{len(names)}: {shown}" + (f", +{more} more" if more > 0 else "")


def render_table(comparison: Comparison, variant_names: Mapping[str, str], examples: int = 1) -> list[str]:
    """The table as Markdown lines: function, action, granted, used, by which tests."""
    lines = ["| function | action | granted | used | tests |", "| --- | --- | --- | --- | --- |"]
    notes: dict[str, int] = {}
    for row in comparison.rows:
        cells = (row.function, f"`{row.action}`", _granted_cell(row, variant_names), _used_cell(row, notes))
        lines.append("| " + " | ".join((*cells, _tests_cell(row, examples))) + " |")
    if notes:
        lines.append("")
        lines += [f"[{number}] {reason}" for reason, number in notes.items()]
    return lines
