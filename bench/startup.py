#!/usr/bin/env python3
"""Start-up cost of the commands people type most, against `python -c pass`, in one run.

Writes bench/results/startup.json. Ratios, not absolute times, are what carry between machines.
Usage: python bench/startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import report_header, write_report  # noqa: E402  (after the path is set)

EXAMPLE = ROOT / "examples" / "example_project"


def median_ms(argv: list[str], runs: int, env: dict[str, str]) -> float:
    samples = []
    for _ in range(runs + 1):  # the first run warms the file cache and is dropped
        started = time.perf_counter()
        done = subprocess.run(argv, cwd=EXAMPLE, env=env, capture_output=True)
        samples.append((time.perf_counter() - started) * 1000)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed: {done.stderr.decode()}")
    return statistics.median(samples[1:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "startup.json")
    args = parser.parse_args()
    if args.runs < 10:
        parser.error("--runs must be at least 10")
    env = {**os.environ, "METAFLOW_USER": "alice"}
    python = sys.executable
    commands = {
        "python -c pass": [python, "-c", "pass"],
        "mfproj names -o json": [python, "-m", "mfproj", "names", "-o", "json"],
        "mfproj __complete flows": [python, "-m", "mfproj", "__complete", "flows"],
        "mfproj --help": [python, "-m", "mfproj", "--help"],
        "mfproj --version": [python, "-m", "mfproj", "--version"],
    }
    results = {name: median_ms(argv, args.runs, env) for name, argv in commands.items()}
    baseline = results["python -c pass"]
    report = {
        **report_header("startup"),
        "runs_per_command": args.runs,
        "median_ms": {name: round(ms, 1) for name, ms in results.items()},
        "ratio_to_python": {name: round(ms / baseline, 2) for name, ms in results.items()},
        "targets": {"mfproj names -o json": 7.0, "mfproj __complete flows": 7.0},
    }
    report["targets_met"] = {
        name: report["ratio_to_python"][name] <= limit for name, limit in report["targets"].items()
    }
    write_report(args.out, report, echo=False)
    width = max(len(n) for n in results)
    for name, ms in results.items():
        print(f"{name:<{width}}  {ms:7.1f} ms  {ms / baseline:5.2f}x")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
