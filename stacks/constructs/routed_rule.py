"""The one place that builds an EventBridge rule with its target, retry policy and dead-letter queue."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, cast

from aws_cdk import Duration, Names, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

DEFAULT_RETRY_ATTEMPTS = 4
DEFAULT_MAX_EVENT_AGE = Duration.hours(2)
EVENTS_PRINCIPAL = "events.amazonaws.com"
# Sid of the key-policy statement that lets this account's rules publish to a topic encrypted with the key.
RULES_MAY_USE_KEY_SID = "AllowThisAccountsRulesToPublish"
# The encryption context SNS binds a topic's data keys to (its value is the topic ARN).
TOPIC_ENCRYPTION_CONTEXT_KEY = "kms:EncryptionContext:aws:sns:topicArn"
# Sid of the one queue-policy statement that lets the rules of a stack send to their dead-letter queue.
RULES_MAY_DEAD_LETTER_SID = "AllowTheseRulesToDeadLetter"
DEAD_LETTER_SENDERS_ID = "RuleDeadLetterSenders"


def to_event_pattern(data: Mapping[str, Any]) -> events.EventPattern:
    """An `events.EventPattern` from plain pattern data (see stacks/event_patterns.py)."""
    known = {"source", "detail-type", "detail", "account", "region", "resources", "id", "time", "version"}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unsupported top-level event pattern keys: {sorted(unknown)}")
    data = copy.deepcopy(dict(data))
    return events.EventPattern(
        source=data.get("source"),
        detail_type=data.get("detail-type"),
        detail=data.get("detail"),
        account=data.get("account"),
        region=data.get("region"),
        resources=data.get("resources"),
        id=data.get("id"),
        time=data.get("time"),
        version=data.get("version"),
    )


class RoutedRule(Construct):
    """A rule on `event_bus` with exactly one target: a Lambda function, another event bus, or an SNS topic.
    It matches `event_pattern`, or, with `schedule` instead, fires on that schedule (only the default bus runs
    scheduled rules).

    The target always gets a retry policy and a dead-letter queue, so an event that cannot be delivered
    ends up in an alarmed queue instead of being dropped.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        event_bus: events.IEventBus | None,
        description: str,
        event_pattern: Mapping[str, Any] | None = None,
        schedule: events.Schedule | None = None,
        dead_letter_queue: sqs.IQueue,
        function: lambda_.IFunction | None = None,
        target_bus: events.IEventBus | None = None,
        target_bus_role: iam.IRole | None = None,
        topic: sns.ITopic | None = None,
        retry_attempts: int = DEFAULT_RETRY_ATTEMPTS,
        max_event_age: Duration = DEFAULT_MAX_EVENT_AGE,
    ) -> None:
        super().__init__(scope, construct_id)
        if [function, target_bus, topic].count(None) != 2:
            raise ValueError("a routed rule needs exactly one of 'function', 'target_bus' or 'topic'")
        if (event_pattern is None) == (schedule is None):
            raise ValueError("a routed rule needs exactly one of 'event_pattern' or 'schedule'")
        if schedule is not None and event_bus is not None:
            raise ValueError("a scheduled rule runs on the default bus: give no 'event_bus'")
        self.rule = events.Rule(
            self,
            "Rule",
            event_bus=event_bus,
            event_pattern=None if event_pattern is None else to_event_pattern(event_pattern),
            schedule=schedule,
            description=description,
        )
        cfn_rule = cast(events.CfnRule, self.rule.node.default_child)
        if function is not None:
            self.rule.add_target(
                targets.LambdaFunction(function, retry_attempts=retry_attempts, max_event_age=max_event_age)
            )
        elif target_bus is not None:
            self.rule.add_target(targets.EventBus(target_bus, role=target_bus_role))
            # CloudFormation accepts a RetryPolicy on event-bus targets, but the CDK EventBus target does not
            # expose it (aws/aws-cdk#28735); set it on the one target this rule has.
            cfn_rule.add_property_override(
                "Targets.0.RetryPolicy",
                {
                    "MaximumRetryAttempts": retry_attempts,
                    "MaximumEventAgeInSeconds": int(max_event_age.to_seconds()),
                },
            )
        elif topic is not None:
            self._add_topic_target(topic, retry_attempts, max_event_age)
        # Not through the CDK targets' `dead_letter_queue`: each of them adds a queue-policy statement of its own,
        # and SQS caps a queue policy at 20 statements (and 8,192 bytes). One statement lists every rule instead.
        cfn_rule.add_property_override("Targets.0.DeadLetterConfig", {"Arn": dead_letter_queue.queue_arn})
        DeadLetterSenders.of(dead_letter_queue).allow(self.rule)

    def _add_topic_target(self, topic: sns.ITopic, retry_attempts: int, max_event_age: Duration) -> None:
        # targets.SnsTopic grants events.amazonaws.com sns:Publish on the topic, and kms:Decrypt and
        # kms:GenerateDataKey* on its key, without any condition. Handed the topic by ARN only, it grants nothing
        # (an imported topic has no policy to add to, and no key); the grants below carry conditions instead.
        self.rule.add_target(
            targets.SnsTopic(
                sns.Topic.from_topic_arn(self, "TopicByArn", topic.topic_arn),
                retry_attempts=retry_attempts,
                max_event_age=max_event_age,
            )
        )
        principal = iam.ServicePrincipal(EVENTS_PRINCIPAL)
        account = Stack.of(self).account
        published = topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid=f"AllowRule{Names.unique_id(self)}",
                principals=[principal],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                # This rule only.
                conditions={
                    "ArnEquals": {"aws:SourceArn": self.rule.rule_arn},
                    "StringEquals": {"aws:SourceAccount": account},
                },
            )
        )
        if not published.statement_added:
            raise ValueError(f"{self.node.path}: the topic has no policy to let this rule publish (imported?)")
        if topic.master_key is None:
            return
        # SNS encrypts what EventBridge publishes with the topic's key, on EventBridge's behalf. The SNS developer
        # guide (key management, event sources and encrypted topics) says aws:SourceAccount, aws:SourceArn and
        # aws:SourceOrgID in the key policy are not supported for EventBridge: under them every delivery fails the
        # KMS check. The topic policy above is what narrows publishing to this rule; the key is narrowed to this
        # account's topics in this region by the encryption context SNS binds each data key to (the topic's own
        # ARN would make a cycle: the topic refers to the key).
        this_accounts_topics = Stack.of(self).format_arn(service="sns", resource="*")
        keyed = topic.master_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid=RULES_MAY_USE_KEY_SID,
                principals=[principal],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, '*' means this key
                conditions={"StringLike": {TOPIC_ENCRYPTION_CONTEXT_KEY: this_accounts_topics}},
            )
        )
        if not keyed.statement_added:
            raise ValueError(f"{self.node.path}: the topic's key has no policy to let this rule use it (imported?)")


