"""Pure rules for the snapshots a deregistered AMI leaves: the AMI's protection, who deleted a gone snapshot, and
the kinds of decisions and outcomes behind the texts the clean-up records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from ami_governance.models.cleanup import (
    CleanupResult,
    DeregisterCall,
    ImageCleanup,
    KeepReason,
    OutcomeKind,
    ReasonKind,
    SnapshotFacts,
    SnapshotOutcome,
    recorded_outcomes,
)
from ami_governance.models.policy import load_policy_file
from ami_governance.rules.cleanup import (
    apply_cap,
    decide,
    deletions_left,
    outcome_counts,
    settle,
    still_registered,
    summarise,
)
from ami_governance.rules.tags import SystemTag
from tests.conftest import POLICY_FILE

POLICY = load_policy_file(POLICY_FILE)
AGED = POLICY.model_copy(update={"cleanup": POLICY.cleanup.model_copy(update={"min_age_days": 30})})
ACCOUNT = "111122223333"
IMAGE = "ami-0a1b2c3d4e5f60718"
OTHER = "ami-0fedcba9876543210"
NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)
GONE = "gone: not found (already deleted, or in the Recycle Bin)"
PROTECTION = POLICY.protection_tag_key
IMAGE_ID_TAG = POLICY.tag_key(SystemTag.IMAGE_ID)

# Every reason kind, with the text the clean-up records for it (these texts are in inventories already: they
# must not change).
REASON_TEXTS = [
    (KeepReason(ReasonKind.GONE, "not found (already deleted, or in the Recycle Bin)"), GONE),
    (KeepReason(ReasonKind.GONE, "not found"), "gone: not found"),
    (KeepReason(ReasonKind.IMAGE_PROTECTED), "image protected"),
    (KeepReason(ReasonKind.FOREIGN_OWNER, "444455556666"), "owned by account 444455556666"),
    (KeepReason(ReasonKind.IN_USE, f"{IMAGE}, {OTHER}"), f"used by {IMAGE}, {OTHER}"),
    (KeepReason(ReasonKind.PROTECTED, PROTECTION), f"protected by {PROTECTION}"),
    (KeepReason(ReasonKind.BELONGS_TO_OTHER, OTHER), f"tagged as belonging to {OTHER}"),
    (KeepReason(ReasonKind.NOT_COMPLETED, "pending"), "snapshot is pending"),
    (KeepReason(ReasonKind.TOO_YOUNG, "30"), "younger than 30 days"),
    (KeepReason(ReasonKind.CAPPED, "5"), "blast-radius cap of 5 reached"),
    (KeepReason(ReasonKind.DELETE_REFUSED), "in use (DeleteSnapshot refused)"),
    (KeepReason(ReasonKind.UNMARKABLE), "at the tag limit, cannot be marked"),
]
OUTCOMES = [
    (SnapshotOutcome("snap-01", OutcomeKind.DELETED, 8), "deleted"),
    (SnapshotOutcome("snap-01", OutcomeKind.WOULD_DELETE, 8), "would-delete"),
    (SnapshotOutcome("snap-01", OutcomeKind.FAILED, 8, error="UnauthorizedOperation"), "failed: UnauthorizedOperation"),
    (SnapshotOutcome("snap-01", OutcomeKind.DELETED_BY_DEREGISTER_IMAGE, 8), "deleted by DeregisterImage"),
    (SnapshotOutcome("snap-01", OutcomeKind.AWAITING_CALL, 8), "gone: awaiting the DeregisterImage call"),
    *[(SnapshotOutcome.kept("snap-01", reason, 8), f"kept: {text}") for reason, text in REASON_TEXTS],
]
SAMPLES = [outcome for outcome, _ in OUTCOMES]  # deleted, would-delete, failed, by EC2, awaiting, kept...
# What the clean-up tested the recorded texts for before the outcomes had kinds.
OLD_DEFERRED_PREFIXES = ("kept: younger", "kept: snapshot is", "kept: blast-radius")
OLD_METRIC_PREFIXES = (("SnapshotsDeleted", "deleted"), ("SnapshotsWouldDelete", "would-delete"),
                       ("SnapshotsKept", "kept"), ("SnapshotsFailed", "failed"))  # fmt: skip


def facts(**changes):
    values = {"snapshot_id": "snap-01", "owner_id": ACCOUNT, "state": "completed", "volume_size_gb": 8,
              "start_time": NOW - timedelta(days=90), **changes}  # fmt: skip
    return SnapshotFacts(**values)


def test_a_protected_amis_snapshot_is_kept_whatever_else_holds():
    decision = decide(POLICY, "snap-01", facts(), IMAGE, ACCOUNT, [], NOW, image_protected=True)

    assert (decision.delete, decision.reason, decision.size_gb) == (False, KeepReason(ReasonKind.IMAGE_PROTECTED), 8)
    assert decision.reason.text == "image protected"


def test_an_unprotected_amis_free_snapshot_may_go():
    decision = decide(POLICY, "snap-01", facts(), IMAGE, ACCOUNT, [], NOW)

    assert (decision.delete, decision.reason) == (True, None)


def test_a_gone_snapshot_is_gone_even_for_a_protected_ami():
    # (DeregisterImage may have deleted it: the caller asked EC2 to, protection tag or not)
    decision = decide(POLICY, "snap-01", None, IMAGE, ACCOUNT, [], NOW, image_protected=True)

    assert decision.reason is not None
    assert (decision.reason.kind, decision.reason.text) == (ReasonKind.GONE, GONE)


@pytest.mark.parametrize(
    ("snapshot", "used_by", "kind", "text"),
    [
        (None, [], ReasonKind.GONE, GONE),
        (facts(owner_id="444455556666"), [], ReasonKind.FOREIGN_OWNER, "owned by account 444455556666"),
        (facts(), [OTHER, IMAGE, OTHER], ReasonKind.IN_USE, f"used by {IMAGE}, {OTHER}"),
        (facts(tags={PROTECTION: ""}), [], ReasonKind.PROTECTED, f"protected by {PROTECTION}"),
        (facts(tags={IMAGE_ID_TAG: OTHER}), [], ReasonKind.BELONGS_TO_OTHER, f"tagged as belonging to {OTHER}"),
        (facts(state="pending"), [], ReasonKind.NOT_COMPLETED, "snapshot is pending"),
        (facts(start_time=NOW - timedelta(days=29)), [], ReasonKind.TOO_YOUNG, "younger than 30 days"),
    ],
)  # fmt: skip
def test_each_failing_check_keeps_the_snapshot_with_its_kind_and_its_recorded_text(snapshot, used_by, kind, text):
    # Given a snapshot that fails one check / When it is decided / Then the kind says which, the text as recorded
    decision = decide(AGED, "snap-01", snapshot, IMAGE, ACCOUNT, used_by, NOW)

    assert decision.reason is not None
    assert (decision.delete, decision.reason.kind, decision.reason.text) == (False, kind, text)


def test_deletions_over_the_cap_are_kept_as_capped():
    free = [decide(POLICY, s, facts(snapshot_id=s), IMAGE, ACCOUNT, [], NOW) for s in ("snap-01", "snap-02")]

    capped = apply_cap(free, allowed=1, cap=5)

    assert [d.delete for d in capped] == [True, False]
    assert capped[1].reason == KeepReason(ReasonKind.CAPPED, "5")
    assert capped[1].reason.text == "blast-radius cap of 5 reached"


def test_every_reason_kind_has_its_recorded_text():
    assert {reason.kind for reason, _ in REASON_TEXTS} == set(ReasonKind)
    assert [reason.text for reason, _ in REASON_TEXTS] == [text for _, text in REASON_TEXTS]


@pytest.mark.parametrize(("reason", "text"), REASON_TEXTS, ids=[text for _, text in REASON_TEXTS])
def test_a_recorded_reason_reads_back_as_its_kind(reason, text):
    assert KeepReason.parse(text) == reason


@pytest.mark.parametrize(("outcome", "text"), OUTCOMES, ids=[text for _, text in OUTCOMES])
def test_every_outcome_has_its_recorded_text_and_reads_back_as_itself(outcome, text):
    # Given an outcome / Then its text is the one recorded, returned and notified, and that text reads back
    assert outcome.outcome == text
    assert SnapshotOutcome.parse(outcome.snapshot_id, text, outcome.size_gb) == outcome
    assert outcome.as_dict() == {"snapshot_id": "snap-01", "outcome": text, "size_gb": 8}


def test_every_outcome_kind_has_a_text():
    assert {outcome.kind for outcome, _ in OUTCOMES} == set(OutcomeKind)


@pytest.mark.parametrize(("outcome", "text"), OUTCOMES, ids=[text for _, text in OUTCOMES])
def test_deferred_outcomes_are_exactly_those_the_recorded_prefixes_selected(outcome, text):
    # (the sweep revisits a deferred clean-up: a kind drifting from the old semantics would change what it takes up)
    assert outcome.deferred == text.startswith(OLD_DEFERRED_PREFIXES)


@pytest.mark.parametrize(("outcome", "text"), OUTCOMES, ids=[text for _, text in OUTCOMES])
def test_each_outcome_counts_under_the_metric_its_recorded_prefix_chose(outcome, text):
    # (EC2's own deletions start with "deleted": they have always counted as SnapshotsDeleted)
    old = next((name for name, prefix in OLD_METRIC_PREFIXES if text.startswith(prefix)), None)

    assert outcome_counts([outcome], {}) == ({old: 1} if old else {})


def test_only_outcomes_that_changed_since_the_last_attempt_are_counted():
    # Given an earlier attempt that recorded one deletion and one young snapshot
    previous = {"snap-01": SnapshotOutcome("snap-01", OutcomeKind.DELETED, 8),
                "snap-02": SnapshotOutcome.kept("snap-02", KeepReason(ReasonKind.TOO_YOUNG, "30"))}  # fmt: skip
    # When this attempt finds the first as it was, the second deleted now, and a third kept
    now = [previous["snap-01"], SnapshotOutcome("snap-02", OutcomeKind.DELETED, 8),
           SnapshotOutcome.kept("snap-03", KeepReason(ReasonKind.IN_USE, OTHER))]  # fmt: skip

    # Then only the new outcomes count, in the metrics' order
    counts = outcome_counts(now, previous)
    assert counts == {"SnapshotsDeleted": 1, "SnapshotsKept": 1}
    assert list(outcome_counts([now[2], now[1]], {})) == ["SnapshotsDeleted", "SnapshotsKept"]


def test_a_kept_outcome_and_only_a_kept_one_has_a_reason():
    with pytest.raises(ValueError, match="snap-01"):
        SnapshotOutcome("snap-01", OutcomeKind.KEPT)
    with pytest.raises(ValueError, match="snap-01"):
        SnapshotOutcome("snap-01", OutcomeKind.DELETED, reason=KeepReason(ReasonKind.IMAGE_PROTECTED))


def test_recorded_outcomes_read_what_an_earlier_attempt_wrote_and_leave_out_what_states_none():
    # Given the inventory's record of an earlier attempt (DynamoDB numbers are Decimals), with entries no version
    # of the clean-up writes
    records = {
        "snap-01": {"outcome": "deleted", "size_gb": Decimal(8), "at": "2026-11-27T12:00:00Z"},
        "snap-02": {"outcome": "kept: younger than 30 days", "size_gb": Decimal(4)},
        "snap-03": {"outcome": "kept: because", "size_gb": 1},
        "snap-04": {"size_gb": 1},
        "snap-05": "deleted",
        "snap-06": {"outcome": "deleted", "size_gb": "eight"},
    }

    previous = recorded_outcomes(records)

    # Then the outcomes are read as kinds; what states no outcome is left out; an unreadable size is 0
    assert previous == {
        "snap-01": SnapshotOutcome("snap-01", OutcomeKind.DELETED, 8),
        "snap-02": SnapshotOutcome.kept("snap-02", KeepReason(ReasonKind.TOO_YOUNG, "30"), 4),
        "snap-06": SnapshotOutcome("snap-06", OutcomeKind.DELETED, 0),
    }
    assert deletions_left(5, previous.values()) == 3


@pytest.mark.parametrize(
    ("call", "snapshot_id", "outcome"),
    [
        # the state change came first: only the CloudTrail record can say
        (None, "snap-01", "gone: awaiting the DeregisterImage call"),
        (DeregisterCall(False), "snap-01", f"kept: {GONE}"),
        (DeregisterCall(True), "snap-01", "deleted by DeregisterImage"),
        # EC2's answer, where the record has it, decides per snapshot
        (DeregisterCall(True, {"snap-01": "success"}), "snap-01", "deleted by DeregisterImage"),
        (DeregisterCall(True, {"snap-01": "success"}), "snap-02", f"kept: {GONE}"),
        (DeregisterCall(True, {"snap-01": "missing-permissions"}), "snap-01", f"kept: {GONE}"),
    ],
)  # fmt: skip
def test_who_deleted_a_gone_snapshot(call, snapshot_id, outcome):
    gone = decide(POLICY, snapshot_id, None, IMAGE, ACCOUNT, [], NOW)

    settled, to_delete = settle([gone], {}, call, {snapshot_id: Decimal(8)})

    assert ([(o.outcome, o.size_gb) for o in settled], to_delete) == ([(outcome, 8)], [])


def test_settling_keeps_an_earlier_deletion_and_leaves_the_free_snapshots_to_delete():
    # Given an earlier attempt that deleted snap-01, and snap-02 free to go now
    previous = recorded_outcomes({"snap-01": {"outcome": "deleted by DeregisterImage", "size_gb": 8}})
    decisions = [decide(POLICY, "snap-01", None, IMAGE, ACCOUNT, [], NOW),
                 decide(POLICY, "snap-02", facts(snapshot_id="snap-02"), IMAGE, ACCOUNT, [], NOW),
                 decide(POLICY, "snap-03", facts(snapshot_id="snap-03"), IMAGE, ACCOUNT, [OTHER], NOW)]  # fmt: skip

    outcomes, to_delete = settle(decisions, previous, None, {})

    assert [o.outcome for o in outcomes] == ["deleted by DeregisterImage", f"kept: used by {OTHER}"]
    assert outcomes[0].size_gb == 8
    assert [d.snapshot_id for d in to_delete] == ["snap-02"]


AWAITING = SnapshotOutcome("snap-01", OutcomeKind.AWAITING_CALL, 8)
YOUNG = SnapshotOutcome.kept("snap-02", KeepReason(ReasonKind.TOO_YOUNG, "30"), 8)


@pytest.mark.parametrize(
    ("outcomes", "dry_run", "any_snapshots", "failed", "result"),
    [
        ([SnapshotOutcome("snap-01", OutcomeKind.DELETED, 8)], False, True, False, CleanupResult.CLEANED),
        ([SnapshotOutcome("snap-01", OutcomeKind.WOULD_DELETE, 8)], True, True, False, CleanupResult.DRY_RUN),
        ([], False, False, False, CleanupResult.NOTHING_TO_DO),
        ([AWAITING, YOUNG], True, True, False, CleanupResult.AWAITING_CALL),  # awaiting wins over deferred
        ([YOUNG], True, True, False, CleanupResult.DEFERRED),  # deferred wins over dry-run
        ([SnapshotOutcome.kept("snap-01", KeepReason(ReasonKind.IN_USE, OTHER))], False, True, False,
         CleanupResult.CLEANED),
        ([AWAITING, YOUNG], False, True, True, CleanupResult.INCOMPLETE),  # a failure wins over everything
    ],
)  # fmt: skip
def test_the_result_of_a_clean_up(outcomes, dry_run, any_snapshots, failed, result):
    cleanup = summarise(IMAGE, "us-east-1", "inventory", outcomes, dry_run=dry_run, any_snapshots=any_snapshots,
                        failed=failed)  # fmt: skip

    assert cleanup.result is result


def test_the_gb_freed_count_what_is_deleted_would_be_deleted_or_deleted_by_ec2():
    outcomes = SAMPLES[:5]

    cleanup = summarise(IMAGE, "us-east-1", "inventory", outcomes, dry_run=False, any_snapshots=True, failed=False)

    assert (cleanup.gb_freed, cleanup.gb_freed_by_deregister_image) == (24, 8)


def test_a_clean_up_answers_with_the_recorded_texts():
    cleanup = ImageCleanup(IMAGE, "us-east-1", CleanupResult.DEFERRED, "inventory", SAMPLES[-3:])

    answer = cleanup.as_dict()

    assert type(answer["result"]) is str
    assert answer == {
        "image_id": IMAGE, "region": "us-east-1", "result": "deferred", "source": "inventory",
        "snapshots": [{"snapshot_id": "snap-01", "outcome": f"kept: {text}", "size_gb": 8}
                      for _, text in REASON_TEXTS[-3:]],
        "gb_freed": 0, "gb_freed_by_deregister_image": 0, "notified": None, "replicas": {},
    }  # fmt: skip


def test_an_ami_that_still_uses_its_snapshots_is_still_registered():
    users = {"snap-01": {IMAGE: "available", OTHER: "available"}, "snap-02": {}}

    assert still_registered(IMAGE, ["snap-01", "snap-02"], users)
    assert not still_registered(IMAGE, ["snap-02"], users)
    assert not still_registered(IMAGE, ["snap-01"], {"snap-01": {IMAGE: "deregistered"}})
