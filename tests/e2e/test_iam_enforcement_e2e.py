"""The emulator enforces IAM (`--enforce-iam`): a stack whose policies are wrong fails here as it would on AWS.

Each variant edits one statement of the synthesized home template and runs a flow that passes on the unedited
stack (the session emulator, which enforces too): a statement removed, the DeleteTags-under-ec2:Owner defect put
back, and the notifications key policy's EventBridge statement given the aws:SourceAccount condition EventBridge
never satisfies.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import OTHER, PREFIX, RunningEmulator, notification_inbox

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

ACCOUNT = "123456789012"
ALARM = "AmiGovernance-ForwarderDeadLetters-eu-west-1"


def statements(template: dict[str, Any], logical_prefix: str) -> list[dict[str, Any]]:
    [policy] = [
        resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::IAM::Policy" and logical_id.startswith(logical_prefix)
    ]
    return list(policy["Properties"]["PolicyDocument"]["Statement"])


def set_statements(template: dict[str, Any], logical_prefix: str, new: list[dict[str, Any]]) -> None:
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == "AWS::IAM::Policy" and logical_id.startswith(logical_prefix):
            resource["Properties"]["PolicyDocument"]["Statement"] = new


def remove_enforce_create_tags(template: dict[str, Any]) -> None:
    kept = [s for s in statements(template, "EnforcePermissions") if s.get("Sid") != "WriteOwnTagNamespaceOnly"]
    assert len(kept) == len(statements(template, "EnforcePermissions")) - 1
    set_statements(template, "EnforcePermissions", kept)


def delete_tags_under_ec2_owner(template: dict[str, Any]) -> None:
    edited = statements(template, "EnforcePermissions")
    [delete] = [s for s in edited if s.get("Sid") == "RemoveOwnTagNamespaceOnly"]
    delete["Condition"]["StringEquals"] = {"ec2:Owner": {"Ref": "AWS::AccountId"}}
    set_statements(template, "EnforcePermissions", edited)


def source_account_on_eventbridge_key_statement(template: dict[str, Any]) -> None:
    [key] = [r for r in template["Resources"].values() if r["Type"] == "AWS::KMS::Key"]
    key_statements = key["Properties"]["KeyPolicy"]["Statement"]
    [statement] = [s for s in key_statements if s.get("Sid") == "AllowThisAccountsRulesToPublish"]
    statement["Condition"]["StringEquals"] = {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}


def create_image(emulator: RunningEmulator, name: str, tags: dict[str, str] | None = None) -> str:
    request: dict[str, Any] = {"InstanceId": emulator.launch_instance(), "Name": name}
    if tags:
        tag_list = [{"Key": k, "Value": v} for k, v in tags.items()]
        request["TagSpecifications"] = [{"ResourceType": "image", "Tags": tag_list}]
    return str(emulator.client("ec2").create_image(**request)["ImageId"])


def enforce_log(emulator: RunningEmulator) -> str:
    [function] = [f for f in emulator.functions() if f["handler"] == "handlers.enforce.handler"]
    return Path(function["log"]).read_text()


def denials(emulator: RunningEmulator, action: str, resource: str) -> list[dict[str, Any]]:
    return [d for d in emulator.iam()["denials"] if d["action"] == action and d["resource"] == resource]


def enforce_principal(emulator: RunningEmulator) -> str:
    [function] = [f for f in emulator.functions() if f["handler"] == "handlers.enforce.handler"]
    return str(function["name"])


def test_a_statement_removed_from_a_role_fails_the_flow_with_awss_error(variant, emulator):
    # The unedited stack judges a new AMI, every call allowed
    image_ok = create_image(emulator, "scratch build")
    emulator.drain()
    assert emulator.tags_of(image_ok)[f"{PREFIX}compliance"] == "non-compliant"
    assert denials(emulator, "ec2:CreateTags", f"arn:aws:ec2:us-east-1::image/{image_ok}") == []

    # Without the enforce role's CreateTags statement the verdict cannot be written, and EC2 says why
    broken = variant(remove_enforce_create_tags)
    image_id = create_image(broken, "scratch build")
    broken.drain()

    assert f"{PREFIX}compliance" not in broken.tags_of(image_id)
    [denial, *_] = denials(broken, "ec2:CreateTags", f"arn:aws:ec2:us-east-1::image/{image_id}")
    role_session = denial["principal"]
    assert role_session.endswith(f"/{enforce_principal(broken)}")
    expected = (
        f"User: {role_session} is not authorized to perform: ec2:CreateTags on resource: "
        f"arn:aws:ec2:us-east-1::image/{image_id} because no identity-based policy allows the ec2:CreateTags action"
    )
    assert denial["message"] == expected
    # The function saw AWS's error: UnauthorizedOperation with AWS's message
    assert "UnauthorizedOperation" in enforce_log(broken)
    assert f"You are not authorized to perform this operation. {expected}" in enforce_log(broken)


def test_delete_tags_under_ec2_owner_fails_every_delete(variant, emulator):
    def exempt(running: RunningEmulator) -> str:
        # A non-compliant AMI later exempted: its violations tag is stale and enforce deletes it.
        image_id = create_image(running, "scratch build")
        running.drain()
        assert f"{PREFIX}violations" in running.tags_of(image_id)
        running.client("ec2").create_tags(Resources=[image_id], Tags=[{"Key": f"{PREFIX}exempt", "Value": "true"}])
        running.drain()
        return image_id

    # The unedited stack removes the stale violations tag once the AMI is exempt
    fixed = exempt(emulator)
    assert emulator.tags_of(fixed)[f"{PREFIX}compliance"] == "exempt"
    assert f"{PREFIX}violations" not in emulator.tags_of(fixed)
    assert denials(emulator, "ec2:DeleteTags", f"arn:aws:ec2:us-east-1::image/{fixed}") == []

    # With ec2:Owner on the DeleteTags statement (a key DeleteTags does not support) every delete is refused
    broken = variant(delete_tags_under_ec2_owner)
    image_id = exempt(broken)
    # The delete is refused before the new verdict is written: the AMI keeps its stale verdict
    assert broken.tags_of(image_id)[f"{PREFIX}compliance"] == "non-compliant"
    assert f"{PREFIX}violations" in broken.tags_of(image_id)
    refused = denials(broken, "ec2:DeleteTags", f"arn:aws:ec2:us-east-1::image/{image_id}")
    assert refused
    assert refused[0]["message"].endswith("because no identity-based policy allows the ec2:DeleteTags action")
    assert "UnauthorizedOperation" in enforce_log(broken)


def raise_forwarded_alarm(running: RunningEmulator) -> None:
    # As CloudWatch announces an alarm of the forwarder region on its default bus; the forwarder sends it home.
    detail = {"alarmName": ALARM, "state": {"value": "ALARM", "reason": "check"}, "previousState": {"value": "OK"}}
    entry = {"Source": "aws.cloudwatch", "DetailType": "CloudWatch Alarm State Change", "Detail": json.dumps(detail)}
    running.client("events", OTHER).put_events(Entries=[entry])


def rule_target_dead_letters(running: RunningEmulator) -> list[dict[str, Any]]:
    sqs = running.client("sqs")
    [url] = [u for u in sqs.list_queues()["QueueUrls"] if "RuleTargetDeadLetters" in u]
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
    return list(received.get("Messages", []))


def test_a_source_account_condition_on_the_key_policy_stops_eventbridges_notices(variant, emulator):
    # The unedited key policy lets EventBridge publish the forwarded alarm to the encrypted topic
    inbox = notification_inbox(emulator)
    raise_forwarded_alarm(emulator)
    emulator.drain()
    assert [n["body"]["detail"]["alarmName"] for n in inbox()] == [ALARM]

    # With aws:SourceAccount (which EventBridge does not send to KMS) the notice never arrives: the delivery is
    # refused, not retried, and the event is in the target's dead-letter queue
    broken = variant(source_account_on_eventbridge_key_statement)
    broken_inbox = notification_inbox(broken)
    raise_forwarded_alarm(broken)
    ran = broken.drain()

    assert broken_inbox() == []
    deliveries = [i for i in ran if "NotifyForwardedAlarms" in i["rule"]]
    assert [i["outcome"] for i in deliveries] == ["dead-lettered"]
    [message] = rule_target_dead_letters(broken)
    assert json.loads(message["Body"])["detail"]["alarmName"] == ALARM
    attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    assert attributes["ERROR_CODE"] == "KMS.AccessDeniedException"
    assert attributes["ERROR_MESSAGE"].startswith(
        "User: events.amazonaws.com is not authorized to perform: kms:GenerateDataKey on resource: "
        f"arn:aws:kms:us-east-1:{ACCOUNT}:key/"
    )
