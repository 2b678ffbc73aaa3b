"""The emulator runs the real wiring: a stack broken the way a typo breaks it fails here as in the cloud.

Each test starts an emulator on a copy of the synthesized assembly with one deliberate mistake in the home
template, and runs the scenario that passes on the unbroken stack (test_enforcement_e2e.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import PREFIX

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, Any]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == resource_type}


def function_with_handler(template: dict[str, Any], handler: str) -> dict[str, Any]:
    functions = resources_of_type(template, "AWS::Lambda::Function").values()
    [function] = [f for f in functions if f["Properties"]["Handler"] == handler]
    return function


def enforce_function(template: dict[str, Any]) -> dict[str, Any]:
    return function_with_handler(template, "handlers.enforce.handler")


def break_handler_path(template: dict[str, Any]) -> None:
    enforce_function(template)["Properties"]["Handler"] = "handlers.enforcer.handler"


def break_rule_pattern(template: dict[str, Any]) -> None:
    for logical_id, rule in resources_of_type(template, "AWS::Events::Rule").items():
        if logical_id.startswith("EnforceImageCreated"):
            rule["Properties"]["EventPattern"]["detail"]["eventName"] = ["CreateImages"]


def drop_environment_variables(template: dict[str, Any]) -> None:
    # The enforce function without its inventory table, the replicate function without its copy queue
    del enforce_function(template)["Properties"]["Environment"]["Variables"]["INVENTORY_TABLE_NAME"]
    del function_with_handler(template, "handlers.replicate.handler")["Properties"]["Environment"]["Variables"][
        "COPY_QUEUE_URL"
    ]


def create_untagged_image(emulator) -> str:
    instance_id = emulator.launch_instance()
    return str(emulator.client("ec2").create_image(InstanceId=instance_id, Name="scratch build")["ImageId"])


def dead_letters(emulator, purpose: str) -> list[dict[str, Any]]:
    sqs = emulator.client("sqs")
    [url] = [u for u in sqs.list_queues()["QueueUrls"] if purpose in u]
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
    return messages.get("Messages", [])


def test_a_handler_path_typo_fails_every_invocation_and_dead_letters_the_events(variant):
    emulator = variant(break_handler_path)
    image_id = create_untagged_image(emulator)

    ran = emulator.drain()

    errors = {i["error"] for i in ran if i["outcome"] == "error"}
    assert any(
        error.startswith("Runtime.ImportModuleError: Unable to import module 'handlers.enforcer'") for error in errors
    )
    assert f"{PREFIX}compliance" not in emulator.tags_of(image_id)
    # After Lambda's two retries each event lands in the async-invoke DLQ, visible through the SQS API
    messages = dead_letters(emulator, "AsyncInvokeDeadLetters")
    assert {json.loads(m["Body"])["detail-type"] for m in messages} >= {"AWS API Call via CloudTrail"}
    assert messages[0]["MessageAttributes"]["ErrorMessage"]["StringValue"].startswith("Runtime.ImportModuleError")


def test_a_rule_pattern_typo_means_new_amis_are_never_judged(variant):
    emulator = variant(break_rule_pattern)
    image_id = create_untagged_image(emulator)

    ran = emulator.drain()

    # The CreateImage event never reaches the Lambda: no provenance, and only a provisional verdict from the
    # state-change rule, which notifies nobody about the bad AMI
    assert [i for i in ran if "EnforceImageCreated" in i["rule"]] == []
    assert f"{PREFIX}created-by" not in emulator.tags_of(image_id)
    judged = [image for i in ran if i["result"] for image in i["result"]["images"] if image["image_id"] == image_id]
    assert [image["result"] for image in judged] == ["provisional"]
    assert judged[0]["notified"] is None


def test_a_missing_environment_variable_fails_the_functions_init_naming_it(variant):
    emulator = variant(drop_environment_variables)
    create_untagged_image(emulator)

    ran = emulator.drain()

    # Every invocation of both functions fails with the settings error that names the variable
    errors = {i["error"] for i in ran if i["outcome"] == "error"}
    assert errors == {
        "SettingsError: missing environment variables: INVENTORY_TABLE_NAME",
        "SettingsError: missing environment variables: COPY_QUEUE_URL",
    }
    # And it was the init that failed: the error is logged before any request, and the handler never ran
    for handler in ("handlers.enforce.handler", "handlers.replicate.handler"):
        [function] = [f for f in emulator.functions() if f["handler"] == handler]
        lines = [json.loads(line) for line in Path(function["log"]).read_text().splitlines() if line.startswith("{")]
        assert [line["errorType"] for line in lines if line.get("requestId") == ""] == ["SettingsError"]
        assert not [line for line in lines if "function_request_id" in line]
