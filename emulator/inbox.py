"""A notice inbox: an SQS queue subscribed to the governance's SNS topic, so its notices can be read back.

SNS keeps nothing for a reader that comes later, so whoever wants to see the notices (the demo, the tests)
subscribes a queue first and reads the queue. Works on any endpoint: the emulator's, or moto's in-process.
"""

from __future__ import annotations

import json
from typing import Any


def subscribe_inbox(sns: Any, sqs: Any, topic_arn: str, name: str) -> str:
    """An SQS queue subscribed to `topic_arn`, so that its notices can be read back; returns the queue URL."""
    url = str(sqs.create_queue(QueueName=name)["QueueUrl"])
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)
    return url


def read_notices(inbox_url: str, sqs: Any) -> list[dict[str, Any]]:
    """Every SNS notice delivered to the inbox so far, as {"subject", "body"}; the inbox is emptied."""
    notices = []
    while batch := sqs.receive_message(QueueUrl=inbox_url, MaxNumberOfMessages=10).get("Messages", []):
        for message in batch:
            envelope = json.loads(message["Body"])
            notices.append({"subject": envelope.get("Subject"), "body": json.loads(envelope["Message"])})
            sqs.delete_message(QueueUrl=inbox_url, ReceiptHandle=message["ReceiptHandle"])
    return notices
