"""EventBridge event patterns as plain data: the stacks build rules from them and the tests assert on them.

Forwarding patterns (default bus of every governed region -> governance bus) are deliberately broad, so that
later capabilities (replicate, clean up) need new rules on the governance bus only, never a forwarder redeploy.
Patterns on the governance bus (-> enforce, -> cleanup, -> replicate Lambda) are narrow. Forwarded events keep
`source: aws.ec2`, so the same field paths work on both buses. The event and call names are the Lambdas' own
(models/events.py), so a pattern names exactly what the code that receives the event handles.
"""

from __future__ import annotations

from typing import Any, Final

from ami_governance.models.events import (
    AMI_STATE_CHANGE_DETAIL_TYPE,
    CLOUDTRAIL_DETAIL_TYPE,
    CREATE_TAGS,
    DEREGISTER_IMAGE,
    EC2_EVENT_SOURCE,
    EC2_SOURCE,
    IMAGE_LIFECYCLE_CALLS,
    MODIFY_IMAGE_ATTRIBUTE,
    NEW_IMAGE_CALLS,
    TAG_CALLS,
)
from ami_governance.models.policy import GovernancePolicy
from stacks.resource_names import ALARM_NAME_PREFIX

EventPatternData = dict[str, Any]

# Every state the AMI state-change event reports; enforce needs only the end of creation.
IMAGE_CREATION_END_STATES: Final = ("available", "failed")
IMAGE_DEREGISTERED_STATE: Final = "deregistered"


def _cloudtrail_ec2_call(event_names: tuple[str, ...], **detail: Any) -> EventPatternData:
    return {
        "source": [EC2_SOURCE],
        "detail-type": [CLOUDTRAIL_DETAIL_TYPE],
        "detail": {"eventSource": [EC2_EVENT_SOURCE], "eventName": list(event_names), **detail},
    }


# CreateTags/DeleteTags name any mix of resource types. EventBridge matches a pattern on a field inside an
# array of objects if ANY element matches, so this selects calls that touch at least one AMI.
_TOUCHES_AN_AMI: Final[dict[str, Any]] = {"resourcesSet": {"items": {"resourceId": [{"prefix": "ami-"}]}}}
# Failed calls carry errorCode (and a null responseElements): nothing happened to an AMI.
_SUCCEEDED: Final[list[dict[str, bool]]] = [{"exists": False}]

FORWARD_IMAGE_CALLS: Final = _cloudtrail_ec2_call(NEW_IMAGE_CALLS + IMAGE_LIFECYCLE_CALLS)
FORWARD_IMAGE_TAG_CALLS: Final = _cloudtrail_ec2_call(TAG_CALLS, requestParameters=_TOUCHES_AN_AMI)
FORWARD_IMAGE_STATE_CHANGES: Final[EventPatternData] = {
    "source": [EC2_SOURCE],
    "detail-type": [AMI_STATE_CHANGE_DETAIL_TYPE],
}

# Rule id suffix -> pattern, for the default bus of every governed region.
FORWARDING_PATTERNS: Final[dict[str, EventPatternData]] = {
    "ImageCalls": FORWARD_IMAGE_CALLS,
    "ImageTagCalls": FORWARD_IMAGE_TAG_CALLS,
    "ImageStateChanges": FORWARD_IMAGE_STATE_CHANGES,
}

ENFORCE_ON_IMAGE_CREATED: Final = _cloudtrail_ec2_call(NEW_IMAGE_CALLS, errorCode=_SUCCEEDED)
ENFORCE_ON_IMAGE_TAGS_CHANGED: Final = _cloudtrail_ec2_call(
    TAG_CALLS, errorCode=_SUCCEEDED, requestParameters=_TOUCHES_AN_AMI
)
# Every successful ModifyImageAttribute: the Lambda keeps those on launchPermission. (A pattern on CloudTrail's
# `attributeType` would be narrower, but a record that names the change only by its launchPermission lists would
# slip through it; the other attributes, description and IMDS support, change rarely.)
ENFORCE_ON_IMAGE_ATTRIBUTE_MODIFIED: Final = _cloudtrail_ec2_call((MODIFY_IMAGE_ATTRIBUTE,), errorCode=_SUCCEEDED)
ENFORCE_ON_IMAGE_CREATION_ENDED: Final[EventPatternData] = {
    "source": [EC2_SOURCE],
    "detail-type": [AMI_STATE_CHANGE_DETAIL_TYPE],
    "detail": {"State": list(IMAGE_CREATION_END_STATES)},
}

