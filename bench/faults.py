"""Run the fault-injection suite several times and summarise how long recovery took.

    scripts/with-services.sh .venv/bin/python bench/faults.py --runs 3

Each run is `pytest tests/faults` (private Postgres and Redis, real workers and bots, one fault per
test, every test ending in `sojourn audit`'s checks); the tests append each recovery time to
`$SOJOURN_FAULT_METRICS`. Prints, per metric, how many times it was measured and the median and
worst time, then the runs' pass/fail counts: a failed run is a lost job, a double charge, an
undelivered result or a violated invariant.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    metrics = Path(tempfile.mkdtemp()) / "faults.jsonl"
    passed = failed = 0
    for run in range(1, args.runs + 1):
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/faults"],
            cwd=REPO,
            env={**os.environ, "SOJOURN_FAULT_METRICS": str(metrics)},
            capture_output=True,
            text=True,
        )
        summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else "(no output)"
        print(f"run {run}: {summary}", flush=True)
        passed, failed = (passed + 1, failed) if result.returncode == 0 else (passed, failed + 1)

    seconds: dict[str, list[float]] = defaultdict(list)
    for line in metrics.read_text().splitlines() if metrics.exists() else []:
        entry = json.loads(line)
        seconds[entry["metric"]].append(entry["seconds"])
    print(f"\n{'metric':<78} {'n':>3} {'median':>8} {'worst':>8}")
    for metric, values in seconds.items():
        print(f"{metric:<78} {len(values):>3} {statistics.median(values):>7.1f}s {max(values):>7.1f}s")
    print(f"\nruns passed: {passed} of {args.runs}")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
