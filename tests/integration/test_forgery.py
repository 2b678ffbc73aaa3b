"""Forged events: claims that disagree with what AWS shows change nothing.

Each test gives a handler an event whose claims EC2 contradicts (tags the AMI does not carry, a creator other than
the recorded one, a deregistration of a registered AMI, an approval by someone the policy does not allow, a state
the AMI is not in, another account's AMI, a copy's source, a launch permission) and shows that no write call is
made (or exactly the one that states AWS's own view), that the AMI, its snapshots, the inventory and the queues are
as they were, and that the handler logs and counts the forgery where it can tell.

On AWS such events cannot be put on a bus by anyone (PutEvents refuses `aws.*` sources, and the governance bus's
policy refuses other accounts and other sources): these tests give them to the handlers directly, as a caller with
lambda:InvokeFunction could.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest

from ami_governance.adapters.inventory import plain_item
from ami_governance.models.policy import GovernancePolicy
from emulator.moto_extensions import set_image_state
from tests.conftest import load_event
from tests.integration.conftest import (
    ACCOUNT,
    HOME,
    PUBLIC_AMI,
    TABLE,
    Estate,
    create_image_event,
    deregister_event,
    state_event,
    tags_event,
)
from tests.integration.replication_support import (
    APPROVER_ROLE,
    EU,
    GOOD_NAME,
    GOOD_TAGS,
    Replication,
    approval_event,
)
from tests.support import ApiCallRecorder, emitted_metric_names, recording_api_calls

# About 20 handler runs on moto, each with a fresh estate: slow on a shared machine (see the README figures).
pytestmark = [pytest.mark.integration, pytest.mark.slow]

P = "ami-governance:"
Invoke = Callable[[dict[str, Any]], dict[str, Any]]
READ_PREFIXES = ("Describe", "Get", "List", "Scan", "Query", "Receive")
OTHER_ACCOUNT = "444455556666"
ENGINEER = f"arn:aws:iam::{ACCOUNT}:role/PlatformEngineer"


def writes(recorder: ApiCallRecorder) -> list[str]:
    """The calls that change something (anything but reads), as `service:Operation`, in order."""
    return [f"{service}:{op}" for service, op in recorder.calls if not op.startswith(READ_PREFIXES)]


def table_items() -> list[dict[str, Any]]:
    return [plain_item(item) for item in boto3.client("dynamodb", region_name=HOME).scan(TableName=TABLE)["Items"]]


def images_state(region: str = HOME) -> list[dict[str, Any]]:
    """Every AMI of this account in `region`, with its tags and launch permissions: what a forgery must not change."""
    ec2 = boto3.client("ec2", region_name=region)
    images = ec2.describe_images(Owners=["self"], IncludeDisabled=True)["Images"]
    return sorted(
        (
            {
                "id": image["ImageId"],
                "state": image["State"],
                "tags": sorted((t["Key"], t["Value"]) for t in image.get("Tags", [])),
                "launch": ec2.describe_image_attribute(ImageId=image["ImageId"], Attribute="launchPermission")[
                    "LaunchPermissions"
                ],
            }
            for image in images
        ),
        key=lambda image: image["id"],
    )


def snapshots(region: str = HOME) -> list[tuple[str, list[tuple[str, str]]]]:
    found = boto3.client("ec2", region_name=region).describe_snapshots(OwnerIds=["self"])["Snapshots"]
    return sorted((s["SnapshotId"], sorted((t["Key"], t["Value"]) for t in s.get("Tags", []))) for s in found)


@contextmanager
def unchanged(estate: Estate, regions: tuple[str, ...] = (HOME,)) -> Iterator[ApiCallRecorder]:
    """Records the calls made inside, and asserts that AMIs, snapshots and the inventory are as they were and that
    no notice was published."""
    estate.notices()
    before = ([images_state(r) for r in regions], [snapshots(r) for r in regions], table_items())
    with recording_api_calls() as recorder:
        yield recorder
    assert ([images_state(r) for r in regions], [snapshots(r) for r in regions], table_items()) == before
    assert estate.notices() == []


def metrics(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return emitted_metric_names(capsys.readouterr().out)


@pytest.fixture
def judged(estate: Estate, invoke: Invoke) -> tuple[str, str]:
    """A non-compliant AMI (no required tags), judged from its real CreateImage event and its `available` state."""
    image_id, instance_id = estate.create_image(GOOD_NAME)
    invoke(create_image_event(image_id, instance_id, name=GOOD_NAME, tags={}))
    invoke(state_event(image_id, "available"))
    assert estate.tags_of(image_id)[f"{P}compliance"] == "non-compliant"
    return image_id, instance_id


# ---- tags the AMI does not carry ------------------------------------------------------------------------------------


def test_a_create_tags_event_claiming_the_required_tags_changes_nothing(
    estate: Estate, invoke: Invoke, judged: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a non-compliant AMI, and a CreateTags event claiming its missing tags were set (they were not)
    image_id, _ = judged
    capsys.readouterr()
    forged = tags_event("create_tags_approval", [image_id], GOOD_TAGS)

    # When enforce handles it
    with unchanged(estate) as recorder:
        outcome = invoke(forged)

    # Then the AMI is judged on the tags EC2 shows: still non-compliant, nothing written, nobody notified
    [image] = outcome["images"]
    assert (image["result"], image["compliance"], image["tags_written"]) == ("evaluated", "non-compliant", [])
    assert writes(recorder) == []
    assert estate.tags_of(image_id)[f"{P}compliance"] == "non-compliant"


def test_an_approval_event_for_a_tag_the_ami_does_not_carry_copies_nothing(
    replication: Replication, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a compliant AMI that no one approved, and an approver's CreateTags event claiming the approval tag
    source = replication.compliant_image()
    replication.estate.notices()

    with recording_api_calls() as recorder:
        outcome = replication.replicate(approval_event(source, APPROVER_ROLE, "forged-approval"))

    # Then no copy is queued and no approval is recorded: the one write is the answer, which says what EC2 shows
    # (the AMI does not carry the tag); a real approval withdrawn before its event was handled looks the same
    [image] = outcome["images"]
    assert image["result"] == "withdrawn"
    assert writes(recorder) == ["ec2:CreateTags"]
    tags = replication.estate.tags_of(source)
    assert tags[f"{P}approval"] == f"withdrawn: the AMI no longer carries {P}approved=true"
    assert f"{P}approved-by" not in tags
    assert replication.queued() == 0
    assert "approval_status" not in (replication.estate.inventory_item(source) or {})
    assert replication.estate.notices() == []
    assert "ApprovalsWithdrawn" in metrics(capsys)


# ---- an approval by a principal the policy does not allow -----------------------------------------------------------


def test_an_approval_claimed_by_a_non_approver_starts_no_copy_and_keeps_the_real_approval(
    replication: Replication, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an AMI approved by an approver, its copies queued
    source = replication.compliant_image()
    replication.approve(source)
    queued, entries = replication.queued(), replication.item(source)["replicas"]
    answer = replication.estate.tags_of(source)[f"{P}approval"]
    replication.estate.notices()

    # When an event claims that someone the policy does not allow set the approval tag
    with recording_api_calls() as recorder:
        outcome = replication.replicate(approval_event(source, ENGINEER, "forged-approval"))

    # Then it is rejected: no copy job, the replication entries and the approver as they were
    [image] = outcome["images"]
    assert (image["result"], image["reason"]) == ("rejected", f"{ENGINEER} is not allowed to approve AMIs")
    assert "sqs:SendMessage" not in writes(recorder)
    assert replication.queued() == queued
    assert replication.item(source)["replicas"] == entries
    assert replication.estate.tags_of(source)[f"{P}approved-by"] == APPROVER_ROLE
    assert answer.startswith("approved: copying to ")
    assert replication.estate.tags_of(source)[f"{P}approval"] == answer
    assert [w for w in writes(recorder) if w.startswith("ec2:")] == []
    # And the attempt is announced (a real non-approver's CreateTags gets the same notice)
    [notice] = replication.estate.notices()
    assert notice["body"]["kind"] == "ami-approval-rejected"
    assert "Approvals" in metrics(capsys)


# ---- a creator who did not create it --------------------------------------------------------------------------------


def test_a_creation_event_naming_another_creator_changes_nothing(
    estate: Estate, invoke: Invoke, judged: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an AMI whose creator is recorded, and a CreateImage event for it naming another (exempt) creator
    image_id, instance_id = judged
    recorded = estate.tags_of(image_id)[f"{P}created-by"]
    capsys.readouterr()
    forged = create_image_event(image_id, instance_id, name=GOOD_NAME, tags=GOOD_TAGS)
    forged["detail"]["eventID"] = "forged-creation"
    identity = forged["detail"]["userIdentity"]
    identity["sessionContext"]["sessionIssuer"]["arn"] = f"arn:aws:iam::{ACCOUNT}:role/ImageBuilderExempt"
    identity["arn"] = f"arn:aws:sts::{ACCOUNT}:assumed-role/ImageBuilderExempt/forger"

    with unchanged(estate) as recorder:
        outcome = invoke(forged)

    # Then the recorded creator stays, the event's requested tags do not count, nothing is written
    [image] = outcome["images"]
    assert (image["compliance"], image["tags_written"]) == ("non-compliant", [])
    assert writes(recorder) == []
    assert estate.tags_of(image_id)[f"{P}created-by"] == recorded
    assert "ProvenanceConflicts" in metrics(capsys)


def test_a_first_creation_event_naming_another_instance_changes_nothing(estate: Estate, invoke: Invoke) -> None:
    # Given an AMI no event judged yet, made from one instance, and a CreateImage record naming another instance,
    # an exempt creator and the required tags
    image_id, _ = estate.create_image(GOOD_NAME)
    other_instance = estate.launch_instance()
    forged = create_image_event(image_id, other_instance, name=GOOD_NAME, tags=GOOD_TAGS)
    forged["detail"]["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"] = (
        f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/imagebuilder.amazonaws.com/AWSServiceRoleForImageBuilder"
    )

    with unchanged(estate) as recorder:
        outcome = invoke(forged)

    assert outcome["images"][0]["result"] == "claims-refuted: source-instance"
    assert writes(recorder) == []


# ---- a deregistration of a registered AMI ---------------------------------------------------------------------------


@pytest.mark.parametrize("event", ["DeregisterImage", "DeregisterImage with DeleteAssociatedSnapshots", "deregistered"])
def test_a_deregistration_of_a_registered_ami_deletes_nothing(
    estate: Estate,
    invoke_cleanup: Invoke,
    judged: tuple[str, str],
    policy_with: Callable[..., GovernancePolicy],
    capsys: pytest.CaptureFixture[str],
    event: str,
) -> None:
    # Given clean-up in delete mode, and an AMI that is registered (its snapshots recorded)
    image_id, _ = judged
    estate.set_policy(policy_with(cleanup={"dry_run": False, "min_age_days": 0}))
    assert estate.inventory_item(image_id)["snapshot_ids"] != []  # type: ignore[index]
    forged = {
        "DeregisterImage": deregister_event(image_id),
        "DeregisterImage with DeleteAssociatedSnapshots": deregister_event(image_id, HOME, True),
        "deregistered": state_event(image_id, "deregistered"),
    }[event]
    capsys.readouterr()
    before = snapshots()

    with recording_api_calls() as recorder:
        outcome = invoke_cleanup(forged)

    # Then nothing is deleted, tagged or deregistered, and the forgery is counted
    assert outcome["reason"] == f"{image_id} is still registered"
    assert [w for w in writes(recorder) if w.startswith("ec2:")] == []
    assert snapshots() == before
    assert estate.tags_of(image_id)[f"{P}compliance"] == "non-compliant"
    assert "CleanupsOfRegisteredImages" in metrics(capsys)


def test_a_deregistration_of_a_registered_ami_without_snapshots_cascades_to_no_replica(
    estate: Estate, invoke_cleanup: Invoke, policy_with: Callable[..., GovernancePolicy]
) -> None:
    # Given cascading clean-up, a registered AMI with no snapshot (instance store), and its recorded replica
    ec2, eu = estate.ec2(), estate.ec2(EU)
    source = ec2.register_image(Name="instance-store-ami", ImageLocation="amzn-s3-demo-bucket/image.manifest.xml")[
        "ImageId"
    ]
    replica = eu.copy_image(Name="instance-store-ami", SourceImageId=source, SourceRegion=HOME)["ImageId"]
    estate.set_policy(policy_with(governed_regions=[HOME, EU], cleanup={"dry_run": False, "cascade_to_replicas": True}))
    boto3.client("dynamodb", region_name=HOME).put_item(
        TableName=TABLE,
        Item={
            "image_id": {"S": source},
            "region": {"S": HOME},
            "snapshot_ids": {"L": []},
            "replicas": {"M": {EU: {"M": {"image_id": {"S": replica}, "state": {"S": "available"}}}}},
        },
    )

    # When a DeregisterImage event claims the source is gone
    with recording_api_calls() as recorder:
        outcome = invoke_cleanup(deregister_event(source))

    # Then the replica is not deregistered
    assert outcome["reason"] == f"{source} is still registered"
    assert [w for w in writes(recorder) if w.startswith("ec2:")] == []
    assert [image["ImageId"] for image in eu.describe_images(ImageIds=[replica])["Images"]] == [replica]


# ---- a state the AMI is not in --------------------------------------------------------------------------------------


@pytest.mark.parametrize("actual", ["pending", "failed"])
def test_available_claimed_for_an_ami_that_is_not_changes_nothing(
    estate: Estate, invoke: Invoke, capsys: pytest.CaptureFixture[str], actual: str
) -> None:
    # Given an AMI EC2 shows pending (or failed), never judged
    image_id, _ = estate.create_image(GOOD_NAME, GOOD_TAGS)
    set_image_state(ACCOUNT, HOME, image_id, actual)
    capsys.readouterr()

    # When a state change claims it is available
    with unchanged(estate) as recorder:
        outcome = invoke(state_event(image_id, "available"))

    # Then nothing is tagged or recorded, and the claim is counted
    assert outcome["images"][0]["result"] == f"claims-refuted: EC2 shows the AMI {actual}"
    assert writes(recorder) == []
    assert table_items() == []
    assert "ClaimsRefuted" in metrics(capsys)


def test_a_late_available_for_an_ami_enforcement_already_disabled_is_not_a_forgery(
    estate: Estate, invoke: Invoke
) -> None:
    # Given an AMI that is disabled (enforcement disabled it once it was available: only an available AMI can be)
    image_id, _ = estate.create_image(GOOD_NAME, GOOD_TAGS)
    set_image_state(ACCOUNT, HOME, image_id, "disabled")

    # When its genuine `available` state change arrives late, after the remediation
    outcome = invoke(state_event(image_id, "available"))

    # Then it is judged and its snapshots recorded, not refuted as a forgery
    assert not outcome["images"][0]["result"].startswith("claims-refuted")
    [item] = table_items()
    assert item["image_id"] == image_id
    assert item["snapshot_ids"]


def test_available_claimed_for_a_missing_ami_changes_nothing(
    estate: Estate, invoke: Invoke, capsys: pytest.CaptureFixture[str]
) -> None:
    with unchanged(estate) as recorder:
        outcome = invoke(state_event("ami-0123456789abcdef0", "available"))

    assert outcome["images"][0]["result"] == "gone"
    assert writes(recorder) == []
    assert "ImagesGone" in metrics(capsys)


def test_failed_claimed_for_an_available_ami_records_nothing(
    estate: Estate, invoke: Invoke, judged: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    image_id, _ = judged
    capsys.readouterr()

    with unchanged(estate) as recorder:
        outcome = invoke(state_event(image_id, "failed"))

    assert outcome["images"][0]["result"] == "claims-refuted: EC2 shows the AMI available"
    assert writes(recorder) == []
    assert estate.inventory_item(image_id)["state"] == "available"  # type: ignore[index]
    assert "ClaimsRefuted" in metrics(capsys)


def test_available_claimed_for_a_pending_replica_neither_shares_nor_settles_it(
    replication: Replication, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a replica whose copy is under way (EC2 shows it pending)
    source = replication.compliant_image()
    replication.approve(source)
    replication.run_copies()
    replica = replication.replicas(source, EU)[0]["ImageId"]
    set_image_state(ACCOUNT, EU, replica, "pending")
    entry = replication.item(source)["replicas"][EU]
    replication.estate.notices()
    capsys.readouterr()

    # When a state change claims it is available
    with recording_api_calls() as recorder:
        outcome = replication.settle(replica, EU)

    # Then it is not shared, its entry is as it was, and the claim is counted
    assert outcome["reason"] == "claims-refuted: EC2 shows the AMI pending"
    assert writes(recorder) == []
    assert replication.item(source)["replicas"][EU] == entry
    assert replication.estate.notices() == []
    assert "ClaimsRefuted" in metrics(capsys)


# ---- another account's AMI ------------------------------------------------------------------------------------------


def foreign_events() -> dict[str, dict[str, Any]]:
    tags = tags_event("create_tags_approval", [PUBLIC_AMI], GOOD_TAGS)
    creation = create_image_event(PUBLIC_AMI, "i-0123456789abcdef0", name=GOOD_NAME, tags=GOOD_TAGS)
    other_envelope = tags_event("create_tags_approval", [PUBLIC_AMI], GOOD_TAGS)
    other_envelope["account"] = OTHER_ACCOUNT
    return {"CreateTags": tags, "CreateImage": creation, "available": state_event(PUBLIC_AMI, "available"),
            "another account's event": other_envelope}  # fmt: skip


@pytest.mark.parametrize("kind", list(foreign_events()))
def test_claims_about_another_accounts_ami_change_nothing(
    estate: Estate, invoke: Invoke, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    capsys.readouterr()

    with unchanged(estate) as recorder:
        invoke(foreign_events()[kind])

    assert writes(recorder) == []
    expected = "ForeignAccountEvents" if kind == "another account's event" else "ForeignImages"
    assert expected in metrics(capsys)


# ---- a copy's source and destination --------------------------------------------------------------------------------


def copy_event(image_id: str, source_id: str, region: str = EU) -> dict[str, Any]:
    event = load_event("copy_image")
    event["account"] = ACCOUNT
    event["region"] = region
    detail = event["detail"]
    detail["awsRegion"] = region
    detail["requestParameters"].update(sourceImageId=source_id, sourceRegion=HOME)
    detail["responseElements"]["imageId"] = image_id
    return event


def test_a_copy_event_naming_another_source_changes_nothing(
    estate: Estate, invoke: Invoke, policy_with: Callable[..., GovernancePolicy], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a copy of one AMI, and a CopyImage event claiming it was copied from another
    estate.set_policy(policy_with(governed_regions=[HOME, EU]))
    real_source, _ = estate.create_image(GOOD_NAME, GOOD_TAGS)
    claimed_source, _ = estate.create_image("payments-api-al2023-1.4.1", GOOD_TAGS)
    copy_id = estate.ec2(EU).copy_image(Name=GOOD_NAME, SourceImageId=real_source, SourceRegion=HOME)["ImageId"]
    capsys.readouterr()

    with unchanged(estate, (HOME, EU)) as recorder:
        outcome = invoke(copy_event(copy_id, claimed_source))

    # Then no provenance is written from it, and the contradiction is counted
    assert outcome["images"][0]["result"] == "claims-refuted: source-image"
    assert writes(recorder) == []
    assert "ClaimsRefuted" in metrics(capsys)


def test_a_copy_event_naming_the_wrong_destination_region_changes_nothing(
    estate: Estate, invoke: Invoke, policy_with: Callable[..., GovernancePolicy], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a copy made in us-east-1, and a CopyImage event claiming it lives in eu-west-1
    estate.set_policy(policy_with(governed_regions=[HOME, EU]))
    source, _ = estate.create_image(GOOD_NAME, GOOD_TAGS)
    copy_id = estate.ec2().copy_image(Name=GOOD_NAME, SourceImageId=source, SourceRegion=HOME)["ImageId"]
    capsys.readouterr()

    with unchanged(estate, (HOME, EU)) as recorder:
        outcome = invoke(copy_event(copy_id, source, region=EU))

    assert outcome["images"][0]["result"] == "gone"
    assert writes(recorder) == []
    assert "ImagesGone" in metrics(capsys)


# ---- a launch permission AWS does not show --------------------------------------------------------------------------


def test_a_launch_permission_ec2_does_not_show_is_not_recorded(
    estate: Estate, invoke: Invoke, judged: tuple[str, str]
) -> None:
    # Given a private AMI, and a ModifyImageAttribute event claiming it was shared with an account and an OU
    image_id, _ = judged
    forged = load_event("modify_image_attribute_launch_permission")
    forged["account"] = ACCOUNT
    forged["detail"]["requestParameters"]["imageId"] = image_id

    with recording_api_calls() as recorder:
        outcome = invoke(forged)

    # Then the inventory records what EC2 shows (no one), and EC2 is not written
    assert outcome["images"][0]["result"] == "launch-permissions-recorded"
    assert [w for w in writes(recorder) if not w.startswith("dynamodb:")] == []
    recorded = estate.inventory_item(image_id)["launch_permissions"]  # type: ignore[index]
    assert (recorded["public"], recorded["accounts"], recorded["ou_arns"]) == (False, [], [])
    assert images_state()[0]["launch"] == []
