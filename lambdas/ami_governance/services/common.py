"""What every event-driven service shares: parsing and routing an EventBridge event, refusing what this
deployment does not govern, and the rule that AWS failures raise (retries and the DLQ keep the event)."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from ami_governance.adapters.errors import error_code
from ami_governance.models.events import (
    AMI_STATE_CHANGE_DETAIL_TYPE,
    CLOUDTRAIL_DETAIL_TYPE,
    EC2_EVENT_SOURCE,
    AmiStateChangeEvent,
    CloudTrailDetail,
    CloudTrailImageEvent,
    detail_type_of,
)
from ami_governance.models.notices import Notice
from ami_governance.models.policy import GovernancePolicy

logger = Logger(child=True)

Counter = Callable[..., None]


class NoticeSink(Protocol):
    """Where the services publish their notices (the SNS topic)."""

    def publish(self, notice: Notice) -> str: ...


@dataclass
class EventOutcome:
    status: str
    event_id: str | None = None
    reason: str | None = None
    images: list[Any] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# The problems a malformed event's answer and log line name: an event with a list of 10,000 wrong elements has as
# many, and its answer (kept in the idempotency record, at most 400 KB) must stay small.
MAX_PROBLEMS_NAMED = 10
MAX_PROBLEM_LENGTH = 200


def _problems(error: ValidationError) -> str:
    errors = error.errors(include_url=False, include_input=False)
    named = [
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"[:MAX_PROBLEM_LENGTH] for e in errors[:MAX_PROBLEMS_NAMED]
    ]
    more = len(errors) - len(named)
    return "; ".join(named) + (f"; and {more} more" if more else "")


@dataclass
class EventService:
    """Base of the services: `handle` parses the event and calls `on_cloudtrail` or `on_state_change`."""

    policy: GovernancePolicy
    account_id: str
    count: Counter

    def handle(self, raw_event: Any) -> EventOutcome:
        try:
            return self._route(raw_event)
        except (ClientError, BotoCoreError) as error:
            # Throttling that outlasted botocore's retries, 5xx, a denied call, or no answer at all (a timeout, no
            # connection): raise, so that Lambda's retries and then the DLQ keep the event; the services make a
            # repeat harmless.
            code = error_code(error)
            logger.error("AWS call failed; the event will be retried", extra={"code": code, "error": str(error)})
            self.count("AwsErrors", code=code)
            raise

    def _route(self, raw_event: Any) -> EventOutcome:
        detail_type = detail_type_of(raw_event)
        try:
            if detail_type == CLOUDTRAIL_DETAIL_TYPE:
                return self.on_cloudtrail(CloudTrailImageEvent.model_validate(raw_event))
            if detail_type == AMI_STATE_CHANGE_DETAIL_TYPE:
                return self.on_state_change(AmiStateChangeEvent.model_validate(raw_event))
        except ValidationError as error:
            problems = _problems(error)
            logger.error("Malformed event dropped", extra={"problems": problems, "detail_type": detail_type})
            self.count("MalformedEvents")
            return EventOutcome("rejected", event_id_of(raw_event), f"malformed event: {problems}")
        return self.unsupported(raw_event, f"unsupported detail-type {detail_type!r}")

    def unsupported(self, raw_event: Any, reason: str) -> EventOutcome:
        logger.warning("Unsupported event dropped", extra={"reason": reason})
        self.count("UnsupportedEvents")
        return EventOutcome("ignored", event_id_of(raw_event), reason)

    def on_cloudtrail(self, event: CloudTrailImageEvent) -> EventOutcome:
        return self.unsupported(event.model_dump(by_alias=True), f"unsupported call {event.detail.event_name}")

    def on_state_change(self, event: AmiStateChangeEvent) -> EventOutcome:
        return self.unsupported(event.model_dump(by_alias=True), f"unsupported AMI state {event.detail.state}")

    def screen_call(self, event: CloudTrailImageEvent, calls: Collection[str]) -> EventOutcome | None:
        """None when the CloudTrail event is a successful EC2 call among `calls`, in this deployment's account and
        a governed region; otherwise the outcome that drops it (logged and counted)."""
        detail = event.detail
        if detail.event_source != EC2_EVENT_SOURCE or detail.event_name not in calls:
            self.count("UnsupportedEvents")
            return EventOutcome("ignored", detail.event_id, f"unsupported call {detail.event_name}")
        if self.failed_call(detail.error_code):
            return EventOutcome("ignored", detail.event_id, f"the call failed with {detail.error_code}")
        refused = self.refused(event.account, detail.aws_region, detail.event_id)
        if refused is None:
            self._count_invalid_ids(detail)
        return refused

    def _count_invalid_ids(self, detail: CloudTrailDetail) -> None:
        """A tag call names its resources in a list: `ami-` ids of a shape no AMI has are left out of it (the
        models' `image_ids_in_resources`), logged and counted, and the valid ones are handled."""
        invalid = detail.invalid_image_ids_in_resources()
        if not invalid:
            return
        shown = [resource if len(resource) <= 40 else f"{resource[:40]}… ({len(resource)} characters)"
                 for resource in invalid[:5]]  # fmt: skip
        logger.warning(
            "Invalid AMI ids dropped from the event",
            extra={"event_id": detail.event_id, "invalid_ids": shown, "count": len(invalid)},
        )
        self.count("InvalidIds", value=len(invalid))

    def refused(self, account: str, region: str, event_id: str) -> EventOutcome | None:
        """The outcome that drops an event that is not this deployment's to act on (another account, a region
        the policy does not govern), logged and counted; None for an event it governs."""
        if account != self.account_id:
            self.count("ForeignAccountEvents")
            reason = f"event from account {account}, this deployment governs {self.account_id}"
        elif region not in self.policy.governed_regions:
            self.count("UngovernedRegionEvents")
            reason = f"region {region} is not governed by the policy"
        else:
            return None
        logger.warning("Event refused", extra={"reason": reason, "event_id": event_id})
        return EventOutcome("ignored", event_id, reason)

    def failed_call(self, error_code_value: str | None) -> bool:
        # The rules exclude failed calls; this guards a hand-delivered or mis-routed event.
        if error_code_value:
            self.count("FailedCallEvents")
            return True
        return False


def event_id_of(raw_event: Any) -> str | None:
    value = raw_event.get("id") if isinstance(raw_event, dict) else None
    return value if isinstance(value, str) else None
