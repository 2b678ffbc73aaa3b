"""A dead-letter queue that raises an alarm as soon as anything lands in it."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.nag import acknowledge
from stacks.resource_names import alarm_name


class AlarmedDeadLetterQueue(Construct):
    """SQS queue (SSE-SQS, TLS only, 14 days) plus an alarm on ApproximateNumberOfMessagesVisible >= 1, which
    notifies `alarm_topic` if given (an alarm action can only reach a topic in the alarm's own region).

    SSE-SQS rather than a customer key: EventBridge and Lambda write to it as service principals, which a
    customer key would have to trust in its key policy, for no gain on data that is a copy of an AWS event.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, purpose: str, alarm_topic: sns.ITopic | None = None
    ) -> None:
        super().__init__(scope, construct_id)
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        acknowledge(
            self.queue,
            "AwsSolutions-SQS3",
            f"This queue is itself a dead-letter queue ({purpose}); it is alarmed instead of having a DLQ of its own.",
        )
        self.alarm = cloudwatch.Alarm(
            self,
            "NotEmpty",
            alarm_name=alarm_name(self, "NotEmpty"),
            alarm_description=f"Messages in the dead-letter queue for {purpose}: events were not processed.",
            metric=self.queue.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5), statistic=cloudwatch.Stats.MAXIMUM
            ),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        if alarm_topic is not None:
            self.alarm.add_alarm_action(cloudwatch_actions.SnsAction(alarm_topic))
