"""EventBridge on the emulator: events put through the API, scheduled rules, and dead-letter queues."""

from __future__ import annotations

import json

import pytest

from tests.conftest import load_event
from tests.e2e.conftest import PREFIX

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]


def queue(emulator, name):
    sqs = emulator.client("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def test_an_event_put_through_the_api_is_routed_by_the_stacks_rules(emulator):
    # Given an AMI, and a real-shaped AMI State Change event for it put on the default bus through PutEvents
    instance_id = emulator.launch_instance()
    image_id = emulator.client("ec2").create_image(InstanceId=instance_id, Name="put-events check")["ImageId"]
    emulator.drain()
    sample = load_event("ami_state_available")
    sample["detail"]["ImageId"] = image_id

    emulator.client("events").put_events(
        Entries=[
            {"Source": sample["source"], "DetailType": sample["detail-type"], "Detail": json.dumps(sample["detail"])}
        ]
    )
    ran = emulator.drain()

    # Then the forwarder and the enforce rule pick it up, as they do for events AWS emits
    handled = [i for i in ran if i["outcome"] == "success" and i["description"] == f"{image_id} available"]
    assert handled
    assert emulator.tags_of(image_id)[f"{PREFIX}compliance"] == "non-compliant"


def test_scheduled_rules_fire_on_request(emulator):
    # Given a scheduled rule targeting a queue (the report capability will add its own)
    events = emulator.client("events")
    url, arn = queue(emulator, "schedule-check")
    events.put_rule(Name="nightly-check", ScheduleExpression="cron(0 3 * * ? *)")
    events.put_targets(Rule="nightly-check", Targets=[{"Id": "queue", "Arn": arn}])

    fired = emulator.control("POST", "schedule")
    emulator.drain()

    assert "nightly-check" in fired["fired"]
    [message] = emulator.client("sqs").receive_message(QueueUrl=url)["Messages"]
    assert json.loads(message["Body"])["detail-type"] == "Scheduled Event"


def test_an_unreachable_target_is_retried_then_dead_lettered(emulator):
    # Given a rule whose Lambda target does not exist, with a DLQ on the target
    events = emulator.client("events")
    url, arn = queue(emulator, "unreachable-target-dlq")
    events.put_rule(Name="to-nowhere", EventPattern=json.dumps({"source": ["demo.unreachable"]}))
    events.put_targets(
        Rule="to-nowhere",
        Targets=[
            {
                "Id": "missing",
                "Arn": "arn:aws:lambda:us-east-1:123456789012:function:does-not-exist",
                "RetryPolicy": {"MaximumRetryAttempts": 2},
                "DeadLetterConfig": {"Arn": arn},
            }
        ],
    )

    events.put_events(Entries=[{"Source": "demo.unreachable", "DetailType": "check", "Detail": "{}"}])
    ran = emulator.drain()

    attempts = [i for i in ran if i["rule"] == "to-nowhere"]
    assert [i["outcome"] for i in attempts] == ["error", "error", "dead-lettered"]
    [message] = emulator.client("sqs").receive_message(QueueUrl=url, MessageAttributeNames=["All"])["Messages"]
    assert message["MessageAttributes"]["ERROR_CODE"]["StringValue"] == "ResourceNotFoundException"
