"""Exposure: public AMIs and snapshots, sharing outside the policy, block public access off, unknown sharing."""

from __future__ import annotations

from typing import Any

import pytest

from ami_governance.models.findings import Finding, FindingKind, LaunchPermissions, ResourceType, VerifiedBy
from ami_governance.rules.findings import find_exposure
from tests.unit.findings_support import (
    ACCOUNT,
    NOW,
    ORG,
    PARTNER,
    POLICY,
    REGION,
    STRANGER,
    ami,
    evidence,
    image,
    keys,
    record,
    scan,
    snap,
    snapshot,
)

A = ami(1)
OTHER_ORG = "arn:aws:organizations::999988887777:organization/o-zzz999yyy8"
OU_IN_ORG = "arn:aws:organizations::111122223333:ou/o-abc123def4/ou-ab12-cd34ef56"
OU_OUTSIDE = "arn:aws:organizations::999988887777:ou/o-zzz999yyy8/ou-zz99-yy88xx77"


def shared(**grants: Any) -> LaunchPermissions:
    return LaunchPermissions(A, VerifiedBy.DESCRIBE, **grants)


CASES: list[tuple[str, dict[str, Any], dict[str, Any], list[tuple[str, str]]]] = [
    ("private and unshared", {"images": [image(A)]}, {"permissions": [shared()]}, []),
    ("public per DescribeImages", {"images": [image(A, public=True)]}, {}, [(A, "public-image")]),
    (
        "public per its launch permissions",
        {"images": [image(A)]},
        {"permissions": [shared(public=True)]},
        [(A, "public-image")],
    ),
    (
        "shared with the policy's account and itself",
        {"images": [image(A)]},
        {"permissions": [shared(accounts=(PARTNER, ACCOUNT))]},
        [],
    ),
    (
        "shared with another account",
        {"images": [image(A)]},
        {"permissions": [shared(accounts=(STRANGER,))]},
        [(A, "shared-outside")],
    ),
    (
        "shared with the policy's organization",
        {"images": [image(A)]},
        {"permissions": [shared(organization_arns=(ORG,))]},
        [],
    ),
    (
        "shared with another organization",
        {"images": [image(A)]},
        {"permissions": [shared(organization_arns=(OTHER_ORG,))]},
        [(A, "shared-outside")],
    ),
    (
        "shared with an OU of the policy's organization",
        {"images": [image(A)]},
        {"permissions": [shared(ou_arns=(OU_IN_ORG,))]},
        [],
    ),
    (
        "shared with an OU elsewhere",
        {"images": [image(A)]},
        {"permissions": [shared(ou_arns=(OU_OUTSIDE,))]},
        [(A, "shared-outside")],
    ),
    (
        "public and shared outside: both",
        {"images": [image(A)]},
        {"permissions": [shared(public=True, accounts=(STRANGER,))]},
        [(A, "public-image"), (A, "shared-outside")],
    ),
    (
        "shared per the inventory's record of its events",
        {"images": [image(A)]},
        {"inventory": [record(A, launch_permissions=LaunchPermissions(A, VerifiedBy.INVENTORY, accounts=(STRANGER,)))]},
        [(A, "shared-outside")],
    ),
    (
        "read now overrides the inventory's record",
        {"images": [image(A)]},
        {
            "inventory": [
                record(A, launch_permissions=LaunchPermissions(A, VerifiedBy.INVENTORY, accounts=(STRANGER,)))
            ],
            "permissions": [shared()],
        },
        [],
    ),
    (
        "sharing unknown",
        {"images": [image(A)]},
        {"permissions": [LaunchPermissions(A, VerifiedBy.UNKNOWN)]},
        [(A, "sharing-unknown")],
    ),
    ("a public snapshot", {"snapshots": [snapshot(snap(1), public=True)]}, {}, [(snap(1), "public-snapshot")]),
    ("a private snapshot", {"snapshots": [snapshot(snap(1))]}, {}, []),
    (
        "image block public access off",
        {"image_block_public_access": "unblocked"},
        {},
        [(REGION, "image-block-public-access-off")],
    ),
    ("image block public access on", {"image_block_public_access": "block-new-sharing"}, {}, []),
    (
        "snapshot block public access off",
        {"snapshot_block_public_access": "unblocked"},
        {},
        [(REGION, "snapshot-block-public-access-off")],
    ),
    ("snapshot block public access on", {"snapshot_block_public_access": "block-all-sharing"}, {}, []),
    ("block public access unknown (its call failed)", {"image_block_public_access": None}, {}, []),
]


@pytest.mark.parametrize(("listings", "extra", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_exposure(listings: dict[str, Any], extra: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert keys(find_exposure(POLICY, evidence(scan(**listings), **extra), NOW)) == expected


def test_unknown_sharing_is_said_and_not_actionable() -> None:
    permissions = [LaunchPermissions(A, VerifiedBy.UNKNOWN)]
    (finding,) = find_exposure(POLICY, evidence(scan(images=[image(A)]), permissions=permissions), NOW)
    assert (finding.actionable, finding.reason) == (
        False,
        "its launch permissions could not be read: whether it is shared is unknown",
    )


def test_sharing_outside_names_the_grantees_and_the_command_that_removes_them() -> None:
    permissions = [shared(accounts=(STRANGER, PARTNER), organization_arns=(OTHER_ORG,))]
    (finding,) = find_exposure(POLICY, evidence(scan(images=[image(A)]), permissions=permissions), NOW)
    assert finding.reason == (
        f"shared outside replication.share_with with {STRANGER}, {OTHER_ORG} "
        "(launch permissions as DescribeImageAttribute read them)"
    )
    assert finding.fix == (
        f"aws ec2 modify-image-attribute --region {REGION} --image-id {A} --launch-permission "
        f'"Remove=[{{UserId={STRANGER}}},{{OrganizationArn={OTHER_ORG}}}]"'
        " (or add them to replication.share_with if they are meant to have it)"
    )


def test_a_region_without_block_public_access_is_one_finding_of_the_region() -> None:
    region_scan = scan(snapshot_block_public_access="unblocked")
    assert find_exposure(POLICY, evidence(region_scan), NOW) == [
        Finding(
            kind=FindingKind.EXPOSURE,
            account_id=ACCOUNT,
            region=REGION,
            resource_type=ResourceType.REGION,
            resource_id=REGION,
            reason=f"snapshot block public access is off in {REGION}: snapshots can be made public",
            fix=f"aws ec2 enable-snapshot-block-public-access --region {REGION} --state block-all-sharing",
            detail="snapshot-block-public-access-off",
        )
    ]
