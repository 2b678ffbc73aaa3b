"""The report's documents in the reports bucket: one folder per run, and a `latest/` copy.

    reports/<YYYY-MM-DD>/<run-id>/report.{json,csv,html}   (the date of generated_at, UTC)
    latest/report.{json,csv,html}

IAM: s3:PutObject on `arn:aws:s3:::<bucket>/reports/*` and `arn:aws:s3:::<bucket>/latest/*` (docs/report-apis.md).
No ServerSideEncryption is sent: the bucket's default encryption applies to every object put without one, so the
bucket alone decides (and a bucket using a KMS key needs kms:GenerateDataKey on it for the role).
"""

from __future__ import annotations

import re
from datetime import UTC
from typing import TYPE_CHECKING

from ami_governance.adapters.clients import client
from ami_governance.models.findings import Report
from ami_governance.outputs.render import render_csv, render_html, render_json

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

CONTENT_TYPES = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "html": "text/html; charset=utf-8",
}
# A run id becomes one path segment: no "/" (another folder), no ".." and nothing S3 would need to escape.
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def report_keys(report: Report) -> dict[str, str]:
    """format -> key of the run's documents, then "latest/<format>" -> key of the latest copies."""
    if not _RUN_ID.fullmatch(report.run_id):
        raise ValueError(f"run id {report.run_id!r} cannot be an S3 key segment: letters, digits, '.', '_', '-'")
    folder = f"reports/{report.generated_at.astimezone(UTC):%Y-%m-%d}/{report.run_id}"
    keys = {fmt: f"{folder}/report.{fmt}" for fmt in CONTENT_TYPES}
    keys.update({f"latest/{fmt}": f"latest/report.{fmt}" for fmt in CONTENT_TYPES})
    return keys


class ReportStore:
    def __init__(self, bucket: str, region: str, s3: S3Client | None = None) -> None:
        self.bucket = bucket
        self._s3 = s3 if s3 is not None else client("s3", region)

    def publish(self, report: Report) -> dict[str, str]:
        """Puts the three documents of the run, then the latest copies; returns their keys (report_keys).

        The run's folder first: `latest/` then only ever points at a run whose documents are all in place. A
        failed put raises (the run is not reported as published)."""
        keys = report_keys(report)
        bodies = {
            "json": render_json(report).encode("utf-8"),
            "csv": render_csv(report).encode("utf-8"),
            "html": render_html(report).encode("utf-8"),
        }
        metadata = {"run-id": report.run_id, "schema-version": str(report.schema_version)}
        for fmt, body in bodies.items():
            self._s3.put_object(
                Bucket=self.bucket, Key=keys[fmt], Body=body, ContentType=CONTENT_TYPES[fmt], Metadata=metadata
            )
        for fmt, body in bodies.items():
            self._s3.put_object(
                Bucket=self.bucket,
                Key=keys[f"latest/{fmt}"],
                Body=body,
                ContentType=CONTENT_TYPES[fmt],
                Metadata=metadata,
                # Overwritten every run: a browser or CDN in front of the bucket must not serve yesterday's.
                CacheControl="no-cache",
            )
        return keys
