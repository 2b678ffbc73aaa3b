"""Builds each service from settings and adapters, once per warm container.

Each factory imports its own service: a Lambda loads only the capability it runs (cold-start import time).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from ami_governance.adapters.ec2 import Ec2Images
from ami_governance.adapters.inventory import Inventory
from ami_governance.adapters.notifications import Notifier
from ami_governance.adapters.policy_store import load_policy
from ami_governance.adapters.queue import CopyQueue, queue_url_from_arn
from ami_governance.services.common import Counter
from ami_governance.settings import SettingsError, settings

if TYPE_CHECKING:
    from ami_governance.services.cleanup import CleanupService
    from ami_governance.services.copy import CopyService
    from ami_governance.services.enforce import EnforcementService
    from ami_governance.services.replicate import ReplicationService


@cache
def _images_in(region: str) -> Ec2Images:
    return Ec2Images(region)


def cleanup_service(account_id: str, count: Counter) -> CleanupService:
    from ami_governance.services.cleanup import CleanupService

    config = settings()
    return CleanupService(
        policy=load_policy(config.policy_parameter_name),
        account_id=account_id,
        count=count,
        snapshots_in=_images_in,
        inventory=Inventory(config.inventory_table_name, config.region),
        notifier=Notifier(config.notification_topic_arn),
    )


def enforcement_service(account_id: str, count: Counter) -> EnforcementService:
    from ami_governance.services.enforce import EnforcementService

    config = settings()
    return EnforcementService(
        policy=load_policy(config.policy_parameter_name),
        account_id=account_id,
        images_in=_images_in,
        inventory=Inventory(config.inventory_table_name, config.region),
        notifier=Notifier(config.notification_topic_arn),
        count=count,
    )


def replication_service(account_id: str, count: Counter) -> ReplicationService:
    from ami_governance.services.replicate import ReplicationService

    config = settings()
    if not config.copy_queue_url:
        raise SettingsError("missing environment variables: COPY_QUEUE_URL (the replicate Lambda's copy queue)")
    return ReplicationService(
        policy=load_policy(config.policy_parameter_name),
        account_id=account_id,
        count=count,
        images_in=_images_in,
        inventory=Inventory(config.inventory_table_name, config.region),
        notifier=Notifier(config.notification_topic_arn),
        copy_queue=CopyQueue(config.copy_queue_url, config.region),
    )


@cache
def _queue_for(queue_arn: str) -> CopyQueue:
    return CopyQueue(queue_url_from_arn(queue_arn), queue_arn.split(":")[3])


def copy_service(account_id: str, count: Counter) -> CopyService:
    from ami_governance.services.copy import CopyService

    config = settings()
    return CopyService(
        policy=load_policy(config.policy_parameter_name),
        account_id=account_id,
        count=count,
        images_in=_images_in,
        inventory=Inventory(config.inventory_table_name, config.region),
        notifier=Notifier(config.notification_topic_arn),
        queue_for=_queue_for,
    )


def reset() -> None:
    """Forget per-container state (tests switch AWS backends between cases)."""
    from aws_lambda_powertools.utilities import parameters

    from ami_governance.adapters.clients import reset_clients
    from ami_governance.adapters.policy_store import _parse

    parameters.clear_caches()  # type: ignore[no-untyped-call]

    _images_in.cache_clear()
    _queue_for.cache_clear()
    settings.cache_clear()
    _parse.cache_clear()
    reset_clients()
