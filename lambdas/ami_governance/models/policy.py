"""The governance policy: one model shared by `cdk synth` (validation) and the Lambdas (decisions).

The policy lives in `governance-policy.yaml` at the repository root. `app.py` validates it with
`load_policy_file()` so that a bad policy fails synth with a message naming the field; the stack
stores the validated policy as JSON in an SSM parameter that the Lambdas read and validate again
with the same model.
"""

from __future__ import annotations

import re
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Annotated, Any

from botocore.session import get_session
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DEFAULT_TAG_PREFIX = "ami-governance:"

# AWS limits for EC2 tags; a policy that could never produce a valid tag is rejected at synth.
TAG_KEY_MAX_LENGTH = 128
TAG_VALUE_MAX_LENGTH = 256


class Mode(StrEnum):
    AUDIT = "audit"
    ENFORCE = "enforce"


class NoRebootStance(StrEnum):
    """What an AMI created with noReboot=true from a running instance means for its verdict."""

    ALLOW = "allow"
    WARN = "warn"
    VIOLATION = "violation"


class RemediationAction(StrEnum):
    NONE = "none"
    DISABLE = "disable"
    DEPRECATE = "deprecate"
    DEREGISTER = "deregister"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as error:
        raise ValueError(f"regex {pattern!r} does not compile: {error}") from None


@cache
def compiled(pattern: str) -> re.Pattern[str]:
    """Compiled form of a regex that the policy model has already validated."""
    return re.compile(pattern)


class NamingConvention(_Strict):
    pattern: str = Field(description="Regex the whole AMI name must match (fullmatch).")
    group_tags: dict[str, str] = Field(
        default_factory=dict,
        description="Named group -> tag key; where the tag is present its value must equal the group.",
    )
    example: str | None = Field(default=None, description="A name that matches, shown in notifications.")

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str) -> str:
        _compile(value)
        return value

    @model_validator(mode="after")
    def _groups_exist(self) -> NamingConvention:
        groups = _compile(self.pattern).groupindex
        for group in self.group_tags:
            if group not in groups:
                raise ValueError(f"group_tags names group {group!r}, which the pattern does not define")
        if self.example is not None and not _compile(self.pattern).fullmatch(self.example):
            raise ValueError(f"example {self.example!r} does not match the pattern")
        return self


class TagRule(_Strict):
    values: list[str] | None = Field(default=None, min_length=1, description="Allowed values.")
    pattern: str | None = Field(default=None, description="Regex the value must fully match.")

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            _compile(value)
        return value

    @model_validator(mode="after")
    def _one_of_values_or_pattern(self) -> TagRule:
        if (self.values is None) == (self.pattern is None):
            raise ValueError("a tag rule needs exactly one of 'values' or 'pattern'")
        return self

    def describe(self) -> str:
        if self.values is not None:
            return "one of " + ", ".join(self.values)
        return f"matching {self.pattern}"

    def describe_value(self) -> str:
        return self.describe() if self.values is not None else f"a value {self.describe()}"


class Exemptions(_Strict):
    tags: dict[str, str] = Field(default_factory=dict, description="Any one of these key=value tags exempts.")
    creator_arn_patterns: list[str] = Field(
        default_factory=list, description="fnmatch patterns on the creator's ARN (role, user or session)."
    )
    invoked_by: list[str] = Field(
        default_factory=list, description="Services calling on their own behalf, e.g. imagebuilder.amazonaws.com."
    )


class Consistency(_Strict):
    no_reboot: NoRebootStance = NoRebootStance.WARN


class Remediation(_Strict):
    action: RemediationAction = RemediationAction.NONE
    grace_period_days: int = Field(default=7, ge=0, le=3650)
    max_images_per_event: int = Field(
        default=10, ge=1, le=1000, description="Blast-radius cap: remediations one event may cause."
    )


def _known_region(region: str) -> str:
    known = known_ec2_regions()
    if known and region not in known:
        raise ValueError(f"unknown region {region!r}")
    return region


RegionName = Annotated[str, AfterValidator(_known_region)]

KMS_KEY_REFERENCE = re.compile(
    r"^(alias/[A-Za-z0-9/_-]+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32}"
    r"|arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)/[A-Za-z0-9/_-]+)$"
)


