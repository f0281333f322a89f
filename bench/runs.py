#!/usr/bin/env python3
"""`mfproj runs` over many executions against a plain boto3 paginator, in one run.

Starts moto's server in its own process on 127.0.0.1, deploys one flow, starts --executions runs
(a few of them tagged `needle`), then measures, each as the median of --repeat:

- the bare paginator: every execution of the state machine, listed page by page;
- `mfproj runs --tag needle`: the same listing plus what mfproj reads to find the needles (runs whose
  name's Bloom filter may hold the tag), which has to go through all executions;
- `mfproj runs` (default namespace, --limit 20): stops after the first page;

and the peak Python memory (tracemalloc) of the paginator and of the needle search, at a tenth of the
executions and at all of them, to show memory does not grow with history. Writes bench/results/runs.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import bench_env, report_header, start_moto, write_report  # noqa: E402

ROLE = "arn:aws:iam::123456789012:role/sfn-exec"


def _measure(function: Callable[[], int], repeat: int) -> tuple[float, int]:
    times, count = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        count = function()
        times.append(time.perf_counter() - started)
    return statistics.median(times), count


def _peak_memory(function: Callable[[], int]) -> int:
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--executions", type=int, default=10_000)
    parser.add_argument("--needles", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "runs.json")
    args = parser.parse_args()

    process, url = start_moto()
    work, env = bench_env(url, "runs")
    try:
        import boto3

        from mfproj import manifest
        from mfproj.backends import registry
        from mfproj.backends.base import RunFilter, RunRequest
        from mfproj.usecases import deploy, runs
        from mfproj.usecases import session as sessions

        (work / "flow.asl.json").write_text(json.dumps({"StartAt": "a", "States": {"a": {"Type": "Succeed"}}}))
        (work / "mfproj.toml").write_text(
            '[project]\nname = "bench"\n[[flows]]\nname = "BenchFlow"\nstep_functions = "flow.asl.json"\n'
            f'[step_functions]\nregion = "us-east-1"\nrole_arn = "{ROLE}"\n'
        )
        loaded = manifest.load_manifest(work / "mfproj.toml")
        session = sessions.open_session(loaded, branch=None, production=False, env=env)
        deploy.deploy(session)
        backend = session.backend("step_functions")
        names = registry.flow_names("bench", session.target.branch, "BenchFlow")
        existing = backend.read(names)
        assert existing is not None and existing.record is not None
        token = existing.record.production_token
        system = [
            "project:bench",
            f"project_branch:{session.target.branch}",
            f"production:{token}",
            "runtime:step-functions",
            "user:bench",
        ]

        def start(index: int) -> None:
            tags = [*system, "needle"] if index % (args.executions // args.needles) == 0 else [*system, f"n{index}"]
            request = RunRequest("BenchFlow", "bench", session.target.branch, f"production:{token}", tuple(tags), {})
            backend.start(existing, request)

        client = boto3.client("stepfunctions", endpoint_url=url, region_name="us-east-1")

        def paginator() -> int:
            count = 0
            for page in client.get_paginator("list_executions").paginate(
                stateMachineArn=existing.identifier, PaginationConfig={"PageSize": 100}
            ):
                count += len(page["executions"])
            return count

        def needle_search() -> int:
            query = RunFilter(namespace=f"production:{token}", tags=("needle",), limit=20)
            return sum(1 for _ in backend.list_runs(existing, query))

        def default_listing() -> int:
            rows = runs.deployment_runs(
                session,
                flows=None,
                backends=None,
                namespace=None,
                all_namespaces=False,
                query=RunFilter(limit=20),
            )
            return sum(1 for _ in rows)

        results: dict[str, Any] = {}
        created = 0
        for stage in (args.executions // 10, args.executions):
            with ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(start, range(created, stage)))
            created = stage
            paginator_s, listed = _measure(paginator, args.repeat)
            needle_s, found = _measure(needle_search, args.repeat)
            default_s, shown = _measure(default_listing, args.repeat)
            results[str(stage)] = {
                "executions": listed,
                "paginator_ms": round(paginator_s * 1000, 1),
                "runs_tag_needle_ms": round(needle_s * 1000, 1),
                "runs_tag_needle_found": found,
                "runs_default_limit_20_ms": round(default_s * 1000, 1),
                "runs_default_rows": shown,
                "ratio_needle_to_paginator": round(needle_s / paginator_s, 2),
                "paginator_peak_kib": round(_peak_memory(paginator) / 1024, 1),
                "runs_needle_peak_kib": round(_peak_memory(needle_search) / 1024, 1),
            }
            print(json.dumps({stage: results[str(stage)]}), flush=True)
        small, full = results[str(args.executions // 10)], results[str(args.executions)]
        report = {
            **report_header("runs"),
            "emulator": "moto server (own process) over HTTP on 127.0.0.1",
            "results": results,
            "target_ratio": 1.5,
            "target_met": full["ratio_needle_to_paginator"] <= 1.5,
            "memory_growth_needle": round(full["runs_needle_peak_kib"] / max(small["runs_needle_peak_kib"], 1), 2),
        }
        write_report(args.out, report)
    finally:
        process.terminate()
        process.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
