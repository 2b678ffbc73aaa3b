"""Event patterns against real-shaped sample events, with moto's EventBridge matcher (completed in conftest)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ami_governance.models.policy import GovernancePolicy
from stacks.event_patterns import CLEANUP_PATTERNS, ENFORCE_PATTERNS, FORWARDING_PATTERNS, replicate_patterns

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

EVENTS_DIR = Path(__file__).resolve().parents[1] / "events"

Matcher = Callable[[dict[str, Any], dict[str, Any]], bool]

# sample event -> (enforce rules it must reach, cleanup rules it must reach, forwarding rules it must pass);
# everything else must not match.
EXPECTED_ROUTES: dict[str, tuple[set[str], set[str], set[str]]] = {
    "create_image.json": ({"ImageCreated"}, set(), {"ImageCalls"}),
    "create_image_console_untagged.json": ({"ImageCreated"}, set(), {"ImageCalls"}),
    "copy_image.json": ({"ImageCreated"}, set(), {"ImageCalls"}),
    "register_image.json": ({"ImageCreated"}, set(), {"ImageCalls"}),
    # A failed call is forwarded (forwarding is broad) but enforce ignores it: no AMI came of it.
    "create_image_failed.json": (set(), set(), {"ImageCalls"}),
    "create_tags_mixed_resources.json": ({"ImageTagsChanged"}, set(), {"ImageTagCalls"}),
    "create_tags_approval.json": ({"ImageTagsChanged"}, set(), {"ImageTagCalls"}),
    "ami_state_available.json": ({"ImageCreationEnded"}, set(), {"ImageStateChanges"}),
    "ami_state_failed.json": ({"ImageCreationEnded"}, set(), {"ImageStateChanges"}),
    # Both signals of a deregistration reach cleanup (and only cleanup).
    "ami_state_deregistered.json": (set(), {"ImageStateDeregistered"}, {"ImageStateChanges"}),
    "deregister_image.json": (set(), {"ImageDeregistered"}, {"ImageCalls"}),
    "deregister_image_delete_snapshots.json": (set(), {"ImageDeregistered"}, {"ImageCalls"}),
    # Enforce records the AMI's launch permissions, read back from EC2.
    "modify_image_attribute_launch_permission.json": ({"ImageAttributeModified"}, set(), {"ImageCalls"}),
}


def _routes(patterns: dict[str, dict[str, Any]], event: dict[str, Any], matches: Matcher) -> set[str]:
    return {name for name, pattern in patterns.items() if matches(pattern, event)}


@pytest.mark.parametrize("event_file", sorted(EXPECTED_ROUTES))
def test_sample_event_reaches_exactly_the_expected_rules(
    event_file: str, load_event: Callable[[str], dict[str, Any]], matches: Matcher
) -> None:
    # Given a real-shaped AMI event
    event = load_event(event_file)
    expected_enforce, expected_cleanup, expected_forwarding = EXPECTED_ROUTES[event_file]

    # When it is matched against every forwarding, every enforce and every cleanup pattern
    enforce = _routes(ENFORCE_PATTERNS, event, matches)
    cleanup = _routes(CLEANUP_PATTERNS, event, matches)
    forwarding = _routes(FORWARDING_PATTERNS, event, matches)

    # Then it reaches exactly the expected rules
    assert enforce == expected_enforce
    assert cleanup == expected_cleanup
    assert forwarding == expected_forwarding


def test_every_sample_event_is_covered() -> None:
    # Given the sample events directory
    samples = {path.name for path in EVENTS_DIR.glob("*.json")}

    # When compared with the routing table, then every sample has an expected route (new samples are routed on
    # purpose) and every routed sample exists
    assert samples == set(EXPECTED_ROUTES)


def test_tag_change_without_an_ami_is_neither_forwarded_nor_enforced(
    load_event: Callable[[str], dict[str, Any]], matches: Matcher
) -> None:
    # Given a CreateTags call on a volume and an instance only
    event = copy.deepcopy(load_event("create_tags_mixed_resources.json"))
    event["detail"]["requestParameters"]["resourcesSet"]["items"] = [
        {"resourceId": "vol-0f9e1b2c3d4e5f6a7"},
        {"resourceId": "i-0dc224bad2cb08740"},
    ]

    # When matched, then no rule takes it
    assert _routes(ENFORCE_PATTERNS, event, matches) == set()
    assert _routes(CLEANUP_PATTERNS, event, matches) == set()
    assert _routes(FORWARDING_PATTERNS, event, matches) == set()


def test_failed_tag_change_is_forwarded_but_not_enforced(
    load_event: Callable[[str], dict[str, Any]], matches: Matcher
) -> None:
    # Given a CreateTags call on an AMI that failed
    event = copy.deepcopy(load_event("create_tags_approval.json"))
    event["detail"]["errorCode"] = "Client.UnauthorizedOperation"
    event["detail"]["responseElements"] = None

    # When matched, then only forwarding takes it
    assert _routes(ENFORCE_PATTERNS, event, matches) == set()
    assert _routes(FORWARDING_PATTERNS, event, matches) == {"ImageTagCalls"}


def test_failed_deregistration_is_forwarded_but_not_cleaned_up(
    load_event: Callable[[str], dict[str, Any]], matches: Matcher
) -> None:
    # Given a DeregisterImage call that failed (the AMI is still there, and so are its snapshots)
    event = copy.deepcopy(load_event("deregister_image.json"))
    event["detail"]["errorCode"] = "Client.InvalidAMIID.Unavailable"
    event["detail"]["errorMessage"] = "The image ID 'ami-0a1b2c3d4e5f60718' is no longer available"
    event["detail"]["responseElements"] = None

    # When matched, then neither cleanup nor enforce takes it; forwarding (broad) does
    assert _routes(CLEANUP_PATTERNS, event, matches) == set()
    assert _routes(ENFORCE_PATTERNS, event, matches) == set()
    assert _routes(FORWARDING_PATTERNS, event, matches) == {"ImageCalls"}


@pytest.mark.parametrize("state", ["available", "failed", "deregistered", "disabled"])
def test_every_ami_state_change_is_forwarded(
    state: str, load_event: Callable[[str], dict[str, Any]], matches: Matcher
) -> None:
    # Given an AMI state change in any state
    event = copy.deepcopy(load_event("ami_state_available.json"))
    event["detail"]["State"] = state

    # When matched against forwarding, then it is forwarded; enforce takes only the end of creation, cleanup only
    # the deregistration
    assert _routes(FORWARDING_PATTERNS, event, matches) == {"ImageStateChanges"}
    assert bool(_routes(ENFORCE_PATTERNS, event, matches)) == (state in {"available", "failed"})
    assert bool(_routes(CLEANUP_PATTERNS, event, matches)) == (state == "deregistered")


def test_every_handled_event_is_also_forwarded(load_event: Callable[[str], dict[str, Any]], matches: Matcher) -> None:
    # Given every sample event that enforce or cleanup handles
    handled = [name for name, (enforce, cleanup, _) in EXPECTED_ROUTES.items() if enforce or cleanup]

    # When matched against forwarding, then each is forwarded (otherwise it could never reach the home bus)
    for name in handled:
        assert _routes(FORWARDING_PATTERNS, load_event(name), matches), name


# sample event -> replicate rules it must reach, under the repository policy (default approval tag); every other
# sample must reach none.
REPLICATE_ROUTES: dict[str, set[str]] = {
    "create_tags_approval.json": {"ImageApproved"},
    "ami_state_available.json": {"ImageStateChanged"},
    "ami_state_failed.json": {"ImageStateChanged"},
    "ami_state_deregistered.json": {"ImageStateChanged"},
}


@pytest.mark.parametrize("event_file", sorted(EXPECTED_ROUTES))
def test_sample_event_reaches_exactly_the_expected_replicate_rules(
    event_file: str,
    load_event: Callable[[str], dict[str, Any]],
    matches: Matcher,
    make_policy: Callable[..., GovernancePolicy],
) -> None:
    # Given a real-shaped AMI event and the repository policy's replicate patterns
    patterns = replicate_patterns(make_policy())

    # When matched, then it reaches exactly the expected replicate rules
    assert _routes(patterns, load_event(event_file), matches) == REPLICATE_ROUTES.get(event_file, set())


def _approval_event(load_event: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
    return copy.deepcopy(load_event("create_tags_approval.json"))


def test_an_approval_among_other_tags_and_resources_is_seen(
    load_event: Callable[[str], dict[str, Any]], matches: Matcher, make_policy: Callable[..., GovernancePolicy]
) -> None:
    # Given a CreateTags call on a snapshot and an AMI, setting another tag along with the approval tag
    event = _approval_event(load_event)
    parameters = event["detail"]["requestParameters"]
    parameters["resourcesSet"]["items"].insert(0, {"resourceId": "snap-0a1b2c3d4e5f60718"})
    parameters["tagSet"]["items"].insert(0, {"key": "Owner", "value": "data-team"})

    # When matched, then replicate takes it
    assert _routes(replicate_patterns(make_policy()), event, matches) == {"ImageApproved"}


@pytest.mark.parametrize(
    "change",
    ["failed", "the answer tag", "snapshot only"],
)
def test_what_is_not_an_approval_does_not_reach_replicate(
    change: str,
    load_event: Callable[[str], dict[str, Any]],
    matches: Matcher,
    make_policy: Callable[..., GovernancePolicy],
) -> None:
    # Given the approval call, failed, or setting replicate's own answer tag instead (its answer must not
    # trigger it again), or on a snapshot only
    event = _approval_event(load_event)
    detail = event["detail"]
    if change == "failed":
        detail["errorCode"] = "Client.UnauthorizedOperation"
        detail["responseElements"] = None
    elif change == "the answer tag":
        detail["requestParameters"]["tagSet"]["items"] = [{"key": "ami-governance:approval", "value": "true"}]
    else:
        detail["requestParameters"]["resourcesSet"]["items"] = [{"resourceId": "snap-0a1b2c3d4e5f60718"}]

    # When matched, then replicate does not take it
    assert _routes(replicate_patterns(make_policy()), event, matches) == set()


def test_the_approval_pattern_follows_the_policy_approval_tag(
    load_event: Callable[[str], dict[str, Any]], matches: Matcher, make_policy: Callable[..., GovernancePolicy]
) -> None:
    # Given a policy with its own approval tag
    policy = make_policy(approval={"tag": "release:approved", "approvers": ["arn:aws:iam::*:role/AmiApprover"]})
    event = _approval_event(load_event)

    # When the default approval tag is set, then nothing happens; when the policy's is set, replicate takes it
    assert _routes(replicate_patterns(policy), event, matches) == set()
    event["detail"]["requestParameters"]["tagSet"]["items"] = [{"key": "release:approved", "value": "true"}]
    assert _routes(replicate_patterns(policy), event, matches) == {"ImageApproved"}


@pytest.mark.parametrize("state", ["pending", "available", "failed", "deregistered", "disabled"])
def test_replicate_follows_the_end_of_creation_and_deregistration(
    state: str,
    load_event: Callable[[str], dict[str, Any]],
    matches: Matcher,
    make_policy: Callable[..., GovernancePolicy],
) -> None:
    # Given an AMI state change in any state
    event = copy.deepcopy(load_event("ami_state_available.json"))
    event["detail"]["State"] = state

    # When matched, then replicate takes the end of a creation (replica ready or failed) and a deregistration
    expected = {"ImageStateChanged"} if state in {"available", "failed", "deregistered"} else set()
    assert _routes(replicate_patterns(make_policy()), event, matches) == expected


def test_every_event_replicate_handles_is_also_forwarded(
    load_event: Callable[[str], dict[str, Any]], matches: Matcher
) -> None:
    # Given every sample event that replicate handles, when matched against forwarding, then each is forwarded
    for name in REPLICATE_ROUTES:
        assert _routes(FORWARDING_PATTERNS, load_event(name), matches), name