class Approval(_Strict):
    """Who may approve an AMI for replication, and with which tag. `tag` defaults to '<prefix>approved'."""

    tag: str | None = None
    value: str = "true"
    approvers: list[str] = Field(
        default_factory=list, description="fnmatch patterns on the approver's role/user/session ARN."
    )
    allow_exempt: bool = Field(
        default=False,
        description="Exempt AMIs (e.g. from Image Builder) may be approved too; by default only compliant ones.",
    )


class Sharing(_Strict):
    accounts: list[Annotated[str, Field(pattern=r"^\d{12}$")]] = Field(default_factory=list)
    organization_arns: list[
        Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:organizations::\d{12}:organization/o-[a-z0-9]+$")]
    ] = Field(default_factory=list)
    ou_arns: list[
        Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:organizations::\d{12}:ou/o-[a-z0-9]+/ou-[a-z0-9-]+$")]
    ] = Field(default_factory=list)


class Replication(_Strict):
    """Where approved AMIs are copied. Target regions must be governed: their replicas are then judged and
    tracked like any AMI there (their events are forwarded)."""

    regions: list[RegionName] = Field(default_factory=list)
    kms_keys: dict[str, str] = Field(default_factory=dict, description="Region -> KMS key alias, id or ARN.")
    share_with: Sharing = Field(default_factory=Sharing)
    regions_tag: str | None = Field(
        default=None,
        description="Tag key whose comma-separated value narrows the regions; default '<prefix>replicate-to'.",
    )

    @model_validator(mode="after")
    def _keys_for_target_regions(self) -> Replication:
        for region, key in self.kms_keys.items():
            if region not in self.regions:
                raise ValueError(f"kms_keys names {region!r}, which is not a replication region")
            if not KMS_KEY_REFERENCE.match(key):
                raise ValueError(f"kms_keys.{region}: {key!r} is not a KMS key alias, id or ARN")
            if key.startswith("arn:") and key.split(":")[3] != region:
                raise ValueError(f"kms_keys.{region}: the key ARN is in {key.split(':')[3]}, not {region}")
        return self


# Public price of EBS standard snapshot storage in us-east-1, USD per GB-month.
DEFAULT_SNAPSHOT_PRICE_PER_GB_MONTH = 0.05


class Cleanup(_Strict):
    """What happens to the snapshots a deregistered AMI leaves behind."""

    dry_run: bool = Field(default=True, description="Report what would be deleted; delete nothing.")
    min_age_days: int = Field(default=0, ge=0, le=36500, description="Keep snapshots younger than this.")
    max_snapshots_per_event: int = Field(
        default=50, ge=1, le=1000, description="Blast-radius cap: snapshots one deregistration may delete."
    )
    cascade_to_replicas: bool = Field(
        default=False, description="Deregistering a source AMI also deregisters its recorded replicas."
    )
    price_per_gb_month: float = Field(
        default=DEFAULT_SNAPSHOT_PRICE_PER_GB_MONTH, ge=0, description="For the estimated saving (upper bound)."
    )


# EventBridge schedule expressions (rules and Scheduler): rate(N unit) or a six-field cron(...).
SCHEDULE_EXPRESSION = re.compile(
    r"^(rate\((1 (minute|hour|day)|([2-9]|[1-9]\d+) (minutes|hours|days))\)|cron\(\S+( \S+){5}\))$"
)
TRUSTED_OWNER_ALIASES = frozenset({"self", "amazon", "aws-marketplace"})


class Retention(_Strict):
    """Which AMIs are stale: beyond the N newest of their family, and/or older than a maximum age. The family of an
    AMI is the values of `family_groups` in its name (the naming convention's named groups)."""

    keep_newest: int | None = Field(default=None, ge=1, le=1000, description="Keep this many newest per family.")
    max_age_days: int | None = Field(default=None, ge=1, le=36500, description="Stale once older than this.")
    family_groups: list[str] = Field(
        default_factory=list, description="Named groups of naming.pattern that make an AMI's family."
    )


