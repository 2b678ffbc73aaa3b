"""The governance under injected faults, end to end: `python -m emulator --inject-faults 0.3 --fault-seed 7`.

30 % of the functions' AWS calls fail in their workers (emulator/fault_injection.py: throttling, 5xx, read timeouts,
responses lost after the call was applied). A scenario through the AWS API only (create, tag, approve, deregister),
drained: every event the rules delivered to a function ended `success` or `dead-lettered` (Lambda's retries, then
the function's DLQ), every DLQ that received something is one the template alarms on (AlarmedDeadLetterQueue), and
the end state is consistent: one replica at most per target region, recorded in lineage if made; a copy job not
done yet is still in its queue; the dry-run clean-up deleted nothing; the AMI's verdict tags are whole.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ami_governance.adapters.inventory import plain_item
from tests.e2e.conftest import HOME, OTHER, PREFIX, RunningEmulator, start_emulator, stop_emulator

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

ACCOUNT = "123456789012"
RATE, SEED = "0.3", "7"
GOOD_TAGS = {"Owner": "team-payments", "Environment": "prod", "CostCenter": "CC-1234"}
NAME = "payments-api-al2023-2.0.0"


@pytest.fixture(scope="module")
def faulty(cloud_assembly: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    running = start_emulator(
        cloud_assembly,
        tmp_path_factory.mktemp("faults"),
        "--principal",
        f"approver=arn:aws:sts::{ACCOUNT}:assumed-role/AmiApprover/lead",
        "--inject-faults",
        RATE,
        "--fault-seed",
        SEED,
    )
    yield running
    stop_emulator(running)


def alarmed_queues(cloud_assembly: Path) -> set[str]:
    """`<stack>-<logical id>` (the emulator's queue names) of every queue an alarm in the templates watches."""
    alarmed: set[str] = set()
    for template_file in cloud_assembly.glob("*.template.json"):
        stack = template_file.name.removesuffix(".template.json")
        resources = json.loads(template_file.read_text())["Resources"]
        for resource in resources.values():
            if resource["Type"] != "AWS::CloudWatch::Alarm":
                continue
            for dimension in resource["Properties"].get("Dimensions", []):
                value = dimension.get("Value")
                if dimension["Name"] == "QueueName" and isinstance(value, dict) and "Fn::GetAtt" in value:
                    alarmed.add(f"{stack}-{value['Fn::GetAtt'][0]}")
    return alarmed


def fault_figures(running: RunningEmulator) -> dict[str, Any]:
    """Each worker's running totals, from the last line the bootstrap wrote in its log."""
    calls, injected = 0, Counter[str]()
    for function in running.functions():
        log = Path(function["log"])
        if not log.exists():
            continue
        lines = log.read_text().splitlines()
        totals = [json.loads(line)["fault_injection"] for line in lines if line.startswith('{"fault_injection"')]
        if totals:
            calls += totals[-1]["calls"]
            injected.update(totals[-1]["by_kind"])
    return {"calls": calls, "injected": sum(injected.values()), "by_kind": dict(injected)}


def drain_until_quiet(running: RunningEmulator, rounds: int = 4) -> list[dict[str, Any]]:
    ran: list[dict[str, Any]] = []
    for _ in range(rounds):
        batch = running.drain()
        ran += batch
        if not batch:
            break
    return ran


def test_under_faults_every_event_ends_done_or_dead_lettered_in_an_alarmed_queue(
    faulty: RunningEmulator, cloud_assembly: Path
) -> None:
    ec2 = faulty.client("ec2")
    # Given an AMI created with its tags, then approved by an approver, then deregistered
    instance = faulty.launch_instance()
    image_id = ec2.create_image(
        InstanceId=instance,
        Name=NAME,
        TagSpecifications=[{"ResourceType": "image", "Tags": [{"Key": k, "Value": v} for k, v in GOOD_TAGS.items()]}],
    )["ImageId"]
    ran = drain_until_quiet(faulty)
    faulty.client("ec2", access_key="approver").create_tags(
        Resources=[image_id], Tags=[{"Key": f"{PREFIX}approved", "Value": "true"}]
    )
    ran += drain_until_quiet(faulty)
    snapshots = [
        m["Ebs"]["SnapshotId"]
        for m in ec2.describe_images(ImageIds=[image_id])["Images"][0]["BlockDeviceMappings"]
        if "Ebs" in m
    ]
    time.sleep(0.1)
    ec2.deregister_image(ImageId=image_id)
    ran += drain_until_quiet(faulty)

    # Then every event a rule delivered to a function ended done or dead-lettered, none dropped or lost
    final: dict[tuple[str, str, str], str] = {}
    for entry in ran:
        if entry["detail_type"] == "SQS message batch" or entry["rule"].startswith("lambda:Invoke"):
            continue
        final[(entry["event_id"], entry["rule"], entry["target"])] = entry["outcome"]
    outcomes = Counter(final.values())
    summary = [(e["event_id"], e["detail_type"], e["target"], e["attempt"], e["outcome"], e["error"]) for e in ran]
    print("\n".join(map(str, summary)))
    assert set(outcomes) <= {"success", "dead-lettered", "delivered"}, summary
    assert outcomes["success"] > 0
    figures = fault_figures(faulty)
    assert figures["injected"] > 0

    # And every DLQ holding messages is one the template alarms on
    sqs = faulty.client("sqs")
    alarmed = alarmed_queues(cloud_assembly)
    holding = {}
    for url in sqs.list_queues().get("QueueUrls", []):
        count = int(
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"][
                "ApproximateNumberOfMessages"
            ]
        )
        name = url.rsplit("/", 1)[-1]
        if count and ("DeadLetter" in name or "Dead" in name):
            holding[name] = count
    assert set(holding) <= alarmed, (holding, alarmed)
    assert sum(holding.values()) >= outcomes["dead-lettered"]

    # And the end state is consistent: nothing the dry-run clean-up keeps was deleted, at most one replica made,
    # and a replica made is in the source's lineage
    existing = {s["SnapshotId"] for s in ec2.describe_snapshots(SnapshotIds=snapshots)["Snapshots"]}
    assert existing == set(snapshots)
    replicas = faulty.client("ec2", OTHER).describe_images(
        Owners=["self"], Filters=[{"Name": "source-image-id", "Values": [image_id]}]
    )["Images"]
    assert len(replicas) <= 1
    table = next(
        t for t in faulty.client("dynamodb").list_tables()["TableNames"] if "Inventory" in t or "inventory" in t
    )
    item = faulty.client("dynamodb").get_item(TableName=table, Key={"image_id": {"S": image_id}, "region": {"S": HOME}})
    record = plain_item(item.get("Item", {}))
    if replicas:
        assert record["replicas"][OTHER]["image_id"] == replicas[0]["ImageId"]
    print(f"\nfaults e2e (rate {RATE}, seed {SEED}): {figures}; events: {dict(outcomes)}; dead letters: {holding}")
