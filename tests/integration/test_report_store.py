"""ReportStore on moto: a run's three documents under reports/<date>/<run-id>/ and latest/, each with its content
type and the bucket's default encryption, exactly six PutObject calls, latest/ moving to the next run, and a
run id that would leave the run's folder refused before anything is written."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import boto3
import jsonschema
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from ami_governance.adapters.clients import reset_clients
from ami_governance.adapters.report_store import ReportStore, report_keys
from ami_governance.adapters.scan import RegionScanner
from ami_governance.models.findings import LaunchPermissions, VerifiedBy
from ami_governance.models.policy import load_policy_file
from ami_governance.outputs.render import SCHEMA_FILE, render_csv, render_html, render_json
from ami_governance.services.report import ReportService, new_run_id
from emulator import moto_extensions
from tests.conftest import POLICY_FILE
from tests.integration.conftest import ACCOUNT, PUBLIC_AMI
from tests.report_samples import RUN_ID, sample_report

REGION = "us-east-1"
BUCKET = "ami-governance-reports-123456789012"
DAY = f"reports/2026-12-01/{RUN_ID}"

moto_extensions.apply()


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        reset_clients()
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=BUCKET)
        client.put_bucket_encryption(
            Bucket=BUCKET,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
        )
        yield client
        reset_clients()


def all_keys(s3: Any) -> list[str]:
    return sorted(item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def counting(s3: Any) -> Counter[str]:
    calls: Counter[str] = Counter()
    s3.meta.events.register("before-call.s3.*", lambda model, **_: calls.update([model.name]))
    return calls


def test_publish_puts_the_run_and_the_latest_copies(s3: Any) -> None:
    report = sample_report()
    calls = counting(s3)

    keys = ReportStore(BUCKET, REGION, s3=s3).publish(report)

    assert keys == {
        "json": f"{DAY}/report.json",
        "csv": f"{DAY}/report.csv",
        "html": f"{DAY}/report.html",
        "latest/json": "latest/report.json",
        "latest/csv": "latest/report.csv",
        "latest/html": "latest/report.html",
    }
    assert calls == Counter({"PutObject": 6})
    assert all_keys(s3) == sorted(keys.values())
    expected = {"json": render_json(report), "csv": render_csv(report), "html": render_html(report)}
    content_types = {"json": "application/json", "csv": "text/csv; charset=utf-8", "html": "text/html; charset=utf-8"}
    for fmt, key in keys.items():
        kind = fmt.removeprefix("latest/")
        stored = s3.get_object(Bucket=BUCKET, Key=key)
        assert stored["Body"].read().decode("utf-8") == expected[kind], key
        assert stored["ContentType"] == content_types[kind], key
        assert stored["ServerSideEncryption"] == "AES256", key  # the bucket's default: nothing sent
        assert stored["Metadata"] == {"run-id": RUN_ID, "schema-version": "1"}, key
        assert stored.get("CacheControl") == ("no-cache" if fmt.startswith("latest/") else None), key


def test_the_next_run_gets_its_own_folder_and_moves_latest(s3: Any) -> None:
    store = ReportStore(BUCKET, REGION, s3=s3)
    first = sample_report()
    second = replace(first, run_id="20261202T060009Z-77b0e1", generated_at=datetime(2026, 12, 2, 6, 0, 9, tzinfo=UTC))
    store.publish(first)

    keys = store.publish(replace(second, findings=second.findings[:1]))

    assert keys["json"] == "reports/2026-12-02/20261202T060009Z-77b0e1/report.json"
    assert len(all_keys(s3)) == 9
    latest = s3.get_object(Bucket=BUCKET, Key="latest/report.json")["Body"].read().decode("utf-8")
    assert '"run_id": "20261202T060009Z-77b0e1"' in latest
    assert '"findings": 1,' in latest
    earlier = s3.get_object(Bucket=BUCKET, Key=f"{DAY}/report.json")["Body"].read().decode("utf-8")
    assert earlier == render_json(first)


@pytest.mark.parametrize("run_id", ["../latest", "a/b", "", ".hidden", "run id", "x" * 129])
def test_a_run_id_that_is_not_one_key_segment_is_refused(s3: Any, run_id: str) -> None:
    calls = counting(s3)

    with pytest.raises(ValueError, match="cannot be an S3 key segment"):
        ReportStore(BUCKET, REGION, s3=s3).publish(replace(sample_report(), run_id=run_id))

    assert calls == Counter()
    assert all_keys(s3) == []


def test_a_missing_bucket_raises_and_latest_is_not_written(s3: Any) -> None:
    with pytest.raises(ClientError) as failure:
        ReportStore("no-such-reports-bucket", REGION, s3=s3).publish(sample_report())

    assert failure.value.response["Error"]["Code"] == "NoSuchBucket"


def test_the_date_is_generated_at_in_utc() -> None:
    late = replace(sample_report(), generated_at=datetime.fromisoformat("2026-12-01T23:30:00-05:00"))

    assert report_keys(late)["csv"] == f"reports/2026-12-02/{RUN_ID}/report.csv"


def test_the_store_builds_its_client_for_the_region() -> None:
    with mock_aws():
        reset_clients()
        store = ReportStore(BUCKET, "eu-west-1")
        assert store._s3.meta.region_name == "eu-west-1"
        reset_clients()


def test_the_services_run_ids_are_key_segments() -> None:
    run_id = new_run_id(datetime(2026, 12, 1, 6, 0, 0, tzinfo=UTC))

    assert report_keys(replace(sample_report(), run_id=run_id))["json"] == f"reports/2026-12-01/{run_id}/report.json"


class _NoInventory:
    def records(self) -> dict[str, list[Any]]:
        return {}

    def record_launch_permissions(self, image_id: str, region: str, permissions: Any) -> None:
        pass


class _Unshared:
    def read(self, image_ids: Any) -> dict[str, LaunchPermissions]:
        return {image_id: LaunchPermissions(image_id, VerifiedBy.DESCRIBE) for image_id in image_ids}


def test_a_report_of_the_service_on_moto_is_published_valid(s3: Any) -> None:
    """The real scan and findings over a small estate (a misnamed AMI, an orphaned snapshot, a region that
    breaks): what lands in S3 is valid against the schema and says the same in the three formats."""
    now = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
    ec2 = boto3.client("ec2", region_name=REGION)
    instance = ec2.run_instances(ImageId=PUBLIC_AMI, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    ec2.create_image(InstanceId=instance, Name="not the naming convention")
    orphan = ec2.create_image(InstanceId=instance, Name="app-al2023-1.0.0")["ImageId"]
    ec2.deregister_image(ImageId=orphan)

    def scanner_for(region: str) -> RegionScanner:
        if region == "eu-west-1":
            raise RuntimeError("no route to eu-west-1")
        return RegionScanner(ACCOUNT, region, now=lambda: now)

    report = ReportService(
        policy=load_policy_file(POLICY_FILE),
        account_id=ACCOUNT,
        scanner_for=scanner_for,
        permissions_for=lambda region: _Unshared(),
        inventory=_NoInventory(),
        now=lambda: now,
    ).run([REGION, "eu-west-1"])

    keys = ReportStore(BUCKET, REGION, s3=s3).publish(report)

    document = json.loads(s3.get_object(Bucket=BUCKET, Key=keys["json"])["Body"].read())
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert sorted(e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(document)) == []
    kinds = Counter(finding["kind"] for finding in document["findings"])
    assert kinds["non-compliant"] >= 1, kinds
    assert kinds["orphaned-snapshot"] >= 1, kinds
    assert document["summary"]["regions_incomplete"] == 1
    assert document["regions"][1]["errors"] == {"scan": "RuntimeError: no route to eu-west-1"}
    rows = list(csv.reader(io.StringIO(s3.get_object(Bucket=BUCKET, Key=keys["csv"])["Body"].read().decode())))
    assert [row[5] for row in rows[1:]] == [finding["resource_id"] for finding in document["findings"]]
    html = s3.get_object(Bucket=BUCKET, Key=keys["html"])["Body"].read().decode()
    assert f'data-total="findings" data-value="{len(document["findings"])}"' in html
    assert f'data-total="monthly-cost" data-value="{document["summary"]["monthly_cost"]}"' in html
