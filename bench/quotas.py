#!/usr/bin/env python3
"""Deploying, listing and tearing down within AWS's Step Functions quotas, shared with the whole account.

A proxy in front of moto applies AWS's own token buckets (tests/emulators.AWS_BUCKETS) to an account whose
buckets are at --fill of their size (other teams spent the rest), refilled --speed times AWS's rate (1: AWS's
own clock). For projects of --flows flows, per stage: the exit code, the calls by API, the time, and the
ratio of the time to the quota-bound minimum of the writes the stage needs (the floor no tool can beat:
for each throttled write API, the calls beyond the bucket's starting tokens at its refill rate). Each stage is
run unthrottled too: it passes when it exits 0 within its unthrottled time plus 1.25x the floor.
Writes bench/results/quotas.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import bench_env, report_header, start_moto, write_report  # noqa: E402
from tests.emulators import AWS_BUCKETS, FaultProxy  # noqa: E402  (the proxy is a test helper)

ROLE = "arn:aws:iam::123456789012:role/sfn-exec"
WRITES = (
    "CreateStateMachine",
    "UpdateStateMachine",
    "DeleteStateMachine",
    "PublishStateMachineVersion",
    "TagResource",
    "UntagResource",
)


def _project(directory: Path, flows: int, version: str) -> None:
    lines = ['[project]\nname = "quota"\n']
    for n in range(flows):
        template = directory / f"flow{n:03d}.asl.json"
        template.write_text(
            json.dumps({"StartAt": "a", "States": {"a": {"Type": "Pass", "Result": version, "End": True}}})
        )
        lines.append(f'[[flows]]\nname = "Flow{n:03d}"\nstep_functions = "{template.name}"\n')
    lines.append(f'[step_functions]\nregion = "us-east-1"\nrole_arn = "{ROLE}"\n')
    (directory / "mfproj.toml").write_text("\n".join(lines))


def _floor(calls: Counter[str], tokens: dict[str, float], speed: float) -> float:
    """Seconds the stage's writes need at least: for each write API, the calls beyond the tokens its bucket
    held when the stage began, at the bucket's refill rate (the slowest bucket decides)."""
    needed = 0.0
    for api in WRITES:
        _, refill = AWS_BUCKETS[api]
        beyond = max(0.0, calls.get(api, 0) - tokens.get(api, 0.0))
        needed = max(needed, beyond / (refill * speed))
    return needed


def _stage(name: str, args: list[str], directory: Path, env: dict[str, str], proxy: FaultProxy, *, speed: float) -> Any:
    proxy.log.clear()
    throttled_before = dict(proxy.buckets.throttled) if proxy.buckets else {}
    tokens = {api: proxy.buckets.available(api) for api in WRITES} if proxy.buckets else {}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "mfproj", *args], cwd=directory, env=env, capture_output=True, text=True, timeout=3600
    )
    took = time.perf_counter() - started
    calls = Counter(entry.rsplit(".", 1)[-1] for entry in proxy.log)
    after = dict(proxy.buckets.throttled) if proxy.buckets else {}
    throttled = {
        api: after[api] - throttled_before.get(api, 0) for api in after if after[api] > throttled_before.get(api, 0)
    }
    # The floor counts the writes the stage needs: the calls that went through, not the throttled attempts.
    floor = _floor(calls - Counter(throttled), tokens, speed)
    return {
        "stage": name,
        "exit": done.returncode,
        "seconds": round(took, 2),
        "quota_floor_seconds": round(floor, 2),
        "ratio_to_floor": round(took / floor, 2) if floor > 0 else None,
        "writes": {api: calls[api] - throttled.get(api, 0) for api in WRITES if calls.get(api)},
        "calls": dict(sorted(calls.items())),
        "throttled": throttled,
        "error": done.stderr.strip().splitlines()[0] if done.returncode else None,
    }


