"""Bad input gets a clear answer: logged, counted, nothing wrongly changed, and only transient AWS
failures raise (so that Lambda retries and the DLQ take over)."""

from __future__ import annotations

import io
import json

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from ami_governance.adapters.ec2 import Ec2Images
from ami_governance.adapters.notifications import Notifier
from ami_governance.observability import logger
from tests.conftest import load_event
from tests.integration.conftest import ACCOUNT, PUBLIC_AMI, create_image_event, state_event, tags_event
from tests.support import emitted_metric_names, recording_api_calls

pytestmark = pytest.mark.integration

PREFIX = "ami-governance:"


def metric_names(capsys: pytest.CaptureFixture[str]) -> list[str]:
    """Names of the EMF metrics the invocation printed."""
    return emitted_metric_names(capsys.readouterr().out)


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (lambda e: e.pop("detail"), "detail"),
        (lambda e: e["detail"].pop("eventName"), "detail.eventName"),
        (lambda e: e["detail"].update(eventTime="yesterday"), "detail.eventTime"),
        (lambda e: e["detail"].update(userIdentity="root"), "detail.userIdentity"),
        (
            lambda e: e["detail"]["requestParameters"].update(resourcesSet={"items": [{"id": "ami-1"}]}),
            "detail.requestParameters.resourcesSet.items.0.resourceId",
        ),
    ],
)
def test_malformed_event_is_rejected_without_raising(estate, invoke, capsys, mutate, problem):
    event = tags_event("create_tags_approval", ["ami-0a1b2c3d4e5f60718"], {"Owner": "x"})
    mutate(event)

    with recording_api_calls() as api:
        result = invoke(event)

    assert result["status"] == "rejected"
    assert problem in result["reason"]
    assert [op for op in api.operations() if op != "GetParameter"] == []
    assert "MalformedEvents" in metric_names(capsys)


def test_malformed_state_change_is_rejected(estate, invoke, capsys):
    event = state_event("not-an-ami")

    result = invoke(event)

    assert result["status"] == "rejected"
    assert "detail.ImageId" in result["reason"]
    assert "MalformedEvents" in metric_names(capsys)


def test_non_dict_event_is_ignored(estate, invoke, capsys):
    assert invoke([1, 2, 3])["status"] == "ignored"  # type: ignore[arg-type]
    assert "UnsupportedEvents" in metric_names(capsys)


def test_unsupported_detail_type_is_ignored(estate, invoke, capsys):
    event = load_event("ami_state_available")
    event["detail-type"] = "EC2 Instance State-change Notification"

    result = invoke(event)

    assert result["status"] == "ignored"
    assert "EC2 Instance State-change Notification" in result["reason"]
    assert "UnsupportedEvents" in metric_names(capsys)


def test_failed_call_is_ignored(estate, invoke, capsys):
    event = load_event("create_image_failed")
    event["account"] = ACCOUNT

    result = invoke(event)

    assert result == {
        "status": "ignored",
        "event_id": "c0ffee00-1111-4a4a-8b8b-000000000003",
        "reason": "the call failed with InvalidAMIName.Duplicate",
        "images": [],
    }
    assert "FailedCallEvents" in metric_names(capsys)


def test_missing_response_elements_means_nothing_to_do_yet(estate, invoke, capsys):
    event = load_event("create_image")
    event["account"] = ACCOUNT
    event["detail"]["eventName"] = "ImportImage"
    event["detail"]["responseElements"] = None

    result = invoke(event)

    assert result["status"] == "ignored"
    assert result["reason"] == "ImportImage response names no image yet"
    assert "EventsWithoutImage" in metric_names(capsys)


def test_region_outside_the_policy_is_refused(estate, invoke, capsys):
    image_id, instance_id = estate.create_image("test image", region="ap-south-1")
    event = create_image_event(image_id, instance_id, awsRegion="ap-south-1")

    with recording_api_calls() as api:
        result = invoke(event)

    assert result["reason"] == "region ap-south-1 is not governed by the policy"
    assert api.operations("ec2") == []
    assert estate.tags_of(image_id, region="ap-south-1") == {}
    assert "UngovernedRegionEvents" in metric_names(capsys)


def test_event_from_another_account_is_refused(estate, invoke, capsys):
    image_id, instance_id = estate.create_image("test image")
    event = create_image_event(image_id, instance_id)
    event["account"] = "999988887777"

    result = invoke(event)

    assert result["reason"] == "event from account 999988887777, this deployment governs 123456789012"
    assert estate.tags_of(image_id) == {}
    assert "ForeignAccountEvents" in metric_names(capsys)


def test_image_owned_by_another_account_is_not_touched(estate, invoke, capsys):
    # Given a CreateTags on a public AMI that another account owns
    event = tags_event("create_tags_approval", [PUBLIC_AMI], {"Owner": "me"})

    result = invoke(event)

    assert result["images"][0]["result"] == "foreign-image"
    assert not any(key.startswith(PREFIX) for key in estate.tags_of(PUBLIC_AMI))
    assert "ForeignImages" in metric_names(capsys)


def test_image_deregistered_before_the_event_is_handled(estate, invoke, capsys):
    image_id, instance_id = estate.create_image("test image")
    estate.ec2().deregister_image(ImageId=image_id)

    result = invoke(create_image_event(image_id, instance_id))

    assert result["images"][0]["result"] == "gone"
    # (no item: "not found" cannot tell a deregistered AMI from one that never existed)
    assert estate.inventory_item(image_id) is None
    assert estate.notices() == []
    assert "ImagesGone" in metric_names(capsys)


