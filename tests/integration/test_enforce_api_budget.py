"""The API-call budget of one CreateImage event, and the policy cache of a warm Lambda."""

from __future__ import annotations

import pytest

from tests.integration.conftest import create_image_event
from tests.support import recording_api_calls

pytestmark = pytest.mark.integration


def test_cold_invocation_reads_the_policy_once(estate, invoke):
    image_id, instance_id = estate.create_image("test image")

    with recording_api_calls() as api:
        invoke(create_image_event(image_id, instance_id, name="test image"))

    assert api.operations("ssm") == ["GetParameter"]


def test_warm_create_image_event_costs_at_most_three_calls(estate, invoke):
    # Given a warm Lambda (policy already cached by an earlier invocation)
    warm_up_image, warm_up_instance = estate.create_image("warm-up")
    invoke(create_image_event(warm_up_image, warm_up_instance, name="warm-up"))
    image_id, instance_id = estate.create_image("test image")

    # When a non-compliant AMI's CreateImage event arrives (the most expensive case in audit mode)
    with recording_api_calls() as api:
        invoke(create_image_event(image_id, instance_id, name="test image"))

    # Then: describe, one notice, one tag write (last: it is what a retry compares against), and no SSM call
    assert api.operations() == ["DescribeImages", "Publish", "CreateTags"]