# Rule id suffix -> pattern, for the governance bus, targeting the enforce Lambda.
ENFORCE_PATTERNS: Final[dict[str, EventPatternData]] = {
    "ImageCreated": ENFORCE_ON_IMAGE_CREATED,
    "ImageTagsChanged": ENFORCE_ON_IMAGE_TAGS_CHANGED,
    "ImageCreationEnded": ENFORCE_ON_IMAGE_CREATION_ENDED,
    "ImageAttributeModified": ENFORCE_ON_IMAGE_ATTRIBUTE_MODIFIED,
}

# Both signals of one deregistration go to cleanup: the CloudTrail call names the caller (and whether it asked
# EC2 to delete the snapshots itself), the state change arrives even where no trail records management events.
# Cleanup therefore sees most deregistrations twice and must be idempotent.
CLEANUP_ON_IMAGE_DEREGISTERED: Final = _cloudtrail_ec2_call((DEREGISTER_IMAGE,), errorCode=_SUCCEEDED)
CLEANUP_ON_IMAGE_STATE_DEREGISTERED: Final[EventPatternData] = {
    "source": [EC2_SOURCE],
    "detail-type": [AMI_STATE_CHANGE_DETAIL_TYPE],
    "detail": {"State": [IMAGE_DEREGISTERED_STATE]},
}

# Rule id suffix -> pattern, for the governance bus, targeting the cleanup Lambda.
CLEANUP_PATTERNS: Final[dict[str, EventPatternData]] = {
    "ImageDeregistered": CLEANUP_ON_IMAGE_DEREGISTERED,
    "ImageStateDeregistered": CLEANUP_ON_IMAGE_STATE_DEREGISTERED,
}

# Replicate follows an AMI from its approval to its replicas: the approval (a CreateTags call that sets the policy's
# approval tag on an AMI) starts the copies; the end of a creation tells it a replica is ready (to share it) or has
# failed, and a deregistration tells it a source or a replica is gone. Which of these concern it (a replica it
# recorded, an approved source) only the inventory knows, so every end-of-creation and deregistration goes to it.
REPLICATE_STATES: Final = (*IMAGE_CREATION_END_STATES, IMAGE_DEREGISTERED_STATE)
REPLICATE_ON_IMAGE_STATE_CHANGED: Final[EventPatternData] = {
    "source": [EC2_SOURCE],
    "detail-type": [AMI_STATE_CHANGE_DETAIL_TYPE],
    "detail": {"State": list(REPLICATE_STATES)},
}


def replicate_on_image_approved(approval_tag_key: str) -> EventPatternData:
    """A successful CreateTags call on at least one AMI that sets `approval_tag_key`.

    The value is not matched: EventBridge matches each field of an array of objects against any element, so a
    pattern on key and value would also match a call that sets the key to one value and another tag to the
    approving value. The Lambda checks the pair, and who the caller is.
    """
    return _cloudtrail_ec2_call(
        (CREATE_TAGS,),
        errorCode=_SUCCEEDED,
        requestParameters={**_TOUCHES_AN_AMI, "tagSet": {"items": {"key": [approval_tag_key]}}},
    )


def replicate_patterns(policy: GovernancePolicy) -> dict[str, EventPatternData]:
    """Rule id suffix -> pattern, for the governance bus, targeting the replicate Lambda (only built when the
    policy replicates). The approval pattern names the policy's approval tag key."""
    return {
        "ImageApproved": replicate_on_image_approved(policy.approval_tag_key),
        "ImageStateChanged": REPLICATE_ON_IMAGE_STATE_CHANGED,
    }


CLOUDWATCH_SOURCE: Final = "aws.cloudwatch"
ALARM_STATE_CHANGE_DETAIL_TYPE: Final = "CloudWatch Alarm State Change"
ALARM_STATE: Final = "ALARM"

# One of this product's alarms went into ALARM. An alarm action can only publish to an SNS topic in the alarm's
# own region, so forwarder regions forward this event from their default bus to the governance bus, and a rule
# there publishes it to the notification topic. (Home-region alarms notify the topic directly, and the home
# region does not forward them: each alarm notifies once.) Only the way into ALARM: back to OK is not news.
ALARM_RAISED: Final[EventPatternData] = {
    "source": [CLOUDWATCH_SOURCE],
    "detail-type": [ALARM_STATE_CHANGE_DETAIL_TYPE],
    "detail": {"alarmName": [{"prefix": ALARM_NAME_PREFIX}], "state": {"value": [ALARM_STATE]}},
}
