"""Pure rules for the snapshots a deregistered AMI leaves: the AMI's protection, and who deleted a gone snapshot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ami_governance.models.policy import load_policy_file
from ami_governance.rules.cleanup import DeregisterCall, SnapshotFacts, decide, gone_outcome
from tests.conftest import POLICY_FILE

POLICY = load_policy_file(POLICY_FILE)
ACCOUNT = "111122223333"
IMAGE = "ami-0a1b2c3d4e5f60718"
NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)
GONE = "gone: not found (already deleted, or in the Recycle Bin)"


def facts(**changes):
    values = {"snapshot_id": "snap-01", "owner_id": ACCOUNT, "state": "completed", "volume_size_gb": 8,
              "start_time": NOW - timedelta(days=90), **changes}  # fmt: skip
    return SnapshotFacts(**values)


def test_a_protected_amis_snapshot_is_kept_whatever_else_holds():
    decision = decide(POLICY, "snap-01", facts(), IMAGE, ACCOUNT, [], NOW, image_protected=True)

    assert (decision.delete, decision.reason, decision.size_gb) == (False, "image protected", 8)


def test_an_unprotected_amis_free_snapshot_may_go():
    assert decide(POLICY, "snap-01", facts(), IMAGE, ACCOUNT, [], NOW).delete


def test_a_gone_snapshot_is_gone_even_for_a_protected_ami():
    # (DeregisterImage may have deleted it: the caller asked EC2 to, protection tag or not)
    assert decide(POLICY, "snap-01", None, IMAGE, ACCOUNT, [], NOW, image_protected=True).reason == GONE


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
    assert gone_outcome(call, snapshot_id, GONE) == outcome
