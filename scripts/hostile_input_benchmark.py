"""How long the enforce Lambda takes, and how many AWS calls it makes, for a CreateTags naming many resources: EC2's
maximum of 1,000 AMI ids none of which exists, 1,000 real AMIs, and 1,001 ids (over the maximum: refused).

    .venv/bin/python scripts/hostile_input_benchmark.py [--real 1000]

On moto, in-process: the figures are the product's own work plus moto's, not AWS's latencies; the call counts are
what they would be on AWS (tests/integration/test_hostile_properties.py asserts the bound).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "lambdas")]

from tests.support import LOCAL_LAMBDA_ENVIRONMENT  # noqa: E402

os.environ.update(LOCAL_LAMBDA_ENVIRONMENT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--real", type=int, default=1000, help="real AMIs in the third case (default 1000)")
    args = parser.parse_args()

    import boto3
    from moto import mock_aws

    from ami_governance.models.policy import load_policy_file
    from ami_governance.services import wiring
    from emulator import moto_extensions
    from tests.strategies import create_tags_naming
    from tests.support import FakeLambdaContext, create_home_resources, recording_api_calls

    moto_extensions.apply()
    with mock_aws():
        resources = create_home_resources(load_policy_file(ROOT / "governance-policy.yaml").model_dump_json())
        os.environ["NOTIFICATION_TOPIC_ARN"] = resources.topic_arn
        wiring.reset()
        from handlers.enforce import handler

        ec2 = boto3.client("ec2", region_name="us-east-1")
        real = [
            ec2.register_image(Name=f"bench-{index}", RootDeviceName="/dev/xvda")["ImageId"]
            for index in range(args.real)
        ]
        unknown = [f"ami-{index:017x}" for index in range(1, 1002)]
        cases: list[tuple[str, list[str]]] = [
            ("1,000 unknown AMI ids", unknown[:1000]),
            (f"{args.real:,} real AMIs", real),
            ("1,001 AMI ids (over EC2's limit)", unknown[:1001]),
        ]
        print(f"{'case':<34} {'status':<9} {'seconds':>8} {'AWS calls':>10}  calls by operation")
        for name, ids in cases:
            event = create_tags_naming(ids, {"Owner": "payments-team"})
            with recording_api_calls() as api:
                started = time.perf_counter()
                result: Any = handler(event, FakeLambdaContext())
                elapsed = time.perf_counter() - started
            counts = Counter(f"{service}:{operation}" for service, operation in api.calls)
            shown = ", ".join(f"{op} {n}" for op, n in counts.most_common())
            print(f"{name:<34} {result['status']:<9} {elapsed:>8.2f} {len(api.calls):>10}  {shown}")


if __name__ == "__main__":
    main()
