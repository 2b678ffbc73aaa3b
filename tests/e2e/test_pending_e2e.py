"""AMIs that stay pending for a while, as in AWS (`--pending-seconds`): enforce mode waits for `available`."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from emulator.assembly import synthesize
from tests.e2e.conftest import PREFIX, REPO_ROOT, start_emulator, stop_emulator

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]


@pytest.fixture(scope="module")
def enforcing_emulator_with_pending_amis(tmp_path_factory):
    policy = yaml.safe_load((REPO_ROOT / "governance-policy.yaml").read_text())
    policy["mode"] = "enforce"
    policy["remediation"] = {"action": "disable"}
    workdir = tmp_path_factory.mktemp("pending")
    policy_file = Path(workdir) / "policy.yaml"
    policy_file.write_text(yaml.safe_dump(policy))
    running = start_emulator(
        synthesize(workdir / "cdk.out", policy_file), workdir / "emulator", "--pending-seconds", "1"
    )
    yield running
    stop_emulator(running)


def test_a_pending_ami_is_announced_at_once_and_disabled_once_available(enforcing_emulator_with_pending_amis):
    emulator = enforcing_emulator_with_pending_amis
    ec2 = emulator.client("ec2")
    image_id = ec2.create_image(InstanceId=emulator.launch_instance(), Name="scratch build")["ImageId"]

    # Right after the call the AMI is pending, as AWS shows it
    assert ec2.describe_images(ImageIds=[image_id])["Images"][0]["State"] == "pending"

    ran = emulator.drain()

    # The CreateImage event judged it while pending: verdict and notice at once, remediation deferred...
    judged = [image for i in ran if i["result"] for image in i["result"]["images"] if image["image_id"] == image_id]
    assert judged[0]["remediation"] == "deferred: the AMI is pending; applied once it is available"
    assert judged[0]["notified"]
    # ...and applied by the `available` event a second later
    assert judged[-1]["remediation"].startswith("disabled the AMI")
    assert ec2.describe_images(ImageIds=[image_id], IncludeDisabled=True)["Images"][0]["State"] == "disabled"
    assert emulator.tags_of(image_id)[f"{PREFIX}remediation"] == "disabled"
