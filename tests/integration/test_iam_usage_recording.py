"""The in-process recorder of the granted-vs-used check (tests/iam/api_calls.py): a call is a function's only if the
Lambda code made it inside that function's handler; test code's calls never are, even from inside a handler."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest

from ami_governance.adapters import clients
from ami_governance.adapters.ec2 import Ec2Images
from ami_governance.services import wiring
from tests.iam.api_calls import HarnessRecorder, Invocation
from tests.integration.conftest import HOME, create_image_event

pytestmark = pytest.mark.integration


@pytest.fixture
def recorder(estate) -> Iterator[HarnessRecorder]:
    recorder = HarnessRecorder()
    recorder.install()
    # Sessions made before the recorder was installed do not carry its hook: start the Lambda's afresh.
    clients._session.cache_clear()
    wiring.reset()
    recorder.start_test("this-test")
    yield recorder
    recorder.uninstall()
    clients._session.cache_clear()
    wiring.reset()


def calls_of(invocations: list[Invocation]) -> set[tuple[str, str, str]]:
    return {(i.function, service, operation) for i in invocations for (service, operation, _) in i.calls}


def test_the_handlers_calls_are_its_functions_and_the_tests_own_are_nobodys(recorder, estate, invoke):
    # Given an AMI the test creates through its own client, and a hook the test runs inside the handler that makes
    # a call of its own through boto3
    image_id, instance_id = estate.create_image("payments-api-al2023-1.4.0")
    ec2 = clients.client("ec2", HOME)

    def spy(**_):
        boto3.client("sts", region_name=HOME).get_caller_identity()

    ec2.meta.events.register("before-call.ec2.DescribeImages", spy)

    # When the enforce handler judges it, and the test then reads the tags back
    invoke(create_image_event(image_id, instance_id))
    estate.tags_of(image_id)
    invocations = recorder.finish_test()

    # Then one enforce invocation is recorded, with the policy it loaded and the calls the Lambda code made
    # (Powertools' SSM call included), and none of the test's (RunInstances, CreateImage, STS, its DescribeImages)
    [invocation] = invocations
    assert invocation.function == "enforce"
    assert invocation.test == "this-test"
    assert invocation.policy_json is not None
    assert '"mode":"audit"' in invocation.policy_json
    recorded = calls_of(invocations)
    assert {
        ("enforce", "ssm", "GetParameter"),
        ("enforce", "ec2", "DescribeImages"),
        ("enforce", "ec2", "CreateTags"),
    } <= recorded
    assert not {op for _, service, op in recorded if service == "sts" or op in {"RunInstances", "CreateImage"}}
    assert sum(invocation.calls[k] for k in invocation.calls if k[1] == "DescribeImages") == 1


def test_two_invocations_are_two_and_lambda_code_outside_a_handler_is_only_counted(recorder, estate, invoke):
    # Given two AMIs
    first, first_instance = estate.create_image("payments-api-al2023-1.4.0")
    second, second_instance = estate.create_image("bad name")

    # When the handler runs twice, and a test calls the EC2 adapter directly
    invoke(create_image_event(first, first_instance))
    invoke(create_image_event(second, second_instance, name="bad name"))
    Ec2Images(HOME).describe_image(first)
    invocations = recorder.finish_test()

    # Then each invocation is its own, and the adapter's call belongs to no function
    assert [i.function for i in invocations] == ["enforce", "enforce"]
    assert recorder.unattributed == 1


def test_handlers_running_at_once_in_two_threads_keep_their_own_invocations(recorder, estate, invoke):
    import threading

    # Given two AMIs, and the first handler paused inside its first EC2 call until the second handler has run
    first, first_instance = estate.create_image("payments-api-al2023-1.4.0")
    second, second_instance = estate.create_image("payments-api-al2023-1.5.0")
    first_paused, second_done = threading.Event(), threading.Event()

    def pause_the_first(**_):
        if threading.current_thread().name == "first" and not first_paused.is_set():
            first_paused.set()
            assert second_done.wait(60)

    clients.client("ec2", HOME).meta.events.register("before-call.ec2.DescribeImages", pause_the_first)

    # When both run at once, each in its own thread, interleaved
    runner = threading.Thread(target=invoke, args=(create_image_event(first, first_instance),), name="first")
    runner.start()
    assert first_paused.wait(60)
    invoke(create_image_event(second, second_instance))
    second_done.set()
    runner.join(60)
    invocations = recorder.finish_test()

    # Then two invocations are recorded, each with the policy it loaded and its own calls: none is split into an
    # invocation that never loaded a policy (whose calls the check would judge under the repository's policy)
    assert len(invocations) == 2
    assert all(i.policy_json is not None for i in invocations)
    assert [sum(n for k, n in i.calls.items() if k[1] == "DescribeImages") for i in invocations] == [1, 1]
