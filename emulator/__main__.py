"""`python -m emulator` (what `make emulator` runs): the governance stack on a local AWS endpoint."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from emulator.assembly import REPO_ROOT, AssemblyError
from emulator.deployer import DeployError
from emulator.fault_injection import FAULTS_ENV, FaultSpec
from emulator.iam.evaluator import EvaluatorUnavailable
from emulator.server import GovernanceEmulator


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=4566, help="port (default 4566; 0 picks a free one)")
    parser.add_argument("--policy", type=Path, default=REPO_ROOT / "governance-policy.yaml", help="policy file")
    parser.add_argument("--cdk-out", type=Path, help="deploy this cloud assembly instead of synthesizing")
    parser.add_argument("--workdir", type=Path, help="where the assembly and function logs go (default: a temp dir)")
    parser.add_argument(
        "--principal",
        action="append",
        default=[],
        metavar="ACCESS_KEY=ARN",
        help="the principal CloudTrail names for calls signed with ACCESS_KEY (repeatable)",
    )
    parser.add_argument("--pending-seconds", type=float, default=0.0, help="delay before an AMI reports available")
    parser.add_argument(
        "--cloudtrail-delay-seconds",
        type=float,
        default=0.0,
        help="delay of each CloudTrail event, so that AMI state changes come first (as they usually do on AWS)",
    )
    parser.add_argument(
        "--enforce-iam",
        action="store_true",
        help="evaluate each function's AWS calls against its role's IAM policies and refuse them as AWS does "
        "(needs Node.js and the dev dependency @cloud-copilot/iam-simulate; docs/emulator-iam.md)",
    )
    parser.add_argument(
        "--inject-faults",
        type=float,
        metavar="RATE",
        help="fail this share (0-1) of the functions' AWS calls: throttling, 5xx, read timeouts, lost responses",
    )
    parser.add_argument("--fault-seed", type=int, default=0, help="which calls fail, deterministically (default 0)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # The emulator's own warnings (an entry PutEvents refused, a failure while routing an event) go to stderr.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    principals = dict(item.split("=", 1) for item in args.principal)
    if args.inject_faults:
        # Read by the function registry, which hands it to every worker (emulator/fault_injection.py).
        os.environ[FAULTS_ENV] = FaultSpec(rate=args.inject_faults, seed=args.fault_seed).render()
    emulator = GovernanceEmulator(
        host=args.host,
        port=args.port,
        policy_file=args.policy,
        cdk_out=args.cdk_out,
        workdir=args.workdir,
        principals=principals,
        pending_seconds=args.pending_seconds,
        cloudtrail_delay_seconds=args.cloudtrail_delay_seconds,
        enforce_iam=args.enforce_iam,
    )
    try:
        emulator.start()
    except (AssemblyError, DeployError, EvaluatorUnavailable) as error:
        print(f"error: {error}", file=sys.stderr)
        emulator.stop()
        return 1
    functions = ", ".join(f.name for f in emulator.functions.all()) if emulator.functions else ""
    print(f"AMI governance emulator on {emulator.endpoint_url} (any credentials; region per request)", flush=True)
    print(f"stacks: {', '.join(s.name for s in emulator.stacks)}; functions: {functions}", flush=True)
    print(f"function logs: {emulator.workdir / 'logs'}", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    stopped.wait()
    emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
