"""What the product knows about one AMI, independent of boto3's response shapes."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


@dataclass(frozen=True)
class ImageFacts:
    """An AMI as `DescribeImages` shows it, reduced to what the rules need."""

    image_id: str
    region: str
    owner_id: str
    name: str
    state: str
    tags: dict[str, str] = field(default_factory=dict)
    snapshot_ids: tuple[str, ...] = ()
    snapshot_sizes: dict[str, int] = field(default_factory=dict)  # GiB per snapshot (block device mappings)
    source_image_id: str | None = None
    source_region: str | None = None
    source_instance_id: str | None = None  # the instance a CreateImage made it from (EC2 shows no other call's)
    creation_date: str | None = None
    deprecation_time: str | None = None
    description: str = ""


@dataclass(frozen=True)
class Creator:
    """Who created an AMI, from the CloudTrail record (or, later, from the provenance tags)."""

    principal_arn: str | None = None
    session_arn: str | None = None
    invoked_by: str | None = None

    def arns(self) -> tuple[str, ...]:
        return tuple(arn for arn in (self.principal_arn, self.session_arn) if arn)


class ComplianceStatus(StrEnum):
    COMPLIANT = "compliant"
    NON_COMPLIANT = "non-compliant"
    EXEMPT = "exempt"


class ViolationKind(StrEnum):
    NAMING = "naming"
    MISSING_TAG = "missing-tag"
    TAG_VALUE = "tag-value"
    NAME_TAG_MISMATCH = "name-tag-mismatch"
    NO_REBOOT = "no-reboot"


@dataclass(frozen=True)
class Violation:
    kind: ViolationKind
    subject: str
    message: str
    fix: str

    @property
    def short(self) -> str:
        """Compact form for the violations tag, e.g. 'missing-tag:CostCenter'."""
        return f"{self.kind.value}:{self.subject}" if self.subject else self.kind.value


@dataclass(frozen=True)
class Verdict:
    status: ComplianceStatus
    violations: tuple[Violation, ...] = ()
    warnings: tuple[Violation, ...] = ()
    exemption: str | None = None


@dataclass(frozen=True)
class EvaluationSubject:
    """Everything the compliance rules look at: the name, the user's tags and how it was made."""

    name: str
    tags: dict[str, str]
    creator: Creator = field(default_factory=Creator)
    no_reboot: bool = False
