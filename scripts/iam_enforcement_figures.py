"""The IAM enforcement figures of an e2e run: evaluations, time spent evaluating, and denials per emulator.

    AMI_GOVERNANCE_IAM_REPORT=/tmp/iam.jsonl .venv/bin/python -m pytest tests/e2e -p no:cacheprovider -q
    .venv/bin/python scripts/iam_enforcement_figures.py /tmp/iam.jsonl

Each emulator the suite starts (the session's and every variant's) appends its `GET /_governance/iam` answer to
the file when it stops (tests/e2e/conftest.py); this sums them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(path: str) -> int:
    reports = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    evaluations = sum(int(r["evaluations"]) for r in reports)
    seconds = sum(float(r["evaluation_seconds"]) for r in reports)
    denials = [d for r in reports for d in r["denials"]]
    print(f"emulators: {len(reports)}")
    print(f"evaluations: {evaluations}; time evaluating: {seconds:.2f} s", end="")
    print(f"; {1000 * seconds / evaluations:.2f} ms per evaluation" if evaluations else "")
    print(f"denials: {len(denials)}")
    for denial in denials:
        print(f"  {denial['action']} on {denial['resource']}: {denial['message']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
