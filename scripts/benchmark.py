"""`make bench`: the figures the README quotes, measured on this machine.

- AWS API calls per event, cold and warm, counted at botocore's lowest level while the real enforce
  handler runs against moto;
- import time of the handler module against a bare `import boto3` (median of fresh interpreters),
  and of the domain modules the first invocation imports lazily;
- peak memory of an interpreter after those imports;
- the Lambda code asset: what `Code.from_asset("lambdas")` packages, raw and zipped.
"""

from __future__ import annotations

import io
import os
import statistics
import subprocess
import sys
import time
import zipfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "lambdas"), str(ROOT)]
IMPORT_RUNS = 15


def fresh_environment() -> dict[str, str]:
    """A function's environment, for fresh interpreters: a handler module checks its settings when imported."""
    from tests.support import LOCAL_LAMBDA_ENVIRONMENT

    return {
        **os.environ,
        **LOCAL_LAMBDA_ENVIRONMENT,
        "PYTHONPATH": f"{ROOT / 'lambdas'}",
        "POWERTOOLS_TRACE_DISABLED": "1",
    }


def fresh_interpreter_ms(statement: str) -> float:
    """Median wall time of `statement` in fresh interpreters (what a Lambda cold start pays)."""
    code = f"import time; t = time.perf_counter(); {statement}; print((time.perf_counter() - t) * 1000)"
    env = fresh_environment()
    samples = [
        float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout)
        for _ in range(IMPORT_RUNS)
    ]
    return statistics.median(samples)


def peak_rss_mib(statement: str) -> float:
    code = f"{statement}; import resource; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    env = fresh_environment()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    return int(out) / 1024


def asset_size() -> tuple[int, int, int]:
    """Files, bytes and zipped bytes of the functions' code asset, bundled as the stack bundles it (lambdas/ and
    the packages it carries, Jinja2 and MarkupSafe)."""
    import tempfile

    from stacks.constructs.governed_function import bundle_function_code

    buffer = io.BytesIO()
    files = raw = 0
    with tempfile.TemporaryDirectory() as directory, zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        bundled = Path(directory)
        bundle_function_code(bundled)
        for path in sorted(bundled.rglob("*")):
            if path.is_dir():
                continue
            files += 1
            raw += path.stat().st_size
            archive.write(path, path.relative_to(bundled))
    return files, raw, len(buffer.getvalue())


