"""The bucket the scheduled report is published to, and the bucket its access is logged to."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.nag import acknowledge

# Where ReportStore writes (adapters/report_store.py): one folder per run under REPORTS_PREFIX, and a copy of the
# latest run's files under LATEST_PREFIX, overwritten by each run.
REPORTS_PREFIX = "reports/"
LATEST_PREFIX = "latest/"
ACCESS_LOGS_PREFIX = "reports-bucket/"
SERVER_ACCESS_LOGS_USE_BUCKET_POLICY = "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy"
# A year of who read or wrote which report: longer than any report is kept by default (90 days), so the access to
# an expired report can still be traced for a while.
ACCESS_LOG_RETENTION = Duration.days(365)
# A multipart upload that never completed is billed until aborted; the report's files are small (single puts),
# so only a failed client leaves one.
INCOMPLETE_UPLOAD_EXPIRY = Duration.days(1)


def _private_bucket(
    scope: Construct,
    construct_id: str,
    *,
    lifecycle_rule: s3.LifecycleRule,
    access_logs: s3.IBucket | None = None,
) -> s3.Bucket:
    # SSE-S3 rather than a KMS key: readers (the CLI, the console, anyone the account lets read the bucket) need no
    # key grants, and server access logs can only be delivered to a bucket encrypted with SSE-S3 (S3 User Guide,
    # "Enabling Amazon S3 server access logging": SSE-KMS is not supported on the destination bucket). The
    # reports name AWS resources and their cost, nothing secret.
    return s3.Bucket(
        scope,
        construct_id,
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        # ACLs off: the bucket owner owns every object. CDK then lets the logging service write access logs
        # through the log bucket's policy (logging.s3.amazonaws.com, aws:SourceArn = the logged bucket,
        # aws:SourceAccount) instead of the log-delivery ACL.
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        # The reports are the only history of what the estate looked like; deleting the stack keeps them.
        removal_policy=RemovalPolicy.RETAIN,
        lifecycle_rules=[lifecycle_rule],
        server_access_logs_bucket=access_logs,
        server_access_logs_prefix=ACCESS_LOGS_PREFIX if access_logs is not None else None,
    )


class ReportsBucket(Construct):
    """Encrypted (SSE-S3), private, TLS only, access logged, retained; reports under `reports/` expire after
    `expire_after_days`, `latest/` is kept (each run overwrites it).

    Not versioned: every run writes new keys (`reports/<date>/<run-id>/`), which nothing overwrites; the only
    overwritten objects are the `latest/` copies, whose earlier versions are the previous runs' reports, already
    kept under `reports/`. The report Lambda may only put objects under those two prefixes, never delete them.
    """

    def __init__(self, scope: Construct, construct_id: str, *, expire_after_days: int) -> None:
        super().__init__(scope, construct_id)
        # Log delivery through the log bucket's policy, not the log-delivery ACL, which needs ACLs on (and is
        # what CDK does unless this flag is set). Set here, before any child exists, so that it holds whatever
        # the app's cdk.json says (the tests and the emulator build the app without it).
        self.node.set_context(SERVER_ACCESS_LOGS_USE_BUCKET_POLICY, True)
        self.access_logs = _private_bucket(
            self,
            "AccessLogs",
            lifecycle_rule=s3.LifecycleRule(
                id="ExpireAccessLogs",
                expiration=ACCESS_LOG_RETENTION,
                abort_incomplete_multipart_upload_after=INCOMPLETE_UPLOAD_EXPIRY,
            ),
        )
        acknowledge(
            self.access_logs,
            "AwsSolutions-S1",
            "This bucket receives the reports bucket's server access logs; logging its own access would need a "
            "third bucket (a bucket logging to itself loops), for logs of log deliveries.",
        )
        self.bucket = _private_bucket(
            self,
            "Bucket",
            # Only the runs' folders expire: latest/ always holds the last run's report.
            lifecycle_rule=s3.LifecycleRule(
                id="ExpireReports",
                prefix=REPORTS_PREFIX,
                expiration=Duration.days(expire_after_days),
                abort_incomplete_multipart_upload_after=INCOMPLETE_UPLOAD_EXPIRY,
            ),
            access_logs=self.access_logs,
        )

    def report_object_arns(self) -> list[str]:
        """The objects the report Lambda may write: its runs' folders and the latest copy."""
        return [self.bucket.arn_for_objects(f"{prefix}*") for prefix in (REPORTS_PREFIX, LATEST_PREFIX)]