class Sweep(_Strict):
    """What the scheduled report may act on. Off by default; dry-run (report only) until turned off."""

    enabled: bool = False
    dry_run: bool = True
    max_actions_per_run: int = Field(default=25, ge=1, le=1000, description="Blast-radius cap per run.")
    deregister_overdue: bool = Field(
        default=True, description="Deregister AMIs past their deregister-after deadline (enforce mode only)."
    )
    retry_deferred_cleanups: bool = Field(default=True, description="Retry clean-ups left deferred or dry-run.")
    delete_orphaned_snapshots_after_days: int | None = Field(
        default=None, ge=0, le=36500, description="Delete orphaned snapshots older than this (None: never)."
    )
    deregister_stale_unused: bool = Field(default=False, description="Deregister stale AMIs that are also unused.")
    allow_shared: bool = Field(
        default=False, description="May deregister AMIs shared with other accounts (never, by default)."
    )


class Report(_Strict):
    """The scheduled report: its schedule, what counts as unused, stale and trusted, prices, and the sweep."""

    schedule: str = Field(default="cron(0 6 * * ? *)", description="EventBridge schedule expression (UTC).")
    unused_days: int = Field(default=90, ge=1, le=36500, description="Unused: not launched for this many days.")
    retention: Retention = Field(default_factory=Retention)
    trusted_owners: list[str] = Field(
        default_factory=lambda: ["self", "amazon"],
        description="Owners whose AMIs instances may run: self, amazon, aws-marketplace, or account ids.",
    )
    owner_tags: list[str] = Field(
        default_factory=lambda: ["Owner", "CostCenter", "Environment"],
        description="Tags copied onto every finding (who to ask).",
    )
    snapshot_price_per_gb_month: dict[str, float] = Field(
        default_factory=dict,
        description="Region -> USD per GB-month (standard tier); other regions: cleanup.price_per_gb_month.",
    )
    archive_price_per_gb_month: float = Field(default=0.0125, ge=0, description="Archive tier, USD per GB-month.")
    full_verification_days: int = Field(
        default=7, ge=1, le=365, description="Re-read every AMI's launch permissions from EC2 this often."
    )
    expire_reports_after_days: int = Field(default=90, ge=1, le=3650, description="S3 lifecycle of the reports.")
    sweep: Sweep = Field(default_factory=Sweep)

    @field_validator("schedule")
    @classmethod
    def _schedule_expression(cls, value: str) -> str:
        if not SCHEDULE_EXPRESSION.match(value):
            raise ValueError(f"{value!r} is not an EventBridge schedule expression (rate(...) or cron(6 fields))")
        return value

    @field_validator("trusted_owners")
    @classmethod
    def _owners(cls, owners: list[str]) -> list[str]:
        for owner in owners:
            if owner not in TRUSTED_OWNER_ALIASES and not re.fullmatch(r"\d{12}", owner):
                raise ValueError(
                    f"trusted owner {owner!r} is neither an account id nor one of {sorted(TRUSTED_OWNER_ALIASES)}"
                )
        return owners

    @field_validator("snapshot_price_per_gb_month")
    @classmethod
    def _prices(cls, prices: dict[str, float]) -> dict[str, float]:
        for region, price in prices.items():
            _known_region(region)
            if price < 0:
                raise ValueError(f"{region}: a price cannot be negative")
        return prices


