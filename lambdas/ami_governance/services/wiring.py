"""Builds each Lambda's service from its settings and the adapters, anew for each invocation.

Not once per warm container: a service holds the policy it was built with, and a policy changed in its parameter
must take effect within the parameters cache's `POLICY_CACHE_SECONDS` (adapters/policy_store.py); and the copy
service keeps the source AMIs it described during one invocation, which a later batch must describe afresh.
Building one costs a dataclass: what is worth keeping is kept per container underneath it, namely the settings
(settings.py), the account id, the policy and its validated model (policy_store.py), the boto3 clients
(adapters/clients.py) and the EC2 adapters per region.

Each factory imports its own service: a Lambda loads only the capability it runs (cold-start import time).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any, TypedDict

from ami_governance.adapters.clients import reset_clients
from ami_governance.adapters.ec2 import Ec2Images
from ami_governance.adapters.idempotency import forget_stores
from ami_governance.adapters.inventory import Inventory
from ami_governance.adapters.launch_permissions import LaunchPermissionReader
from ami_governance.adapters.notifications import Notifier
from ami_governance.adapters.policy_store import forget_policies, load_policy
from ami_governance.adapters.queue import CopyQueue, queue_url_from_arn
from ami_governance.observability import count as count_metric
from ami_governance.services.common import Counter
from ami_governance.settings import (
    CleanupSettings,
    CopySettings,
    EnforceSettings,
    FunctionSettings,
    ReplicateSettings,
    ReportSettings,
    forget_settings,
)

if TYPE_CHECKING:
    from ami_governance.adapters.report_store import ReportStore
    from ami_governance.models.policy import GovernancePolicy
    from ami_governance.services.cleanup import CleanupService
    from ami_governance.services.copy import CopyService
    from ami_governance.services.enforce import EnforcementService
    from ami_governance.services.replicate import ReplicationService
    from ami_governance.services.report import ReportService


class _Common(TypedDict):
    """What every service is built with."""

    policy: GovernancePolicy
    account_id: str
    count: Counter
    inventory: Inventory
    notifier: Notifier


def _common(config: FunctionSettings, function_arn: str, count: Counter) -> _Common:
    return {
        "policy": load_policy(config.policy_parameter_name),
        "account_id": _account_of(function_arn),
        "count": count,
        "inventory": Inventory(config.inventory_table_name, config.region),
        "notifier": Notifier(config.notification_topic_arn),
    }


@cache
def _account_of(function_arn: str) -> str:
    # arn:<partition>:lambda:<region>:<account>:function:<name>[:<qualifier>], the same on every invocation.
    return function_arn.split(":")[4]


@cache
def _images_in(region: str) -> Ec2Images:
    return Ec2Images(region)


@cache
def _permissions_in(region: str) -> LaunchPermissionReader:
    return LaunchPermissionReader(region)


@cache
def _queue_for(queue_arn: str) -> CopyQueue:
    return CopyQueue(queue_url_from_arn(queue_arn), queue_arn.split(":")[3])


def enforcement_service(function_arn: str, count: Counter) -> EnforcementService:
    from ami_governance.services.enforce import EnforcementService

    return EnforcementService(
        **_common(EnforceSettings.load(), function_arn, count), images_in=_images_in, permissions_in=_permissions_in
    )


def cleanup_service(function_arn: str, count: Counter) -> CleanupService:
    from ami_governance.services.cleanup import CleanupService

    return CleanupService(**_common(CleanupSettings.load(), function_arn, count), snapshots_in=_images_in)


def replication_service(function_arn: str, count: Counter) -> ReplicationService:
    from ami_governance.services.replicate import ReplicationService

    config = ReplicateSettings.load()
    return ReplicationService(
        **_common(config, function_arn, count),
        images_in=_images_in,
        copy_queue=CopyQueue(config.copy_queue_url, config.region),
    )


def copy_service(function_arn: str, count: Counter) -> CopyService:
    from ami_governance.services.copy import CopyService

    return CopyService(**_common(CopySettings.load(), function_arn, count), images_in=_images_in, queue_for=_queue_for)


def report_service(function_arn: str, count: Counter) -> ReportService:
    """The report of this function's account, over the policy's governed regions (or those an invoke names), with
    the sweep if the policy turns it on (it acts only when not a dry run)."""
    from ami_governance.adapters.scan import RegionScanner
    from ami_governance.services.report import ReportService

    common = _common(ReportSettings.load(), function_arn, count)
    policy, account_id = common["policy"], common["account_id"]

    def scanner_for(region: str) -> RegionScanner:
        return RegionScanner(account_id, region)

    sweeper = None
    if policy.report.sweep.enabled:
        from ami_governance.services.cleanup import CleanupService
        from ami_governance.services.enforce import EnforcementService
        from ami_governance.services.sweep import Sweeper

        sweeper = Sweeper(
            policy=policy,
            account_id=account_id,
            count=count,
            images_in=_images_in,
            references_in=scanner_for,
            permissions_for=_permissions_in,
            # Deferred clean-ups are retried, and AMIs no event judged are judged, by the services the events use.
            cleanup=CleanupService(**common, snapshots_in=_images_in),
            enforcement=EnforcementService(**common, images_in=_images_in, permissions_in=_permissions_in),
        )
    return ReportService(
        policy=policy,
        account_id=account_id,
        scanner_for=scanner_for,
        inventory=common["inventory"],
        permissions_for=_permissions_in,
        sweeper=sweeper,
    )


# What each EventBridge-invoked handler does once per event (handlers/*.py wrap them in adapters/idempotency.py; the
# record's key names the function and these). Here rather than in the handler modules, so that every AWS call of
# an invocation is made under the handler's one frame (tests/iam attributes calls to a function by it).
def enforce_event(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return enforcement_service(context.invoked_function_arn, count_metric).handle(event).as_dict()


def cleanup_event(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return cleanup_service(context.invoked_function_arn, count_metric).handle(event).as_dict()


def replicate_event(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return replication_service(context.invoked_function_arn, count_metric).handle(event).as_dict()


def report_store() -> ReportStore:
    from ami_governance.adapters.report_store import ReportStore

    config = ReportSettings.load()
    return ReportStore(config.reports_bucket_name, config.region)


def report_notifier() -> Notifier:
    return Notifier(ReportSettings.load().notification_topic_arn)


def reset() -> None:
    """Forget per-container state (tests switch AWS backends and the environment between cases)."""
    forget_policies()
    _images_in.cache_clear()
    _permissions_in.cache_clear()
    _queue_for.cache_clear()
    forget_stores()
    forget_settings()
    reset_clients()
