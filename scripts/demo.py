"""`make demo`: a scripted tour of AMI governance on the local emulator, through plain boto3 calls.

The stacks are synthesized from app.py and the repository's policy and deployed into a local AWS (moto); the
enforce Lambda runs in a worker process of its own, fed by emulated CloudTrail and AMI state-change events
routed through the stacks' own EventBridge rules. The tour creates an instance, a compliant and a non-compliant
AMI, fixes the second one's tags, approves the first for replication (once as someone who may not, once as an
approver), deregisters it, and prints what the governance did and why.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Where the demo puts the report's HTML page it downloads from the emulator's S3.
REPORT_DIR = ROOT / "build" / "demo-report"
sys.path[:0] = [str(ROOT / "lambdas"), str(ROOT)]

import boto3  # noqa: E402
from boto3.dynamodb.types import TypeDeserializer  # noqa: E402

from emulator.inbox import read_notices, subscribe_inbox  # noqa: E402
from emulator.server import GovernanceEmulator  # noqa: E402

INDENT = "    "
GOOD_TAGS = {"Owner": "payments-team", "Environment": "prod", "CostCenter": "CC-1042"}


def say(text: str = "", level: int = 0) -> None:
    print(INDENT * level + text, flush=True)


def timeline(ran: list[dict[str, Any]]) -> None:
    """What the governance did, one line per Lambda invocation, with what it decided for each AMI."""
    for invocation in ran:
        if invocation["outcome"] not in ("success", "error", "dead-lettered"):
            continue
        say(f"→ {invocation['description']}  ({invocation['duration_ms']:.0f} ms)", 1)
        if invocation["error"]:
            say(f"{invocation['outcome']}: {invocation['error']}", 2)
            continue
        result = invocation["result"] or {}
        if "batchItemFailures" in result:
            failed = len(result["batchItemFailures"])
            say(f"copy jobs done{f', {failed} to retry later' if failed else ''}", 2)
            continue
        if result.get("reason"):
            say(f"{result['status']}: {result['reason']}", 2)
        for image in result.get("images", []):
            image_lines(image)


def image_lines(image: dict[str, Any]) -> None:
    """One AMI's part of an invocation's answer: an approval, a snapshot clean-up or a verdict."""
    if "approver" in image:
        reason = f": {image['reason']}" if image["reason"] else ""
        say(f"{image['image_id']}: approval {image['result']}{reason}", 2)
        if image["queued"]:
            say(f"copy jobs queued for {', '.join(image['queued'])}", 3)
        return
    if "snapshots" in image:
        say(f"{image['image_id']}: snapshot clean-up {image['result']}", 2)
        for snapshot in image["snapshots"]:
            say(f"{snapshot['snapshot_id']} ({snapshot['size_gb']} GB): {snapshot['outcome']}", 3)
        return
    verdict = image["compliance"] or image["result"]
    line = f"{image['image_id']}: {verdict}"
    if image["result"] == "provisional":
        line += " (provisional: the notice waits for the CloudTrail event that names the creator)"
    say(line, 2)
    details = (
        ("violations", f"violations: {', '.join(image['violations'])}"),
        ("tags_written", f"tags written: {len(image['tags_written'])}"),
        ("notified", "SNS notice published"),
        ("remediation", f"remediation: {image['remediation']}"),
    )
    for key, text in details:
        if image[key]:
            say(text, 3)


class Tour:
    def __init__(self, emulator: GovernanceEmulator) -> None:
        self.emulator = emulator
        self.ec2 = self.client("ec2")
        self.sqs = self.client("sqs")

    def client(self, service: str, region: str = "us-east-1", access_key: str = "jdoe") -> Any:
        return boto3.session.Session().client(
            service,
            region_name=region,
            endpoint_url=self.emulator.endpoint_url,
            aws_access_key_id=access_key,
            aws_secret_access_key="local",
        )

    def subscribe_inbox(self) -> str:
        sns = self.client("sns")
        [topic] = [t["TopicArn"] for t in sns.list_topics()["Topics"] if "Notifications" in t["TopicArn"]]
        return subscribe_inbox(sns, self.sqs, topic, "demo-inbox")

    def notices(self, inbox: str) -> None:
        for notice in read_notices(inbox, self.sqs):
            say(f"✉ {notice['subject']}", 1)
            if "estimated_monthly_saving_usd_upper_bound" in notice["body"]:
                saving = notice["body"]["estimated_monthly_saving_usd_upper_bound"]
                say(f"estimated saving: at most ${saving:.2f} a month (snapshots are incremental)", 2)
            for fix in notice["body"].get("how_to_fix", []):
                say(f"- {fix}", 2)

    def drain(self) -> list[dict[str, Any]]:
        assert self.emulator.router is not None
        return [asdict(invocation) for invocation in self.emulator.router.drain()]

    def approve(self, image_id: str, inbox: str) -> None:
        approval = [{"Key": "ami-governance:approved", "Value": "true"}]
        self.ec2.create_tags(Resources=[image_id], Tags=approval)
        timeline(self.drain())
        self.notices(inbox)
        approver = "arn:aws:sts::123456789012:assumed-role/AmiApprover/lead"
        self.emulator.principals.add("lead", approver)
        say(f"(the access key 'lead' signs as {approver}, which the policy's approvers match)", 1)
        self.client("ec2", access_key="lead").create_tags(Resources=[image_id], Tags=approval)
        timeline(self.drain())
        self.notices(inbox)
        self.show_replicas(image_id)

    def show_replicas(self, source: str) -> None:
        answer = {t["Key"]: t["Value"] for t in self.ec2.describe_images(ImageIds=[source])["Images"][0]["Tags"]}
        say(f"{source}: ami-governance:approval = {answer.get('ami-governance:approval')}", 1)
        for region in ("eu-west-1",):
            copies = self.client("ec2", region).describe_images(
                Owners=["self"], Filters=[{"Name": "source-image-id", "Values": [source]}]
            )["Images"]
            for copy in copies:
                tags = {t["Key"]: t["Value"] for t in copy.get("Tags", [])}
                say(f"replica {copy['ImageId']} in {region}: state={copy['State']}, "
                    f"compliance={tags.get('ami-governance:compliance')}, "
                    f"source-image={tags.get('ami-governance:source-image')}", 2)  # fmt: skip

    def report(self, function_name: str, bucket: str) -> None:
        """Invoke the report Lambda as an operator would (`aws lambda invoke`), then read what it published."""
        answer = self.client("lambda").invoke(FunctionName=function_name, Payload=b"{}")
        result = json.loads(answer["Payload"].read())
        if answer.get("FunctionError"):
            say(f"the report failed: {result.get('errorType')}: {result.get('errorMessage')}", 1)
            return
        timeline(self.drain())
        s3 = self.client("s3")
        document = json.loads(s3.get_object(Bucket=bucket, Key=result["keys"]["json"])["Body"].read())
        summary = document["summary"]
        say(f"run {result['run_id']}: {summary['findings']} findings, up to ${summary['monthly_cost']:.2f} a month; "
            f"{summary['regions_complete']} of {summary['regions']} regions complete", 1)  # fmt: skip
        for kind, tally in summary["by_kind"].items():
            if tally["count"]:
                say(f"{kind:<18} {tally['count']:>3}   ${tally['monthly_cost']:.2f}/month", 2)
        for finding in document["findings"][:6]:
            say(f"- {finding['kind']} {finding['resource_id']}: {finding['reason']}", 2)
        html = REPORT_DIR / "report.html"
        REPORT_DIR.mkdir(parents=True, exist_ok=True)
        html.write_bytes(s3.get_object(Bucket=bucket, Key=result["keys"]["html"])["Body"].read())
        say(f"s3://{bucket}/{result['keys']['html']} (and latest/); the page, downloaded: {html}", 1)

    def show(self, image_id: str, table: str) -> None:
        image = self.ec2.describe_images(ImageIds=[image_id])["Images"][0]
        say(f"{image_id}  {image['Name']!r}  state={image['State']}", 1)
        for tag in sorted(image.get("Tags", []), key=lambda t: t["Key"]):
            say(f"{tag['Key']} = {tag['Value']}", 2)
        stored = self.client("dynamodb").get_item(
            TableName=table, Key={"image_id": {"S": image_id}, "region": {"S": "us-east-1"}}
        )["Item"]
        item = {key: TypeDeserializer().deserialize(value) for key, value in stored.items()}
        say(f"inventory: compliance={item['compliance']}, snapshots=[{', '.join(item['snapshot_ids'])}]", 2)


def report_now(tour: Tour, emulator: GovernanceEmulator, inbox: str) -> None:
    assert emulator.functions is not None
    [function] = [f for f in emulator.functions.all() if f.handler == "handlers.report.handler"]
    tour.report(function.name, function.environment["REPORTS_BUCKET_NAME"])
    tour.notices(inbox)


def main() -> None:
    started = time.perf_counter()
    say("Synthesizing the CDK app and deploying its stacks into a local AWS…")
    emulator = GovernanceEmulator(port=0, policy_file=ROOT / "governance-policy.yaml", enforce_iam=True).start()
    try:
        assert emulator.functions is not None
        [function] = [f for f in emulator.functions.all() if f.handler == "handlers.enforce.handler"]
        table = function.environment["INVENTORY_TABLE_NAME"]
        say(f"Local AWS at {emulator.endpoint_url}: stacks {', '.join(s.name for s in emulator.stacks)}")
        say(f"({time.perf_counter() - started:.1f} s). Calls below are plain boto3 calls signed as 'jdoe'.")
        tour = Tour(emulator)
        inbox = tour.subscribe_inbox()

        say()
        say("1. Launch an instance and create two AMIs from it")
        instance_id = tour.ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"][0][
            "InstanceId"
        ]
        good = tour.ec2.create_image(
            InstanceId=instance_id,
            Name="payments-api-al2023-1.4.0",
            TagSpecifications=[
                {"ResourceType": "image", "Tags": [{"Key": k, "Value": v} for k, v in GOOD_TAGS.items()]}
            ],
        )["ImageId"]
        bad = tour.ec2.create_image(
            InstanceId=instance_id,
            Name="payments-api-al2023-1.5.0",
            NoReboot=True,
            TagSpecifications=[{"ResourceType": "image", "Tags": [{"Key": "Environment", "Value": "qa"}]}],
        )["ImageId"]
        say(f"{good} 'payments-api-al2023-1.4.0' tagged Owner, Environment=prod, CostCenter", 1)
        say(f"{bad} 'payments-api-al2023-1.5.0' tagged Environment=qa only, made with --no-reboot", 1)
        timeline(tour.drain())
        tour.notices(inbox)

        say()
        say(f"2. The owner fixes the tags of {bad}")
        fix = {"Owner": "payments-team", "Environment": "dev", "CostCenter": "CC-1042"}
        tour.ec2.create_tags(Resources=[bad], Tags=[{"Key": k, "Value": v} for k, v in fix.items()])
        timeline(tour.drain())
        tour.notices(inbox)

        say()
        say("3. Where things stand (DescribeImages and the inventory table)")
        tour.show(good, table)
        tour.show(bad, table)

        say()
        say(f"4. Release {good} for replication: the approval tag, first by jdoe, then by an approver")
        tour.approve(good, inbox)

        say()
        say(f"5. {good} is deregistered: its snapshot is left behind")
        tour.ec2.deregister_image(ImageId=good)
        timeline(tour.drain())
        tour.notices(inbox)
        say("The policy's clean-up is dry-run by default: set cleanup.dry_run: false to delete.", 1)

        say()
        say("6. The daily report, asked for now: every governed region scanned, findings in S3 and on the topic")
        report_now(tour, emulator, inbox)

        say()
        say("Where to look next:")
        say("`make emulator` keeps this running on http://127.0.0.1:4566 for the AWS CLI, boto3 or Terraform;", 1)
        say("`curl -X POST localhost:4566/_governance/drain` shows what ran; the function logs are in", 1)
        say(f"{emulator.workdir / 'logs'} while it runs. Deploy for real: README, 'Deploy'.", 1)
    finally:
        emulator.stop()


if __name__ == "__main__":
    main()
