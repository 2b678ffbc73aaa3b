"""Untrusted sources: instances and launch templates whose AMI owner is known and not a trusted one."""

from __future__ import annotations

from typing import Any

import pytest

from ami_governance.models.findings import Finding, FindingKind, ResourceType
from ami_governance.models.policy import parse_policy
from ami_governance.models.scan import (
    InstanceImageMetadataScan,
    InstanceImageRecord,
    LaunchTemplateVersionRecord,
    Listing,
)
from ami_governance.rules.findings import find_untrusted_sources
from tests.unit.findings_support import (
    ACCOUNT,
    FAILED,
    NOW,
    PARTNER,
    POLICY,
    POLICY_DOCUMENT,
    REGION,
    STRANGER,
    ami,
    days_ago,
    evidence,
    image,
    keys,
    scan,
)

OWN, COMMUNITY, AMAZON = ami(1), ami(2), ami(3)
I1, I2 = "i-0123456789abcdef0", "i-0fedcba9876543210"
LT = "lt-0123456789abcdef0"


def ran(
    instance_id: str, image_id: str, owner: str | None, alias: str | None = None, state: str = "running"
) -> InstanceImageRecord:
    return InstanceImageRecord(instance_id, state, days_ago(12.5), image_id, owner, alias, "some-image")


def version(number: int, image_id: str, default: bool = False, latest: bool = False) -> LaunchTemplateVersionRecord:
    return LaunchTemplateVersionRecord(LT, "web", number, default, latest, image_id)


INSTANCES: list[tuple[str, InstanceImageRecord, list[tuple[str, str]]]] = [
    ("an Amazon AMI", ran(I1, AMAZON, "137112412989", "amazon"), []),
    ("its own AMI (self)", ran(I1, OWN, ACCOUNT), []),
    ("a listed trusted account's AMI", ran(I1, COMMUNITY, PARTNER), []),
    ("a community AMI", ran(I1, COMMUNITY, STRANGER), [(I1, "instance")]),
    (
        "a Marketplace AMI, not trusted by this policy",
        ran(I1, COMMUNITY, "679593333241", "aws-marketplace"),
        [(I1, "instance")],
    ),
    ("a terminated instance launches nothing any more", ran(I1, COMMUNITY, STRANGER, state="terminated"), []),
    ("an unknown owner is not an untrusted one", ran(I1, COMMUNITY, None), []),
]


@pytest.mark.parametrize(("metadata", "expected"), [c[1:] for c in INSTANCES], ids=[c[0] for c in INSTANCES])
def test_instances_from_untrusted_owners(metadata: InstanceImageRecord, expected: list[tuple[str, str]]) -> None:
    found = find_untrusted_sources(
        POLICY, evidence(scan(), instance_images=InstanceImageMetadataScan((metadata,))), NOW
    )
    assert keys(found) == expected


def test_trusting_aws_marketplace_trusts_its_alias() -> None:
    document = POLICY_DOCUMENT | {"report": POLICY_DOCUMENT["report"] | {"trusted_owners": ["self", "aws-marketplace"]}}
    metadata = InstanceImageMetadataScan((ran(I1, COMMUNITY, "679593333241", "aws-marketplace"),))
    assert find_untrusted_sources(parse_policy(document), evidence(scan(), instance_images=metadata), NOW) == []


def test_an_untrusted_instance_says_which_ami_and_owner() -> None:
    metadata = InstanceImageMetadataScan((ran(I1, COMMUNITY, STRANGER),))
    assert find_untrusted_sources(POLICY, evidence(scan(), instance_images=metadata), NOW) == [
        Finding(
            kind=FindingKind.UNTRUSTED_SOURCE,
            account_id=ACCOUNT,
            region=REGION,
            resource_type=ResourceType.INSTANCE,
            resource_id=I1,
            reason=(
                f"launched from {COMMUNITY} (some-image), owned by {STRANGER}: not a trusted owner "
                f"(self, amazon, {PARTNER})"
            ),
            fix=(
                "replace the instance with one launched from an AMI of a trusted owner, or, once the AMI is vetted, "
                "add its owner to report.trusted_owners"
            ),
            detail="instance",
            age_days=12,
            related_ids=(COMMUNITY,),
        )
    ]


TEMPLATES: list[tuple[str, dict[str, Any], list[tuple[str, str]]]] = [
    ("its own AMI", {"versions": [version(1, OWN, True, True)]}, []),
    (
        "an AMI an instance shows is a community one",
        {"versions": [version(1, COMMUNITY, True, True)], "metadata": [ran(I2, COMMUNITY, STRANGER)]},
        [(LT, "launch-template")],
    ),
    ("an AMI whose owner nothing shows", {"versions": [version(1, COMMUNITY, True, True)]}, []),
    (
        "an AMI of Amazon's that an instance shows",
        {"versions": [version(1, AMAZON)], "metadata": [ran(I2, AMAZON, "137112412989", "amazon")]},
        [],
    ),
]


@pytest.mark.parametrize(("case", "expected"), [c[1:] for c in TEMPLATES], ids=[c[0] for c in TEMPLATES])
def test_launch_templates_whose_ami_owner_is_known_and_untrusted(
    case: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    region_scan = scan(images=[image(OWN)], launch_template_versions=case["versions"])
    metadata = InstanceImageMetadataScan(tuple(case.get("metadata", ())))
    found = find_untrusted_sources(POLICY, evidence(region_scan, instance_images=metadata), NOW)
    assert [f for f in keys(found) if f[1] == "launch-template"] == expected


def test_one_finding_per_template_names_each_untrusted_version_once() -> None:
    versions = [
        version(2, COMMUNITY, default=True),
        version(2, COMMUNITY, default=True),
        version(5, COMMUNITY, latest=True),
        version(1, OWN),
    ]
    metadata = InstanceImageMetadataScan((ran(I2, COMMUNITY, STRANGER, state="terminated"),))
    region_scan = scan(images=[image(OWN)], launch_template_versions=versions)
    (finding,) = find_untrusted_sources(POLICY, evidence(region_scan, instance_images=metadata), NOW)
    assert (finding.resource_id, finding.name, finding.related_ids, finding.reason) == (
        LT,
        "web",
        (COMMUNITY,),
        f"version 2 launches {COMMUNITY}, owned by {STRANGER}; version 5 launches {COMMUNITY}, owned by {STRANGER}: "
        f"not a trusted owner (self, amazon, {PARTNER})",
    )


@pytest.mark.parametrize("listing", [Listing.IMAGES, Listing.INSTANCE_IMAGE_METADATA])
def test_no_launch_template_is_judged_when_the_owners_are_not_all_known(listing: str) -> None:
    region_scan = scan(launch_template_versions=[version(1, COMMUNITY)], errors={listing: FAILED})
    metadata = InstanceImageMetadataScan((ran(I2, COMMUNITY, STRANGER, state="terminated"),))
    assert find_untrusted_sources(POLICY, evidence(region_scan, instance_images=metadata), NOW) == []
