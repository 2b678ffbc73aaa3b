"""The report's reader of launch permissions on moto (with the emulator's extensions): what EC2 says each AMI is
shared with, one DescribeImageAttribute call each, and nothing for an AMI deregistered since it was listed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ami_governance.adapters.launch_permissions import LaunchPermissionReader
from ami_governance.models.findings import LaunchPermissions, VerifiedBy
from tests.integration.conftest import HOME
from tests.support import recording_api_calls

pytestmark = pytest.mark.integration

AT = datetime(2030, 6, 15, 6, 0, tzinfo=UTC)
ORG = "arn:aws:organizations::123456789012:organization/o-a1b2c3d4e5"
OU = "arn:aws:organizations::123456789012:ou/o-a1b2c3d4e5/ou-ab12-cdefgh34"


def test_each_ami_is_read_once_and_a_gone_one_is_left_out(estate):
    # Given a public AMI, one shared with an account, an organization and an OU, a private one, and one gone
    ec2 = estate.ec2()
    ec2.disable_image_block_public_access()
    public, shared, private, gone = (estate.create_image(f"app-al2023-1.0.{n}")[0] for n in range(4))
    ec2.modify_image_attribute(ImageId=public, LaunchPermission={"Add": [{"Group": "all"}]})
    grants = [{"UserId": "444455556666"}, {"OrganizationArn": ORG}, {"OrganizationalUnitArn": OU}]
    ec2.modify_image_attribute(ImageId=shared, LaunchPermission={"Add": grants})
    ec2.deregister_image(ImageId=gone)
    reader = LaunchPermissionReader(HOME, now=lambda: AT)

    # When the report reads them
    with recording_api_calls() as api:
        found = reader.read([public, shared, private, gone])

    # Then each existing AMI has what EC2 says, the gone one is absent, and each cost one call
    assert found == {
        public: LaunchPermissions(public, VerifiedBy.DESCRIBE, public=True, recorded_at=AT),
        shared: LaunchPermissions(
            shared, VerifiedBy.DESCRIBE, accounts=("444455556666",), organization_arns=(ORG,), ou_arns=(OU,),
            recorded_at=AT,
        ),
        private: LaunchPermissions(private, VerifiedBy.DESCRIBE, recorded_at=AT),
    }  # fmt: skip
    assert api.operations() == ["DescribeImageAttribute"] * 4
    assert reader.api_calls == 4