def api_calls_per_event() -> list[tuple[str, str]]:
    """(scenario, calls) rows, from the real handler on moto."""
    import contextlib

    import boto3
    from moto import mock_aws

    from ami_governance.models.policy import load_policy_file
    from tests.support import (
        LOCAL_LAMBDA_ENVIRONMENT,
        FakeLambdaContext,
        create_home_resources,
        create_image_event,
        recording_api_calls,
        state_event,
        tags_event,
    )

    os.environ.update(LOCAL_LAMBDA_ENVIRONMENT, POWERTOOLS_LOG_LEVEL="ERROR")
    rows: list[tuple[str, str]] = []
    with mock_aws():
        resources = create_home_resources(load_policy_file(ROOT / "governance-policy.yaml").model_dump_json())
        os.environ["NOTIFICATION_TOPIC_ARN"] = resources.topic_arn
        from handlers.enforce import handler

        ec2 = boto3.client("ec2")
        instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]

        def create_event(name: str, tags: dict[str, str]) -> dict[str, Any]:
            specs = [{"ResourceType": "image", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]
            image_id = ec2.create_image(InstanceId=instance, Name=name, TagSpecifications=specs if tags else [])
            return create_image_event(image_id["ImageId"], instance, name, tags)

        def measure(scenario: str, make: Callable[[], dict[str, Any]]) -> dict[str, Any]:
            event = make()
            with recording_api_calls() as api, contextlib.redirect_stdout(io.StringIO()):
                handler(event, FakeLambdaContext())
            counts = api.by_operation()
            rows.append((scenario, f"{len(api.calls)} ({', '.join(f'{k} {v}' for k, v in counts.items()) or '-'})"))
            return event

        good = {"Owner": "payments-team", "Environment": "prod", "CostCenter": "CC-1042"}
        measure("CreateImage, cold (first invocation)", lambda: create_event("payments-api-al2023-1.0.0", good))
        compliant = measure("CreateImage, compliant, warm", lambda: create_event("payments-api-al2023-1.0.1", good))
        bad = measure("CreateImage, non-compliant, warm", lambda: create_event("scratch image", {}))
        measure("Same CreateImage again (duplicate delivery)", lambda: bad)
        available = state_event(compliant["detail"]["responseElements"]["imageId"])
        measure("AMI State Change available (1 snapshot)", lambda: available)
        bad_id = bad["detail"]["responseElements"]["imageId"]
        ec2.create_tags(Resources=[bad_id], Tags=[{"Key": k, "Value": v} for k, v in good.items()])
        fix = tags_event("create_tags_mixed_resources", [bad_id], good)
        measure("CreateTags fixing a non-compliant AMI", lambda: fix)
        echo = tags_event("create_tags_mixed_resources", [bad_id], {"ami-governance:compliance": "x"})
        measure("CreateTags echo of our own verdict tags", lambda: echo)
    return rows


CLEANUP_SIZES = (1, 10, 200, 450)


def cleanup_calls() -> list[tuple[str, str]]:
    """(scenario, calls) rows for cleaning up one deregistered AMI with N recorded snapshots, delete mode."""
    import contextlib
    import json
    import math

    import boto3
    from moto import mock_aws

    from ami_governance.models.policy import load_policy_file
    from ami_governance.services import wiring
    from emulator import moto_extensions
    from tests.support import (
        INVENTORY_TABLE,
        LOCAL_LAMBDA_ENVIRONMENT,
        FakeLambdaContext,
        create_home_resources,
        load_event,
        recording_api_calls,
    )

    moto_extensions.apply()
    os.environ.update(LOCAL_LAMBDA_ENVIRONMENT, POWERTOOLS_LOG_LEVEL="ERROR")
    document = load_policy_file(ROOT / "governance-policy.yaml").model_dump(mode="json")
    document["cleanup"].update(dry_run=False, max_snapshots_per_event=1000)
    rows = []
    for size in CLEANUP_SIZES:
        with mock_aws():
            wiring.reset()
            os.environ["NOTIFICATION_TOPIC_ARN"] = create_home_resources(json.dumps(document)).topic_arn
            ec2 = boto3.client("ec2", region_name="us-east-1")
            snapshots = []
            for _ in range(size):
                volume = ec2.create_volume(Size=8, AvailabilityZone="us-east-1a")["VolumeId"]
                snapshots.append(ec2.create_snapshot(VolumeId=volume)["SnapshotId"])
            image_id = "ami-0bbbbbbbbbbbbbbb1"
            boto3.client("dynamodb", region_name="us-east-1").put_item(
                TableName=INVENTORY_TABLE,
                Item={"image_id": {"S": image_id}, "region": {"S": "us-east-1"},
                      "snapshot_ids": {"L": [{"S": s} for s in snapshots]}},
            )  # fmt: skip
            from handlers.cleanup import handler

            def deregistered(ami: str) -> dict[str, Any]:
                event = load_event("deregister_image")
                event["account"] = "123456789012"
                event["detail"]["requestParameters"]["imageId"] = ami
                return event

            with contextlib.redirect_stdout(io.StringIO()):
                handler(deregistered("ami-0ccccccccccccccc1"), FakeLambdaContext())  # warm: policy cached
            event = deregistered(image_id)
            with recording_api_calls() as api, contextlib.redirect_stdout(io.StringIO()):
                handler(event, FakeLambdaContext())
            ec2_calls = api.operations("ec2")
            describes = [op for op in ec2_calls if op.startswith("Describe")]
            others = [f"{name} {n}" for name, n in api.by_operation().items() if not name.startswith("ec2:")]
            rows.append(
                (
                    f"clean up an AMI with {size} snapshot{'s' if size > 1 else ''}",
                    f"{ec2_calls.count('DeleteSnapshot')} DeleteSnapshot + {len(describes)} describes "
                    f"(target <= {math.ceil(size / 200) + 2}) + {ec2_calls.count('CreateTags')} CreateTags; "
                    f"{', '.join(others)}",
                )
            )
            wiring.reset()
    return rows


REPLICATION_REGIONS = ("eu-west-1", "ap-southeast-2", "eu-central-1", "us-west-2")


def replication_calls() -> list[tuple[str, str]]:
    """(scenario, calls) rows for one approval replicated to R regions, each replica shared with one account:
    the approval event, the copy worker's batch, and the R replica `available` events; warm containers."""
    import contextlib

    from emulator import moto_extensions
    from tests.support import LOCAL_LAMBDA_ENVIRONMENT

    moto_extensions.apply()
    os.environ.update(LOCAL_LAMBDA_ENVIRONMENT, POWERTOOLS_LOG_LEVEL="ERROR")
    rows = []
    for count in (1, 2, 4):
        with contextlib.redirect_stdout(io.StringIO()):
            phases = _replication_phases(list(REPLICATION_REGIONS[:count]))
        total: Counter[str] = Counter()
        for calls in phases.values():
            total += calls
        rows.append(
            (
                f"approve an AMI for {count} region{'s' if count > 1 else ''}",
                f"{total['ec2:CopyImage']} CopyImage + {total['ec2:CreateTags']} CreateTags + "
                f"{total['ec2:DescribeImages']} DescribeImages + {total['ec2:ModifyImageAttribute']} "
                "ModifyImageAttribute; "
                + "; ".join(f"{phase}: {sum(calls.values())}" for phase, calls in phases.items())
                + "; other: "
                + ", ".join(f"{op} {n}" for op, n in sorted(total.items()) if not op.startswith("ec2:")),
            )
        )
    return rows


def _replication_phases(regions: list[str]) -> dict[str, Counter[str]]:
    """Replicate two approved AMIs on moto (the first warms the containers) and count the second's calls."""
    import json

    import boto3
    from moto import mock_aws

    from ami_governance.models.policy import load_policy_file
    from ami_governance.services import wiring
    from tests.support import create_home_resources

    document = load_policy_file(ROOT / "governance-policy.yaml").model_dump(mode="json")
    document["governed_regions"] = ["us-east-1", *regions]
    document["replication"] = {"regions": regions, "share_with": {"accounts": ["210987654321"]}}
    with mock_aws():
        wiring.reset()
        os.environ["NOTIFICATION_TOPIC_ARN"] = create_home_resources(json.dumps(document)).topic_arn
        queue_url = boto3.client("sqs", region_name="us-east-1").create_queue(QueueName="copy-jobs")["QueueUrl"]
        os.environ["COPY_QUEUE_URL"] = queue_url
        _replicate_fully(_approved_image_event(), regions, queue_url)
        phases = _replicate_fully(_approved_image_event(), regions, queue_url)
        wiring.reset()
    return phases


def _approved_image_event() -> dict[str, Any]:
    """A compliant AMI on moto, approved by AmiApprover: the CreateTags event."""
    import boto3

    from tests.support import MOTO_ACCOUNT, load_event

    ec2 = boto3.client("ec2", region_name="us-east-1")
    instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"][0]
    image_id = ec2.create_image(InstanceId=instance["InstanceId"], Name="payments-api-al2023-1.4.0")["ImageId"]
    ec2.create_tags(
        Resources=[image_id],
        Tags=[{"Key": "ami-governance:compliance", "Value": "compliant"},
              {"Key": "ami-governance:approved", "Value": "true"}],
    )  # fmt: skip
    event = load_event("create_tags_approval")
    event["account"] = MOTO_ACCOUNT
    event["detail"]["requestParameters"]["resourcesSet"]["items"] = [{"resourceId": image_id}]
    issuer = event["detail"]["userIdentity"]["sessionContext"]["sessionIssuer"]
    issuer["arn"] = f"arn:aws:iam::{MOTO_ACCOUNT}:role/AmiApprover"
    return event


def _replicate_fully(approval: dict[str, Any], regions: list[str], queue_url: str) -> dict[str, Counter[str]]:
    import boto3

    from handlers.copy import handler as copy
    from handlers.replicate import handler as replicate
    from tests.support import (
        MOTO_ACCOUNT,
        FakeLambdaContext,
        load_event,
        receive_as_sqs_event_records,
        recording_api_calls,
    )

    sqs = boto3.client("sqs", region_name="us-east-1")
    phases: dict[str, Counter[str]] = {}
    with recording_api_calls() as api:
        replicate(approval, FakeLambdaContext())
    phases["approval"] = api.by_operation()
    records = receive_as_sqs_event_records(sqs, queue_url)
    with recording_api_calls() as api:
        copy({"Records": records}, FakeLambdaContext())
    phases["copy batch"] = api.by_operation()
    for record in records:
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=record["receiptHandle"])
    source = approval["detail"]["requestParameters"]["resourcesSet"]["items"][0]["resourceId"]
    settled: Counter[str] = Counter()
    for region in regions:
        [replica] = boto3.client("ec2", region_name=region).describe_images(
            Owners=["self"], Filters=[{"Name": "source-image-id", "Values": [source]}]
        )["Images"]
        state = load_event("ami_state_available")
        state.update(account=MOTO_ACCOUNT, region=region)
        state["detail"]["ImageId"] = replica["ImageId"]
        with recording_api_calls() as api:
            replicate(state, FakeLambdaContext())
        settled += api.by_operation()
    phases[f"{len(regions)} replica available events"] = settled
    return phases