def test_unknown_image_id_is_gone_not_an_error(estate, invoke):
    result = invoke(state_event("ami-0123456789abcdef0"))

    assert result["images"][0]["result"] == "gone"


def test_throttling_is_raised_so_that_the_event_is_retried(estate, invoke, monkeypatch, capsys):
    image_id, instance_id = estate.create_image("test image")

    def throttled(self, image_id):
        raise ClientError(
            {"Error": {"Code": "RequestLimitExceeded", "Message": "Request limit exceeded."}}, "DescribeImages"
        )

    monkeypatch.setattr(Ec2Images, "describe_image", throttled)

    with pytest.raises(ClientError, match="RequestLimitExceeded"):
        invoke(create_image_event(image_id, instance_id))
    assert estate.tags_of(image_id) == {}
    assert "AwsErrors" in metric_names(capsys)


def test_a_call_aws_never_answered_is_counted_logged_and_raised_so_that_the_event_is_retried(
    estate, invoke, monkeypatch, capsys
):
    # Given EC2 out of reach: botocore's own retries are spent and no answer came (no error code either)
    image_id, instance_id = estate.create_image("test image")

    def unreachable(self, image_id):
        raise EndpointConnectionError(endpoint_url="https://ec2.us-east-1.amazonaws.com/")

    monkeypatch.setattr(Ec2Images, "describe_image", unreachable)
    logged = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", logged)

    # When the event is handled, Then it raises (Lambda retries it, then the DLQ keeps it) and nothing is written
    with pytest.raises(EndpointConnectionError):
        invoke(create_image_event(image_id, instance_id))
    assert estate.tags_of(image_id) == {}
    # And it is counted as an AWS error, with botocore's exception as the code, and logged
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    assert [line["code"] for line in emitted if "AwsErrors" in line] == ["EndpointConnectionError"]
    [failure] = [
        entry for entry in map(json.loads, logged.getvalue().splitlines())
        if entry["message"] == "AWS call failed; the event will be retried"
    ]  # fmt: skip
    assert failure["code"] == "EndpointConnectionError"


def test_server_error_on_tag_write_is_raised_and_the_retry_completes_the_work(estate, invoke, monkeypatch):
    # Given EC2 failing the verdict tag write once
    image_id, instance_id = estate.create_image("test image")
    event = create_image_event(image_id, instance_id, name="test image")
    real_create_tags = Ec2Images.create_tags
    monkeypatch.setattr(Ec2Images, "create_tags", unavailable_once(real_create_tags, "CreateTags"))

    # When the event fails, and Lambda retries it
    with pytest.raises(ClientError, match="Unavailable"):
        invoke(event)
    invoke(event)

    # Then the verdict is on the AMI and the notice went out (at least once: the retry repeats it)
    assert estate.tags_of(image_id)[f"{PREFIX}compliance"] == "non-compliant"
    assert {n["body"]["image_id"] for n in estate.notices()} == {image_id}


def test_a_notice_that_failed_to_publish_is_published_by_the_retry(estate, invoke, monkeypatch):
    # Given SNS failing once: the notice is published before the verdict tags are written, so that a retry
    # still finds the AMI unjudged and publishes again instead of concluding that nothing changed
    image_id, instance_id = estate.create_image("test image")
    event = create_image_event(image_id, instance_id, name="test image")
    monkeypatch.setattr(Notifier, "publish", unavailable_once(Notifier.publish, "Publish"))

    with pytest.raises(ClientError, match="Unavailable"):
        invoke(event)
    assert estate.tags_of(image_id) == {}
    retry = invoke(event)

    assert retry["images"][0]["notified"] is not None
    assert [n["body"]["image_id"] for n in estate.notices()] == [image_id]


def unavailable_once(real, operation):
    calls = []

    def flaky(self, *args):
        calls.append(1)
        if len(calls) == 1:
            raise ClientError({"Error": {"Code": "Unavailable", "Message": "Service unavailable"}}, operation)
        return real(self, *args)

    return flaky


def test_ami_at_the_tag_limit_is_still_judged_and_announced(estate, invoke):
    # Given an AMI that already carries 47 user tags (EC2 allows 50)
    tags = {f"Team{i}": "x" for i in range(47)}
    image_id, instance_id = estate.create_image("test image", tags)

    # When it is judged
    result = invoke(create_image_event(image_id, instance_id, name="test image"))

    # Then the verdict tags that matter most fit, the rest is left out and counted, and the notice goes out
    written = estate.tags_of(image_id)
    assert len(written) == 50
    assert written[f"{PREFIX}compliance"] == "non-compliant"
    assert f"{PREFIX}violations" in written
    assert result["images"][0]["notified"] is not None


def test_bad_policy_in_the_parameter_fails_loudly(estate, invoke):
    import boto3

    from ami_governance.models.policy import PolicyError
    from ami_governance.services import wiring

    boto3.client("ssm", region_name="us-east-1").put_parameter(
        Name="/ami-governance/policy", Value='{"mode": "strict"}', Type="String", Overwrite=True
    )
    wiring.reset()

    with pytest.raises(PolicyError, match="mode: Input should be 'audit' or 'enforce'"):
        invoke(state_event("ami-0123456789abcdef0"))
