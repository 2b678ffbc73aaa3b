"""A queue of jobs for one Lambda consumer, with a bounded number of attempts and an alarmed dead-letter queue."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.constructs.alarmed_dead_letter_queue import AlarmedDeadLetterQueue

# AWS's recommendation for a queue that is a Lambda event source: a visibility timeout of at least six times the
# function's timeout, so that a message is not received again while a batch holding it is still being retried
# after throttling.
VISIBILITY_TIMEOUT_PER_CONSUMER_TIMEOUT = 6


class JobQueue(Construct):
    """SQS queue (SSE-SQS, TLS only) whose messages go to an `AlarmedDeadLetterQueue` after `max_receives`
    receives, with a visibility timeout of six times `consumer_timeout`.

    SSE-SQS rather than a customer key, as for the dead-letter queues: a job names AWS resources, nothing secret,
    and a customer key would have to trust every producer and consumer in its key policy.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        purpose: str,
        consumer_timeout: Duration,
        max_receives: int,
        alarm_topic: sns.ITopic | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letters = AlarmedDeadLetterQueue(self, "DeadLetters", purpose=purpose, alarm_topic=alarm_topic)
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(
                consumer_timeout.to_seconds() * VISIBILITY_TIMEOUT_PER_CONSUMER_TIMEOUT
            ),
            dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=max_receives, queue=self.dead_letters.queue),
        )