EMULATOR_BATCH = 40
LATENCY_SAMPLES = 10


def emulator_figures() -> list[tuple[str, str]]:
    """Throughput and latency of the stack on the local emulator (worker warm, default policy)."""
    import boto3

    from emulator.server import GovernanceEmulator

    emulator = GovernanceEmulator(port=0, policy_file=ROOT / "governance-policy.yaml").start()
    try:
        assert emulator.router is not None
        ec2 = boto3.session.Session().client(
            "ec2",
            region_name="us-east-1",
            endpoint_url=emulator.endpoint_url,
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        )
        instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
        ec2.create_image(InstanceId=instance, Name="warm-up")
        emulator.router.drain()

        # Latency: from the CreateImage call returning to the verdict tag being visible through DescribeImages.
        delays = []
        for index in range(LATENCY_SAMPLES):
            image_id = ec2.create_image(InstanceId=instance, Name=f"latency {index}")["ImageId"]
            started = time.perf_counter()
            while not any(
                tag["Key"] == "ami-governance:compliance"
                for tag in ec2.describe_images(ImageIds=[image_id])["Images"][0].get("Tags", [])
            ):
                time.sleep(0.005)
            delays.append((time.perf_counter() - started) * 1000)
            emulator.router.drain()

        # Throughput: a burst of CreateImage calls, then everything their events cause.
        started = time.perf_counter()
        for index in range(EMULATOR_BATCH):
            ec2.create_image(InstanceId=instance, Name=f"burst {index}")
        ran = emulator.router.drain()
        elapsed = time.perf_counter() - started
        invocations = [i for i in ran if i.outcome in ("success", "error")]
        events = len({i.event_id for i in ran})
    finally:
        emulator.stop()
    return [
        ("API call to verdict tag (CreateImage, warm)", f"median {statistics.median(delays):.0f} ms, "
         f"max {max(delays):.0f} ms over {LATENCY_SAMPLES}"),
        (f"burst of {EMULATOR_BATCH} CreateImage calls", f"{events} events, {len(invocations)} Lambda invocations "
         f"in {elapsed:.1f} s: {events / elapsed:.0f} events/s, {len(invocations) / elapsed:.0f} invocations/s"),
    ]  # fmt: skip


