"""Pure compliance rules: policy + subject -> verdict. No boto3, no clock, no I/O."""

from __future__ import annotations

from fnmatch import fnmatchcase

from ami_governance.models.image import (
    ComplianceStatus,
    EvaluationSubject,
    Verdict,
    Violation,
    ViolationKind,
)
from ami_governance.models.policy import GovernancePolicy, NoRebootStance, compiled


def find_exemption(policy: GovernancePolicy, subject: EvaluationSubject) -> str | None:
    """The reason an AMI is exempt (tag, creator or calling service), or None."""
    exemptions = policy.exemptions
    for key, value in exemptions.tags.items():
        if subject.tags.get(key) == value:
            return f"tag {key}={value}"
    invoked_by = subject.creator.invoked_by
    if invoked_by and invoked_by in exemptions.invoked_by:
        return f"invoked by {invoked_by}"
    for arn in subject.creator.arns():
        for pattern in exemptions.creator_arn_patterns:
            if fnmatchcase(arn, pattern):
                return f"creator {arn}"
    return None


def check_name(policy: GovernancePolicy, subject: EvaluationSubject) -> list[Violation]:
    naming = policy.naming
    if naming is None:
        return []
    match = compiled(naming.pattern).fullmatch(subject.name)
    if match is None:
        like = f" such as {naming.example!r}" if naming.example else ""
        return [
            Violation(
                ViolationKind.NAMING,
                "",
                f"name {subject.name!r} does not match {naming.pattern}",
                f"create the AMI again with a name{like} (AMI names cannot be changed)",
            )
        ]
    violations = []
    for group, tag_key in naming.group_tags.items():
        expected = match.group(group)
        actual = subject.tags.get(tag_key)
        if actual is not None and expected is not None and actual != expected:
            violations.append(
                Violation(
                    ViolationKind.NAME_TAG_MISMATCH,
                    tag_key,
                    f"name says {group}={expected!r} but tag {tag_key}={actual!r}",
                    f"set tag {tag_key}={expected}",
                )
            )
    return violations


def check_required_tags(policy: GovernancePolicy, subject: EvaluationSubject) -> list[Violation]:
    violations = []
    for key, rule in policy.required_tags.items():
        value = subject.tags.get(key)
        if value is None:
            violations.append(
                Violation(ViolationKind.MISSING_TAG, key, f"tag {key} is missing", f"add tag {key} ({rule.describe()})")
            )
        elif not _value_allowed(value, rule.values, rule.pattern):
            violations.append(
                Violation(
                    ViolationKind.TAG_VALUE,
                    key,
                    f"tag {key}={value!r} is not {rule.describe()}",
                    f"set tag {key} to {rule.describe_value()}",
                )
            )
    return violations


def _value_allowed(value: str, values: list[str] | None, pattern: str | None) -> bool:
    if values is not None:
        return value in values
    return pattern is not None and compiled(pattern).fullmatch(value) is not None


def check_consistency(policy: GovernancePolicy, subject: EvaluationSubject) -> list[Violation]:
    if not subject.no_reboot or policy.consistency.no_reboot is NoRebootStance.ALLOW:
        return []
    return [
        Violation(
            ViolationKind.NO_REBOOT,
            "",
            "created with noReboot=true: the file systems may not have been consistent",
            "image a stopped instance, or create the AMI without --no-reboot",
        )
    ]


def evaluate(policy: GovernancePolicy, subject: EvaluationSubject) -> Verdict:
    exemption = find_exemption(policy, subject)
    if exemption is not None:
        return Verdict(ComplianceStatus.EXEMPT, exemption=exemption)
    violations = [*check_name(policy, subject), *check_required_tags(policy, subject)]
    consistency = check_consistency(policy, subject)
    warnings: list[Violation] = []
    if policy.consistency.no_reboot is NoRebootStance.VIOLATION:
        violations.extend(consistency)
    else:
        warnings.extend(consistency)
    status = ComplianceStatus.NON_COMPLIANT if violations else ComplianceStatus.COMPLIANT
    return Verdict(status, tuple(violations), tuple(warnings))