class DeadLetterSenders(Construct):
    """The one statement of a dead-letter queue's policy that lets EventBridge send it the events that the rules
    routed to it could not deliver: `sqs:SendMessage` for `events.amazonaws.com`, `aws:SourceArn` equal to one of
    those rules. Its size grows by one ARN per rule (about 130 bytes deployed), not by a statement per rule."""

    def __init__(self, queue: sqs.IQueue) -> None:
        super().__init__(Stack.of(queue), self._id_for(queue))
        self.rule_arns: list[str] = []
        self._statement = iam.PolicyStatement(
            sid=RULES_MAY_DEAD_LETTER_SID,
            principals=[iam.ServicePrincipal(EVENTS_PRINCIPAL)],
            actions=["sqs:SendMessage"],
            resources=[queue.queue_arn],
        )
        if not queue.add_to_resource_policy(self._statement).statement_added:
            raise ValueError(f"{queue.node.path}: the queue has no policy to let rules dead-letter to it (imported?)")

    @classmethod
    def of(cls, queue: sqs.IQueue) -> DeadLetterSenders:
        existing = Stack.of(queue).node.try_find_child(cls._id_for(queue))
        return existing if isinstance(existing, cls) else cls(queue)

    @staticmethod
    def _id_for(queue: sqs.IQueue) -> str:
        # One per queue, beside it in its stack (an `IQueue` need not be a construct that can have children).
        return f"{DEAD_LETTER_SENDERS_ID}{Names.node_unique_id(queue.node)}"

    def allow(self, rule: events.IRule) -> None:
        self.rule_arns.append(rule.rule_arn)
        # The last condition set for an operator and key wins: this one names every rule allowed so far.
        self._statement.add_condition("ArnEquals", {"aws:SourceArn": list(self.rule_arns)})