def main() -> None:
    boto3_ms = fresh_interpreter_ms("import boto3")
    handler_ms = fresh_interpreter_ms("import boto3, handlers.enforce")
    first_call_ms = fresh_interpreter_ms(
        "import boto3, handlers.enforce, ami_governance.services.wiring, ami_governance.services.enforce"
    )
    traced_ms = fresh_interpreter_ms(
        "import boto3, handlers.enforce, ami_governance.services.wiring, ami_governance.services.enforce; "
        "from aws_lambda_powertools import Tracer; Tracer()"
    )
    boto3_rss = peak_rss_mib("import boto3")
    handler_rss = peak_rss_mib(
        "import boto3, handlers.enforce, ami_governance.services.wiring, ami_governance.services.enforce"
    )
    files, raw, zipped = asset_size()
    calls = api_calls_per_event()
    cleanup = cleanup_calls()
    replication = replication_calls()
    on_emulator = emulator_figures()

    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} cores; medians of {IMPORT_RUNS} fresh interpreters\n")
    print("| measure | value |")
    print("| --- | --- |")
    print(f"| `import boto3` | {boto3_ms:.0f} ms |")
    print(f"| `import handlers.enforce` (boto3 included) | {handler_ms:.0f} ms ({handler_ms / boto3_ms:.2f}x boto3) |")
    print(
        f"| + domain modules loaded by the first invocation | {first_call_ms:.0f} ms "
        f"({first_call_ms / boto3_ms:.2f}x boto3) |"
    )
    print(
        f"| + Powertools Tracer (X-Ray SDK) built by the first invocation | {traced_ms:.0f} ms "
        f"({traced_ms / boto3_ms:.2f}x boto3) |"
    )
    print(f"| peak RSS after `import boto3` | {boto3_rss:.0f} MiB |")
    print(f"| peak RSS after handler + domain imports | {handler_rss:.0f} MiB |")
    sizes = f"{files} files, {raw / 1024:.0f} KiB, {zipped / 1024:.0f} KiB zipped"
    print(f"| Lambda code asset (`lambdas/` + Jinja2, MarkupSafe) | {sizes} |")
    print()
    print("| event | AWS API calls |")
    print("| --- | --- |")
    for scenario, text in calls:
        print(f"| {scenario} | {text} |")
    print()
    print("| snapshot clean-up (delete mode, warm) | AWS API calls |")
    print("| --- | --- |")
    for scenario, text in cleanup:
        print(f"| {scenario} | {text} |")
    print()
    print("| replication (warm; each replica shared with one account) | AWS API calls |")
    print("| --- | --- |")
    for scenario, text in replication:
        print(f"| {scenario} | {text} |")
    print()
    print("| on the local emulator | figure |")
    print("| --- | --- |")
    for scenario, text in on_emulator:
        print(f"| {scenario} | {text} |")


if __name__ == "__main__":
    main()
