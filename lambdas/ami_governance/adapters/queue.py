"""The copy queue (SQS): replication's durable list of copy jobs, one message per source AMI and region."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from ami_governance.adapters.clients import client

# SendMessageBatch takes up to 10 messages.
SEND_BATCH = 10


class QueueSendFailed(RuntimeError):
    """SQS refused some messages of a batch: raised so that the event is retried (a resent job is harmless)."""


def queue_url_from_arn(queue_arn: str) -> str:
    # arn:<partition>:sqs:<region>:<account>:<name>; SQS accepts this URL form in every region.
    _, partition, _, region, account, name = queue_arn.split(":", 5)
    domain = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
    return f"https://sqs.{region}.{domain}/{account}/{name}"


class CopyQueue:
    def __init__(self, queue_url: str, region: str) -> None:
        self.queue_url = queue_url
        self._sqs = client("sqs", region)

    def send(self, jobs: Sequence[Mapping[str, object]]) -> None:
        for start in range(0, len(jobs), SEND_BATCH):
            batch = jobs[start : start + SEND_BATCH]
            response = self._sqs.send_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(index), "MessageBody": json.dumps(job, sort_keys=True)}
                    for index, job in enumerate(batch)
                ],
            )
            failed = response.get("Failed", [])
            if failed:
                raise QueueSendFailed(f"{len(failed)} copy jobs not queued: {failed}")

    def defer(self, receipt_handle: str, seconds: int) -> None:
        """Hide a job that must wait (EC2's copy cap, throttling) for `seconds` before its next delivery."""
        self._sqs.change_message_visibility(
            QueueUrl=self.queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
        )