class GovernancePolicy(_Strict):
    mode: Mode = Mode.AUDIT
    tag_prefix: str = Field(default=DEFAULT_TAG_PREFIX, min_length=1, max_length=64)
    home_region: RegionName
    governed_regions: list[RegionName] = Field(min_length=1)
    naming: NamingConvention | None = None
    required_tags: dict[str, TagRule] = Field(default_factory=dict)
    exemptions: Exemptions = Field(default_factory=Exemptions)
    consistency: Consistency = Field(default_factory=Consistency)
    remediation: Remediation = Field(default_factory=Remediation)
    cleanup: Cleanup = Field(default_factory=Cleanup)
    approval: Approval = Field(default_factory=Approval)
    replication: Replication = Field(default_factory=Replication)
    report: Report = Field(default_factory=Report)
    protection_tag: str | None = Field(
        default=None, description="Tag key that blocks every destructive action; default '<prefix>protected'."
    )

    @field_validator("tag_prefix")
    @classmethod
    def _prefix_is_not_aws(cls, value: str) -> str:
        if value.lower().startswith("aws:"):
            raise ValueError("the 'aws:' prefix is reserved by AWS")
        return value

    @field_validator("governed_regions")
    @classmethod
    def _regions_unique(cls, regions: list[str]) -> list[str]:
        if len(set(regions)) != len(regions):
            raise ValueError("regions are listed more than once")
        return regions

    @field_validator("required_tags")
    @classmethod
    def _tag_keys_valid(cls, tags: dict[str, TagRule]) -> dict[str, TagRule]:
        for key in tags:
            if not key or len(key) > TAG_KEY_MAX_LENGTH or key.lower().startswith("aws:"):
                raise ValueError(f"tag key {key!r} is not a valid EC2 tag key")
        return tags

    @model_validator(mode="after")
    def _consistent(self) -> GovernancePolicy:
        if self.home_region not in self.governed_regions:
            raise ValueError(f"home_region {self.home_region!r} must be one of governed_regions")
        outside = [r for r in self.replication.regions if r not in self.governed_regions]
        if outside:
            raise ValueError(f"replication.regions {outside} must be governed regions too")
        self._report_consistent()
        for key in self.required_tags:
            # Tags under the system's prefix are ignored when tag changes are re-evaluated (that is
            # what breaks the tag-write loop), so a required tag there could never be fixed.
            if key.startswith(self.tag_prefix):
                raise ValueError(f"required tag {key!r} uses the system tag prefix {self.tag_prefix!r}")
        return self

    def _report_consistent(self) -> None:
        outside = [r for r in self.report.snapshot_price_per_gb_month if r not in self.governed_regions]
        if outside:
            raise ValueError(f"report.snapshot_price_per_gb_month names {outside}, which are not governed regions")
        groups = _compile(self.naming.pattern).groupindex if self.naming else {}
        for group in self.report.retention.family_groups:
            if group not in groups:
                raise ValueError(
                    f"report.retention.family_groups names {group!r}, which naming.pattern does not define"
                )
        if self.report.retention.keep_newest is not None and not self.report.retention.family_groups:
            raise ValueError("report.retention.keep_newest needs family_groups (the groups that make a family)")

    def snapshot_price(self, region: str, tier: str = "standard") -> float:
        """USD per GB-month of a snapshot in `region` (standard or archive tier)."""
        if tier == "archive":
            return self.report.archive_price_per_gb_month
        return self.report.snapshot_price_per_gb_month.get(region, self.cleanup.price_per_gb_month)

    def tag_key(self, name: str) -> str:
        """Key of a tag this system writes, e.g. 'ami-governance:compliance'."""
        return f"{self.tag_prefix}{name}"

    @property
    def protection_tag_key(self) -> str:
        return self.protection_tag or self.tag_key("protected")

    @property
    def approval_tag_key(self) -> str:
        return self.approval.tag or self.tag_key("approved")

    @property
    def replication_regions_tag_key(self) -> str:
        return self.replication.regions_tag or self.tag_key("replicate-to")


@cache
def known_ec2_regions() -> frozenset[str]:
    """Regions botocore knows for EC2 across partitions (offline: read from its bundled endpoints)."""
    session = get_session()
    regions: set[str] = set()
    for partition in session.get_available_partitions():
        regions.update(session.get_available_regions("ec2", partition_name=partition))
    return frozenset(regions)


class PolicyError(ValueError):
    """A policy that fails validation; the message names each field and its problem on one line."""


def _describe_errors(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        problems.append(f"{location}: {message}" if location else message)
    return "; ".join(problems)


def parse_policy(document: Any, source: str = "policy") -> GovernancePolicy:
    if not isinstance(document, dict):
        raise PolicyError(f"{source}: the policy must be a mapping, got {type(document).__name__}")
    try:
        return GovernancePolicy.model_validate(document)
    except ValidationError as error:
        raise PolicyError(f"{source}: invalid governance policy: {_describe_errors(error)}") from None


def load_policy_file(path: str | Path) -> GovernancePolicy:
    """Read and validate the YAML policy file (used at synth time; PyYAML is not needed in Lambda)."""
    import yaml

    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise PolicyError(f"{path}: cannot read the policy: {error}") from None
    return parse_policy(document, source=str(path))