STAGES: list[tuple[str, list[str], str | None]] = [  # (stage, arguments, the definitions' version first)
    ("first deploy", ["deploy", "-o", "json"], "v1"),
    ("unchanged redeploy", ["deploy", "-o", "json"], None),
    ("change every definition", ["deploy", "-o", "json"], "v2"),
    ("rollback", ["rollback", "-o", "json"], None),
    ("deployments", ["deployments", "-o", "json"], None),
    ("trigger", ["trigger", "Flow000", "-o", "json"], None),
    ("runs -A", ["runs", "-A", "-o", "json"], None),
    ("namespaces", ["namespaces", "-o", "json"], None),
    ("teardown", ["teardown", "--user", "bench", "--yes", "-o", "json"], None),
]


def run(flows: int, fill: float, speed: float, *, throttled: bool, stages: int = len(STAGES)) -> list[Any]:
    """The stages, against buckets at `fill` (or, `throttled` False, none: the unthrottled time)."""
    moto, url = start_moto()
    proxy = FaultProxy(url)
    try:
        work, env = bench_env(proxy.url, f"quotas{flows}")
        env["MFPROJ_THROTTLE_BUDGET"] = "3600"
        if throttled:
            proxy.throttle(AWS_BUCKETS, fill=fill, speed=speed)
        done = []
        for name, args, version in STAGES[:stages]:
            if version:
                _project(work, flows, version)
            done.append(_stage(name, args, work, env, proxy, speed=speed))
        return done
    finally:
        proxy.stop()
        moto.kill()


def judge(stage: dict[str, Any]) -> None:
    """The limit of a stage: its unthrottled time (the slower of two runs) plus 1.25x the floor of its
    writes. A stage that met throttling is within it when it exits 0 and takes no longer, give or take
    the spread of the two unthrottled runs; one that met none ran unthrottled (its time is an unthrottled
    time: it differs from the other two by this machine's noise only, some 0.3 s on a 2 s stage here)."""
    limit = stage["unthrottled_seconds"] + 1.25 * stage["quota_floor_seconds"]
    stage["limit_seconds"] = round(limit, 2)
    stage["met_throttling"] = bool(stage["throttled"])
    in_time = stage["seconds"] <= limit + stage["unthrottled_spread"]
    stage["within_limit"] = stage["exit"] == 0 and (in_time or not stage["met_throttling"])


def measured(flows: int, fill: float, speed: float, stages: int = len(STAGES)) -> list[Any]:
    """Each stage throttled, beside its unthrottled time and the limit: the unthrottled time plus 1.25x
    the quota-bound floor of its writes. The unthrottled time is the slower of two runs (their spread is
    this machine's noise, reported beside it)."""
    free = [
        {stage["stage"]: stage["seconds"] for stage in run(flows, fill, speed, throttled=False, stages=stages)}
        for _ in range(2)
    ]
    done = run(flows, fill, speed, throttled=True, stages=stages)
    for stage in done:
        runs = [times[stage["stage"]] for times in free]
        stage.update(unthrottled_seconds=max(runs), unthrottled_spread=round(max(runs) - min(runs), 2))
        judge(stage)
        stage["unchanged_writes_nothing"] = None
        if stage["stage"] == "unchanged redeploy":
            calls = stage["calls"]
            stage["unchanged_writes_nothing"] = not stage["writes"] and not calls.get("ListTagsForResource")
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--flows", type=int, nargs="+", default=[40, 200])
    parser.add_argument("--fill", type=float, default=0.1, help="what of each bucket the account has left")
    parser.add_argument("--speed", type=float, default=1.0, help="refill rate, times AWS's (1: AWS's clock)")
    parser.add_argument("--stages", type=int, default=len(STAGES), help="only the first N stages")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "quotas.json")
    options = parser.parse_args()
    report = report_header("quotas")
    report.update(fill=options.fill, speed=options.speed, projects={})
    for flows in options.flows:
        report["projects"][str(flows)] = measured(flows, options.fill, options.speed, options.stages)
    stages = [stage for project in report["projects"].values() for stage in project]
    report["every_stage_exit_0"] = all(stage["exit"] == 0 for stage in stages)
    report["writing_stages_within_limit"] = all(stage["within_limit"] for stage in stages if stage["writes"])
    write_report(options.out, report)


if __name__ == "__main__":
    main()
