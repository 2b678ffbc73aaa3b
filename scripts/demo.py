"""`make demo`: AMI enforcement on an embedded AWS (moto), start to finish, in about ten seconds.

What it does, through the real enforce handler and real boto3 calls:
  1. "deploys" what the handler needs: the policy parameter (from governance-policy.yaml), the
     inventory table and the notification topic (with an SQS inbox so the notices can be shown);
  2. launches an instance and creates two AMIs from it: one that follows the policy, one that doesn't;
  3. delivers the CloudTrail `CreateImage` events and the `EC2 AMI State Change` events that AWS
     would send (real-shaped, from tests/events/) to the handler;
  4. fixes the bad AMI's tags and delivers that `CreateTags` event;
  5. prints what governance did to each AMI: verdict, tags, notices, inventory.
"""

from __future__ import annotations

import io
import json
import os
import sys
import uuid
from collections import Counter
from contextlib import redirect_stdout
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "lambdas"), str(ROOT)]

from tests.support import (  # noqa: E402
    HOME_REGION,
    LOCAL_LAMBDA_ENVIRONMENT,
    FakeLambdaContext,
    create_home_resources,
    create_image_event,
    read_notices,
    state_event,
    tags_event,
)

REGION = HOME_REGION
os.environ.update(LOCAL_LAMBDA_ENVIRONMENT, POWERTOOLS_LOG_LEVEL="WARNING")

import boto3  # noqa: E402
from moto import mock_aws  # noqa: E402

from ami_governance.models.policy import load_policy_file  # noqa: E402

PREFIX_WIDTH = 4


def say(text: str = "", indent: int = 0) -> None:
    print(" " * indent + text)


def emitted_metrics(stdout: str) -> str:
    """Summarise the CloudWatch EMF lines the handler printed, e.g. 'Violations[missing-tag]=3'."""
    totals: Counter[str] = Counter()
    for line in stdout.splitlines():
        if not line.startswith('{"_aws"'):
            continue
        document = json.loads(line)
        for directive in document["_aws"]["CloudWatchMetrics"]:
            extra = [document[d] for d in directive["Dimensions"][0] if d != "service"]
            for metric in directive["Metrics"]:
                label = metric["Name"] + (f"[{','.join(extra)}]" if extra else "")
                totals[label] += int(sum(document[metric["Name"]]))
    return ", ".join(f"{name}={value}" for name, value in totals.items())


def deliver(handler: Any, event: dict[str, Any], inbox: str, what: str) -> None:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    event.update(id=str(uuid.uuid4()), time=now)
    if "eventID" in event["detail"]:
        event["detail"].update(eventID=str(uuid.uuid4()), eventTime=now)
    with redirect_stdout(io.StringIO()) as stdout:
        result = handler(event, FakeLambdaContext())
    say(f"→ {what}")
    for image in result["images"]:
        verdict = image["compliance"] or image["result"]
        say(f"{image['image_id']}: {verdict}", PREFIX_WIDTH)
        if image["violations"]:
            say(f"violations: {', '.join(image['violations'])}", PREFIX_WIDTH)
        if image["tags_written"]:
            say(f"tags written: {len(image['tags_written'])}", PREFIX_WIDTH)
    for notice in read_notices(inbox):
        say(f"SNS notice: {notice['subject']}", PREFIX_WIDTH)
        for fix in notice["body"].get("how_to_fix", []):
            say(f"- {fix}", PREFIX_WIDTH + 2)
    say(f"metrics: {emitted_metrics(stdout.getvalue())}", PREFIX_WIDTH)


def show_image(image_id: str) -> None:
    ec2 = boto3.client("ec2")
    image = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    say(f"{image_id}  {image['Name']!r}  state={image['State']}")
    for tag in sorted(image.get("Tags", []), key=lambda t: t["Key"]):
        say(f"{tag['Key']} = {tag['Value']}", PREFIX_WIDTH)
    item = boto3.client("dynamodb").get_item(
        TableName="ami-governance-inventory", Key={"image_id": {"S": image_id}, "region": {"S": REGION}}
    )["Item"]
    snapshots = ", ".join(s["S"] for s in item["snapshot_ids"]["L"])
    say(f"inventory: compliance={item['compliance']['S']} snapshots=[{snapshots}]", PREFIX_WIDTH)


def main() -> None:
    policy = load_policy_file(ROOT / "governance-policy.yaml")
    with mock_aws():
        from handlers.enforce import handler

        resources = create_home_resources(policy.model_dump_json())
        os.environ["NOTIFICATION_TOPIC_ARN"] = resources.topic_arn
        inbox = resources.inbox_url
        say(f"Policy: {policy.mode.value} mode, naming {policy.naming.pattern if policy.naming else '(none)'}")
        say(f"        required tags: {', '.join(policy.required_tags)}")
        say()
        ec2 = boto3.client("ec2")
        instance_id = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
        good_tags = {"Owner": "payments-team", "Environment": "prod", "CostCenter": "CC-1042"}
        good = ec2.create_image(
            InstanceId=instance_id,
            Name="payments-api-al2023-1.4.0",
            TagSpecifications=[
                {"ResourceType": "image", "Tags": [{"Key": k, "Value": v} for k, v in good_tags.items()]}
            ],
        )["ImageId"]
        bad_tags = {"Environment": "qa"}
        bad = ec2.create_image(
            InstanceId=instance_id,
            Name="payments-api-al2023-1.5.0",
            TagSpecifications=[{"ResourceType": "image", "Tags": [{"Key": "Environment", "Value": "qa"}]}],
        )["ImageId"]
        say(f"Created {good} 'payments-api-al2023-1.4.0' with Owner, Environment=prod, CostCenter")
        say(f"Created {bad} 'payments-api-al2023-1.5.0' with only Environment=qa")
        say()

        deliver(
            handler,
            create_image_event(good, instance_id, "payments-api-al2023-1.4.0", good_tags),
            inbox,
            f"CloudTrail CreateImage {good}",
        )
        deliver(
            handler,
            create_image_event(bad, instance_id, "payments-api-al2023-1.5.0", bad_tags),
            inbox,
            f"CloudTrail CreateImage {bad}",
        )
        deliver(handler, state_event(good), inbox, f"EC2 AMI State Change {good} available")
        deliver(handler, state_event(bad), inbox, f"EC2 AMI State Change {bad} available")

        fix = {"Owner": "payments-team", "Environment": "dev", "CostCenter": "CC-1042"}
        ec2.create_tags(Resources=[bad], Tags=[{"Key": k, "Value": v} for k, v in fix.items()])
        deliver(
            handler,
            tags_event("create_tags_mixed_resources", [bad], fix),
            inbox,
            f"CloudTrail CreateTags {bad} (owner adds the tags)",
        )
        say()
        say("Where things stand (DescribeImages tags and the inventory table):")
        show_image(good)
        show_image(bad)
        say()
        say("Deploy it for real with `make synth` and `npx cdk deploy --all` (see the README).")


if __name__ == "__main__":
    main()
