"""The home stack: governance bus, enforce and cleanup Lambdas (and the replicate and copy Lambdas with their copy
queue, when the policy replicates), the scheduled report Lambda and its bucket, inventory, notifications, policy
parameter, DLQs, alarms and the dashboard."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from aws_cdk import ArnFormat, CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sns as sns
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from ami_governance.models.policy import GovernancePolicy, PolicyError
from stacks.constructs.alarmed_dead_letter_queue import AlarmedDeadLetterQueue
from stacks.constructs.ami_event_forwarder import AmiEventForwarder
from stacks.constructs.deleted_snapshot_recycle_bin import DeletedSnapshotRecycleBin, DeletedSnapshotRetention
from stacks.constructs.governance_dashboard import GovernanceDashboard
from stacks.constructs.governed_function import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT, GovernedFunction
from stacks.constructs.job_queue import JobQueue
from stacks.constructs.reports_bucket import ReportsBucket
from stacks.constructs.routed_rule import RoutedRule
from stacks.event_patterns import (
    ALARM_RAISED,
    CLEANUP_PATTERNS,
    ENFORCE_PATTERNS,
    FORWARDING_PATTERNS,
    EventPatternData,
    replicate_patterns,
)
from stacks.nag import acknowledge, wildcard_action_finding
from stacks.permissions import (
    Permission,
    attach_policy,
    cleanup_permissions,
    copy_permissions,
    enforce_permissions,
    replicate_permissions,
    report_permissions,
    sweep_retries_cleanups,
)
from stacks.resource_names import GOVERNANCE_BUS_NAME, POLICY_PARAMETER_NAME, alarm_name

# Always the advanced tier (8 KB), whatever the policy's size today. Parameter Store cannot move a parameter back
# from advanced to standard (PutParameter refuses; "Managing parameter tiers", Systems Manager User Guide), so a
# tier that followed the size would fail the first deployment after a policy shrinks below 4 KB. Intelligent-
# Tiering is not used: the guide describes the tier it picks at creation, not what it does on an update of an
# advanced parameter. The cost is that of one advanced parameter (USD 0.05 a month, plus its API interactions).
POLICY_PARAMETER_TIER = ssm.ParameterTier.ADVANCED
ADVANCED_PARAMETER_MAX_BYTES = 8192

# A tag event names up to 1,000 resources (EC2's CreateTags limit), and enforce judges each of the account's AMIs
# among them with a CreateTags and at most one notice: some 2,000 calls, which at AWS's usual latencies take one to
# three minutes, not the 60 s of the other functions. Five minutes, so that bulk tagging is judged in one invocation.
ENFORCE_TIMEOUT = Duration.minutes(5)

# Cleanup deletes up to `max_snapshots_per_event` (50 by default) snapshots one by one, and DeleteSnapshot is
# throttled at 5 per second per region (botocore retries RequestLimitExceeded with backoff).
# Lambda's maximum: the policy allows up to 1000 deletions per deregistration, and DeleteSnapshot refills at 5/s.
CLEANUP_TIMEOUT = Duration.minutes(15)

# Copy starts at most one CopyImage per job (five jobs per batch); it does not wait for the copy to finish, the AMI
# state change tells replicate. Two minutes leave room for botocore's retries of a throttled call.
COPY_TIMEOUT = Duration.minutes(2)
COPY_BATCH_SIZE = 5
# A job comes back to the queue when EC2 refuses the copy for now (too many concurrent copies into a region, a
# source still pending): 20 receives, each after the visibility timeout (6 x COPY_TIMEOUT = 12 minutes), give a
# job about four hours before it is dead-lettered.
COPY_QUEUE_MAX_RECEIVES = 20
# Replicate and copy both record replicas: they read a source's item, add replica items and update both. Every
# write is an UpdateItem (which creates a missing item): no PutItem.
REPLICATION_INVENTORY_ACTIONS = ["dynamodb:GetItem", "dynamodb:UpdateItem"]

# Powertools idempotency: PutItem claims an event (conditional), UpdateItem records its answer, DeleteItem drops the
# claim of a handling that raised (so that the retry runs). A redelivery's conditional PutItem returns the record
# (ReturnValuesOnConditionCheckFailure, boto3 >= 1.26.164): Powertools reads it with GetItem only with an older boto3
# than any Lambda runtime of Python 3.14 has, so GetItem is not granted.
IDEMPOTENCY_ACTIONS = ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]

# The report scans every governed region (concurrently) and, with the sweep on, acts on what it found: Lambda's
# maximum leaves room for large estates and for botocore's retries of throttled listings.
REPORT_TIMEOUT = Duration.minutes(15)
# Memory is also CPU on Lambda: 512 MB (a third of a vCPU) for the JSON, CSV and HTML rendering and the findings
# over every region's records, with headroom above the scan's measured peak (README "Measured"). Once a day, the
# difference from 256 MB is a fraction of a cent per run.
REPORT_MEMORY_MB = 512


# The `source` of every event the forwarders put on the governance bus: the AWS services whose events they forward.
FORWARDED_SOURCES: tuple[str, ...] = tuple(
    sorted({source for pattern in (*FORWARDING_PATTERNS.values(), ALARM_RAISED) for source in pattern["source"]})
)
BUS_POLICY_DENY_OTHER_ACCOUNTS_SID = "OnlyTheForwardersAccounts"
BUS_POLICY_DENY_OTHER_SOURCES_SID = "OnlyTheForwardedSources"
BUS_POLICY_ALLOW_FORWARDER_ACCOUNTS_SID = "ForwardersOfOtherAccounts"


def policy_parameter_value(policy: GovernancePolicy) -> str:
    """The policy as the JSON its SSM parameter holds; too large for the parameter is a policy error."""
    policy_json = policy.model_dump_json()
    size = len(policy_json.encode("utf-8"))
    if size > ADVANCED_PARAMETER_MAX_BYTES:
        # Fail the synth with a one-line policy error rather than the deployment with an SSM error.
        raise PolicyError(f"policy: {size} bytes as JSON; the SSM parameter that carries it holds at most 8192")
    return policy_json


class AmiGovernanceHomeStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        policy: GovernancePolicy,
        deleted_snapshot_retention: DeletedSnapshotRetention | None = None,
        forwarder_accounts: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)

        self.governance_bus = events.EventBus(self, "GovernanceBus", event_bus_name=GOVERNANCE_BUS_NAME)
        self._accept_only_forwarded_events(forwarder_accounts)

        notifications_key = kms.Key(
            self,
            "NotificationsKey",
            description="Encrypts the AMI governance notification topic",
            enable_key_rotation=True,
        )
        self.notifications = sns.Topic(
            self,
            "Notifications",
            display_name="AMI governance",
            master_key=notifications_key,
            enforce_ssl=True,
        )
        self._let_alarms_publish(notifications_key)

        self.inventory = dynamodb.Table(
            self,
            "Inventory",
            partition_key=dynamodb.Attribute(name="image_id", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="region", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            # Lineage cannot be rebuilt once AMIs are deregistered: keep it when the stack goes.
            removal_policy=RemovalPolicy.RETAIN,
            deletion_protection=True,
        )
        # One record per event and function that EventBridge invokes (adapters/idempotency.py): Powertools' key and
        # TTL attribute. Records live 12 hours; the TTL removes them, so the table stays small.
        self.idempotency = dynamodb.Table(
            self,
            "Idempotency",
            partition_key=dynamodb.Attribute(name="id", type=dynamodb.AttributeType.STRING),
            time_to_live_attribute="expiration",
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            # As the inventory: a stack deleted while events are still being redelivered keeps their records.
            removal_policy=RemovalPolicy.RETAIN,
        )

        self.policy_parameter = ssm.StringParameter(
            self,
            "PolicyParameter",
            parameter_name=POLICY_PARAMETER_NAME,
            description="AMI governance policy (JSON), validated at synth by the model the Lambdas use",
            string_value=policy_parameter_value(policy),
            tier=POLICY_PARAMETER_TIER,
        )

        self.rule_dead_letters = AlarmedDeadLetterQueue(
            self, "RuleTargetDeadLetters", purpose="EventBridge rule targets", alarm_topic=self.notifications
        )
        self.invoke_dead_letters = AlarmedDeadLetterQueue(
            self, "AsyncInvokeDeadLetters", purpose="Lambda asynchronous invocations", alarm_topic=self.notifications
        )

        self.enforce = self._governed_function(
            "Enforce",
            handler="handlers.enforce.handler",
            description="AMI governance: check new and changed AMIs against the policy, tag, notify, remediate",
            permissions=enforce_permissions(policy, self.account),
            timeout=ENFORCE_TIMEOUT,
            # Enforce only records what it judged (UpdateItem creates the item): it never reads the inventory.
            inventory_actions=["dynamodb:UpdateItem"],
            patterns=ENFORCE_PATTERNS,
        )
        self.cleanup = self._governed_function(
            "Cleanup",
            handler="handlers.cleanup.handler",
            description="AMI governance: delete the snapshots a deregistered AMI leaves behind (dry-run by default)",
            permissions=cleanup_permissions(policy, self.account),
            # The AMI's item holds its snapshots and replicas (recorded when it became available): cleanup reads
            # it and records what it did.
            inventory_actions=["dynamodb:GetItem", "dynamodb:UpdateItem"],
            patterns=CLEANUP_PATTERNS,
            timeout=CLEANUP_TIMEOUT,
        )

        # The home region is governed too: its default-bus AMI events reach the governance bus like any other's.
        AmiEventForwarder(
            self, "Forwarder", target_bus=self.governance_bus, dead_letter_queue=self.rule_dead_letters.queue
        )
        # Alarms in forwarder regions cannot notify this region's topic themselves: their forwarders send the
        # state change of an alarm going into ALARM here, and this rule publishes it to the topic.
        RoutedRule(
            self,
            "NotifyForwardedAlarms",
            event_bus=self.governance_bus,
            event_pattern=ALARM_RAISED,
            description="AMI governance: alarms raised in forwarder regions -> notification topic",
            topic=self.notifications,
            dead_letter_queue=self.rule_dead_letters.queue,
        )
        if deleted_snapshot_retention is not None:
            DeletedSnapshotRecycleBin(self, "DeletedSnapshotRecycleBin", retention=deleted_snapshot_retention)
        self.copy_jobs: JobQueue | None = None
        self.replicate: GovernedFunction | None = None
        self.copy: GovernedFunction | None = None
        if policy.replication.regions:
            self._build_replication(policy)
        self.reports, self.report = self._build_report(policy)
        self._build_dashboard()

    def _accept_only_forwarded_events(self, other_accounts: Sequence[str]) -> None:
        """The governance bus takes events only from the forwarders: principals of this account (and of
        `other_accounts`, the member accounts of an Organization scale-out, whose forwarders an Allow lets in), and
        only the sources the forwarders forward. EventBridge refuses PutEvents with an AWS service's source
        (`aws.*`, NotAuthorizedForSourceException) from any caller, so what passes both Denies is an event an
        EventBridge rule delivered. Explicit Denies, so that no identity policy or later Allow can widen them;
        events:PutEvents supports `events:source` (multivalued: one per entry) and the global `aws:PrincipalAccount`
        (Service Authorization Reference, Amazon EventBridge)."""
        accounts = [self.account, *other_accounts]
        # From its name: the bus's own ARN attribute in its own policy would be a circular reference.
        bus_arn = self.format_arn(service="events", resource="event-bus", resource_name=GOVERNANCE_BUS_NAME)
        anyone = iam.AnyPrincipal()
        statements = [
            iam.PolicyStatement(
                sid=BUS_POLICY_DENY_OTHER_ACCOUNTS_SID,
                effect=iam.Effect.DENY,
                principals=[anyone],
                actions=["events:PutEvents"],
                resources=[bus_arn],
                conditions={"StringNotEquals": {"aws:PrincipalAccount": accounts}},
            ),
            iam.PolicyStatement(
                sid=BUS_POLICY_DENY_OTHER_SOURCES_SID,
                effect=iam.Effect.DENY,
                principals=[anyone],
                actions=["events:PutEvents"],
                resources=[bus_arn],
                # Any entry of the call with another source denies the whole call.
                conditions={"ForAnyValue:StringNotEquals": {"events:source": list(FORWARDED_SOURCES)}},
            ),
        ]
        if other_accounts:
            # Another account's principals need the bus's own Allow too (this account's need only their role's).
            statements.append(
                iam.PolicyStatement(
                    sid=BUS_POLICY_ALLOW_FORWARDER_ACCOUNTS_SID,
                    principals=[iam.AccountPrincipal(account) for account in other_accounts],
                    actions=["events:PutEvents"],
                    resources=[bus_arn],
                    conditions={
                        "ForAllValues:StringEquals": {"events:source": list(FORWARDED_SOURCES)},
                        # ForAllValues is true of a request without the key: it must be there.
                        "Null": {"events:source": "false"},
                    },
                )
            )
        # One document on the bus itself (its Policy property), not one AWS::Events::EventBusPolicy per statement:
        # the policy is replaced whole, never half-applied.
        cfn_bus = cast(events.CfnEventBus, self.governance_bus.node.default_child)
        cfn_bus.policy = iam.PolicyDocument(statements=statements).to_json()

    def _build_report(self, policy: GovernancePolicy) -> tuple[ReportsBucket, GovernedFunction]:
        """The report: on the policy's schedule (a rule on the default bus, which the emulator fires too) or on
        demand (`aws lambda invoke`), it scans every governed region, publishes JSON, CSV and HTML to its bucket,
        and a summary to the topic."""
        reports = ReportsBucket(self, "Reports", expire_after_days=policy.report.expire_reports_after_days)
        # It reads the whole inventory (Scan) and records launch permissions it verified (UpdateItem); a sweep
        # that retries deferred clean-ups does so through the clean-up service, which reads an AMI's item.
        inventory_actions = ["dynamodb:Scan", "dynamodb:UpdateItem"]
        if sweep_retries_cleanups(policy):
            inventory_actions.insert(0, "dynamodb:GetItem")
        report = self._governed_function(
            "Report",
            handler="handlers.report.handler",
            description="AMI governance: scheduled report of AMI and snapshot waste, exposure and drift (and sweep)",
            permissions=report_permissions(policy, self.account, report_objects=reports.report_object_arns()),
            inventory_actions=inventory_actions,
            patterns={},
            schedule=events.Schedule.expression(policy.report.schedule),
            timeout=REPORT_TIMEOUT,
            memory_size=REPORT_MEMORY_MB,
            environment={"REPORTS_BUCKET_NAME": reports.bucket.bucket_name},
        )
        CfnOutput(self, "ReportsBucketName", value=reports.bucket.bucket_name, description="Bucket of the reports")
        CfnOutput(self, "ReportFunctionName", value=report.function.function_name, description="Run a report now")
        return reports, report

    def _build_dashboard(self) -> None:
        functions = {
            name: governed.function
            for name, governed in (
                ("enforce", self.enforce),
                ("cleanup", self.cleanup),
                ("replicate", self.replicate),
                ("copy", self.copy),
                ("report", self.report),
            )
            if governed is not None
        }
        queues = {
            "rule targets": self.rule_dead_letters.queue,
            "async invocations": self.invoke_dead_letters.queue,
        }
        if self.copy_jobs is not None:
            queues["copy jobs"] = self.copy_jobs.dead_letters.queue
        self.dashboard = GovernanceDashboard(self, "Dashboard", functions=functions, dead_letter_queues=queues)

    def _build_replication(self, policy: GovernancePolicy) -> None:
        """Replicate turns an approval into one copy job per target region and follows the replicas; copy starts
        each copy. A queue between them: copies are throttled per region, and a job EC2 refuses for now is retried
        without holding up the others."""
        copy_jobs = JobQueue(
            self,
            "CopyJobs",
            purpose="AMI copy jobs",
            consumer_timeout=COPY_TIMEOUT,
            max_receives=COPY_QUEUE_MAX_RECEIVES,
            alarm_topic=self.notifications,
        )
        replicate = self._governed_function(
            "Replicate",
            handler="handlers.replicate.handler",
            description="AMI governance: replicate approved AMIs to the replication regions, share the replicas",
            permissions=replicate_permissions(policy, self.account, copy_queue_arn=copy_jobs.queue.queue_arn),
            inventory_actions=REPLICATION_INVENTORY_ACTIONS,
            patterns=replicate_patterns(policy),
            environment={"COPY_QUEUE_URL": copy_jobs.queue.queue_url},
        )
        copy = self._governed_function(
            "Copy",
            handler="handlers.copy.handler",
            description="AMI governance: copy an approved AMI into one replication region (one job per message)",
            permissions=copy_permissions(policy, self.account),
            inventory_actions=REPLICATION_INVENTORY_ACTIONS,
            patterns={},  # fed by the copy queue only
            timeout=COPY_TIMEOUT,
        )
        # Grants receive, delete and change-visibility (plus the queue's URL and attributes) on this queue only.
        copy.function.add_event_source(
            event_sources.SqsEventSource(
                copy_jobs.queue,
                batch_size=COPY_BATCH_SIZE,
                # No waiting for a fuller batch: an approval is a handful of jobs, and the sooner a copy starts the
                # sooner it ends.
                max_batching_window=Duration.seconds(0),
                # A job EC2 refuses for now goes back alone; the rest of its batch is done.
                report_batch_item_failures=True,
            )
        )
        CfnOutput(
            self,
            "CopyRoleArn",
            value=copy.role.role_arn,
            description="Role of the copy Lambda: allow it in the key policy of every KMS key in replication.kms_keys",
        )
        CfnOutput(self, "CopyQueueUrl", value=copy_jobs.queue.queue_url, description="Queue of AMI copy jobs")
        self.copy_jobs, self.replicate, self.copy = copy_jobs, replicate, copy

    def _let_alarms_publish(self, key: kms.IKey) -> None:
        # CloudWatch alarm actions publish as the cloudwatch.amazonaws.com service: it needs the topic policy
        # (which enforce_ssl makes explicit) and the key policy to allow it, for this account's alarms only.
        alarm_arns = self.format_arn(
            service="cloudwatch", resource="alarm", resource_name="*", arn_format=ArnFormat.COLON_RESOURCE_NAME
        )
        cloudwatch_principal = iam.ServicePrincipal("cloudwatch.amazonaws.com")
        self.notifications.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowThisAccountsAlarms",
                principals=[cloudwatch_principal],
                actions=["sns:Publish"],
                resources=[self.notifications.topic_arn],
                conditions={
                    "ArnLike": {"aws:SourceArn": alarm_arns},
                    "StringEquals": {"aws:SourceAccount": self.account},
                },
            )
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowThisAccountsAlarmsToPublish",
                principals=[cloudwatch_principal],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, '*' means this key
                conditions={"StringEquals": {"aws:SourceAccount": self.account}},
            )
        )

    def _governed_function(
        self,
        name: str,
        *,
        handler: str,
        description: str,
        permissions: list[Permission],
        inventory_actions: list[str],
        patterns: dict[str, EventPatternData],
        schedule: events.Schedule | None = None,
        timeout: Duration = DEFAULT_TIMEOUT,
        memory_size: int = DEFAULT_MEMORY_MB,
        environment: Mapping[str, str] | None = None,
    ) -> GovernedFunction:
        """A function that reads the policy, records in the inventory and notifies, with its own permissions (EC2,
        and whatever else it alone needs), an error alarm, one rule on the governance bus per pattern, and a
        scheduled rule (on the default bus) if it has a schedule. A function the governance bus's rules invoke also
        records each event it handled in the idempotency table."""
        event_driven = bool(patterns)
        if event_driven:
            environment = {**(environment or {}), "IDEMPOTENCY_TABLE_NAME": self.idempotency.table_name}
        function = GovernedFunction(
            self,
            name,
            handler=handler,
            description=description,
            environment={
                "POLICY_PARAMETER_NAME": self.policy_parameter.parameter_name,
                "INVENTORY_TABLE_NAME": self.inventory.table_name,
                "NOTIFICATION_TOPIC_ARN": self.notifications.topic_arn,
                **(environment or {}),
            },
            # EventBridge invokes a rule's function asynchronously: an event that failed every retry goes to the DLQ.
            # A function fed only by a queue mapping is invoked synchronously, where Lambda never uses a DLQ (the
            # queue's own redrive policy does): none, and no sqs:SendMessage for it.
            dead_letter_queue=self.invoke_dead_letters.queue if patterns or schedule else None,
            timeout=timeout,
            memory_size=memory_size,
        )
        attach_policy(self, f"{name}Permissions", function.role, permissions)
        self._grant_common(function.role, inventory_actions)
        if event_driven:
            self._grant_idempotency(function.role)
        self._alarm_on_errors(function, name.lower())
        for pattern_name, pattern in patterns.items():
            RoutedRule(
                self,
                f"{name}{pattern_name}",
                event_bus=self.governance_bus,
                event_pattern=pattern,
                description=f"AMI governance: {pattern_name} -> {name.lower()}",
                function=function.function,
                dead_letter_queue=self.rule_dead_letters.queue,
            )
        if schedule is not None:
            RoutedRule(
                self,
                f"{name}Schedule",
                event_bus=None,
                schedule=schedule,
                description=f"AMI governance: schedule -> {name.lower()}",
                function=function.function,
                dead_letter_queue=self.rule_dead_letters.queue,
            )
        return function

    def _grant_common(self, role: iam.IRole, inventory_actions: list[str]) -> None:
        role.add_to_principal_policy(
            iam.PolicyStatement(sid="RecordInventory", actions=inventory_actions, resources=[self.inventory.table_arn])
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadPolicy", actions=["ssm:GetParameter"], resources=[self.policy_parameter.parameter_arn]
            )
        )
        # sns:Publish on the topic, plus kms:Decrypt and kms:GenerateDataKey* on its key.
        self.notifications.grant_publish(role)
        acknowledge(
            role,
            wildcard_action_finding("kms:GenerateDataKey*"),
            "Publishing to a KMS-encrypted topic needs kms:GenerateDataKey* (GenerateDataKey and its "
            "WithoutPlaintext variant); the statement is limited to the topic's own key.",
        )

    def _grant_idempotency(self, role: iam.IRole) -> None:
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="RecordHandledEvents", actions=IDEMPOTENCY_ACTIONS, resources=[self.idempotency.table_arn]
            )
        )

    def _alarm_on_errors(self, function: GovernedFunction, name: str) -> None:
        alarm = cloudwatch.Alarm(
            self,
            f"{name.capitalize()}Errors",
            alarm_name=alarm_name(self, f"{name.capitalize()}Errors"),
            alarm_description=f"The {name} Lambda failed; failed events are retried and then dead-lettered.",
            metric=function.function.metric_errors(period=Duration.minutes(5), statistic=cloudwatch.Stats.SUM),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(cloudwatch_actions.SnsAction(self.notifications))
