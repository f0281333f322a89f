#!/usr/bin/env python3
"""`mfproj deployments` and `mfproj runs -A` against an account that is mostly someone else's, in one run.

1. N state machines in the account (1,000, then 10,000), 60 of them the project's (3 branches x 20 flows):
   `deployments` (the use-case, as the command runs it) against the naive way (list every state machine,
   describe each): API calls and time at each size. Target: calls that do not grow with N, >= 20x faster.
2. 10 branches, each with E executions (E1, then E2): `runs -A --limit 20` against reading the first page
   of executions of each deployment; peak memory of the listing at both sizes. Target: <= 1.5x, flat.

Writes bench/results/deployments.json. Starts moto's server (made as strict as AWS) in its own process.
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
SUCCEED = json.dumps({"StartAt": "a", "States": {"a": {"Type": "Succeed"}}})


def _median(function: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, value = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        value = function()
        times.append(time.perf_counter() - started)
    return statistics.median(times), value


def _counting(clients: list[Any]) -> Callable[[], int]:
    """A counter of the API calls the given boto3 clients make."""
    calls = [0]

    def count(**_: Any) -> None:
        calls[0] += 1

    for client in clients:
        client.meta.events.register("before-call.*.*", count)

    def read() -> int:
        value, calls[0] = calls[0], 0
        return value

    return read


def _project(work: Path, flows: int) -> None:
    (work / "flow.asl.json").write_text(SUCCEED)
    tables = "".join(f'[[flows]]\nname = "Flow{i}"\nstep_functions = "flow.asl.json"\n' for i in range(flows))
    (work / "mfproj.toml").write_text(
        f'[project]\nname = "bench"\n{tables}[step_functions]\nregion = "us-east-1"\nrole_arn = "{ROLE}"\n'
    )


def _naive(client: Any) -> int:
    """The way without mfproj: list every state machine, describe each (8 at a time), keep the project's."""
    arns = [
        m["stateMachineArn"]
        for page in client.get_paginator("list_state_machines").paginate(PaginationConfig={"PageSize": 1000})
        for m in page["stateMachines"]
    ]
    with ThreadPoolExecutor(max_workers=8) as pool:
        described = list(pool.map(lambda arn: client.describe_state_machine(stateMachineArn=arn), arns))
    return sum(1 for d in described if d["name"].startswith("bench."))


def deployments_part(args: argparse.Namespace, url: str, work: Path, env: dict[str, str]) -> dict[str, Any]:
    import boto3

    from mfproj import manifest
    from mfproj.usecases import deploy, deployments
    from mfproj.usecases import session as sessions

    _project(work, args.flows)
    loaded = manifest.load_manifest(work / "mfproj.toml")
    for branch, production in ((None, False), ("exp", False), (None, True)):
        deploy.deploy(sessions.open_session(loaded, branch=branch, production=production, env=env))
    client = boto3.client("stepfunctions", endpoint_url=url, region_name="us-east-1")
    naive_calls = _counting([client])
    results: dict[str, Any] = {}
    created = 0
    for size in args.sizes:
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(
                pool.map(
                    lambda i: client.create_state_machine(name=f"other.team{i}.Flow", definition=SUCCEED, roleArn=ROLE),
                    range(created, size),
                )
            )
        created = size
        naive_calls()
        session = sessions.open_session(loaded, branch=None, production=False, env=env)
        backend = session.backend("step_functions")
        ours = _counting([backend.aws.client(s) for s in ("stepfunctions", "events", "resourcegroupstaggingapi")])  # type: ignore[attr-defined]
        mine_s, listing = _median(lambda session=session: deployments.list_deployments(session), args.repeat)
        mine_calls = ours() // args.repeat
        naive_s, naive_found = _median(lambda: _naive(client), 1)
        results[str(size)] = {
            "state_machines": size + 3 * args.flows,
            "project_deployments": len(listing.deployments),
            "deployments_ms": round(mine_s * 1000, 1),
            "deployments_calls": mine_calls,
            "naive_ms": round(naive_s * 1000, 1),
            "naive_calls": naive_calls(),
            "naive_found": naive_found,
            "speedup": round(naive_s / mine_s, 1),
        }
        print(json.dumps({size: results[str(size)]}), flush=True)
    return results


def runs_part(args: argparse.Namespace, url: str, work: Path, env: dict[str, str]) -> dict[str, Any]:
    import boto3

    from mfproj import manifest
    from mfproj.backends.base import RunFilter, RunRequest
    from mfproj.usecases import deploy, runs
    from mfproj.usecases import session as sessions

    _project(work, 1)
    loaded = manifest.load_manifest(work / "mfproj.toml")
    targets = []
    for index in range(args.branches):
        opened = sessions.open_session(loaded, branch=f"b{index}", production=False, env=env)
        deploy.deploy(opened)
        backend = opened.backend("step_functions")
        targets.append((opened, backend, backend.read(_names(opened))))
    client = boto3.client("stepfunctions", endpoint_url=url, region_name="us-east-1")

    def start(item: tuple[Any, int]) -> None:
        (opened, backend, existing), i = item
        request = RunRequest("Flow0", "bench", opened.target.branch, "production:x", (f"n{i}",), {})
        backend.start(existing, request)

    def first_pages() -> int:
        return sum(
            len(client.list_executions(stateMachineArn=e.identifier, maxResults=100)["executions"])
            for _, _, e in targets
        )

    session = sessions.open_session(loaded, branch=None, production=False, env=env)

    def everything() -> int:
        rows = runs.deployment_runs(
            session,
            flows=None,
            backends=None,
            namespace=None,
            all_namespaces=True,
            query=RunFilter(limit=20),
            all_branches=True,
        )
        return sum(1 for _ in rows)

    results: dict[str, Any] = {}
    created = 0
    for per in args.executions:
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(start, [(t, i) for t in targets for i in range(created, per)]))
        created = per
        pages_s, _ = _median(first_pages, args.repeat)
        mine_s, shown = _median(everything, args.repeat)
        tracemalloc.start()
        everything()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        results[str(per)] = {
            "branches": args.branches,
            "executions_per_deployment": per,
            "runs_all_limit_20_ms": round(mine_s * 1000, 1),
            "rows": shown,
            "first_page_of_each_ms": round(pages_s * 1000, 1),
            "ratio": round(mine_s / pages_s, 2),
            "peak_kib": round(peak / 1024, 1),
        }
        print(json.dumps({per: results[str(per)]}), flush=True)
    return results


def _names(opened: Any) -> Any:
    from mfproj.backends import registry

    return registry.flow_names("bench", opened.target.branch, "Flow0")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--flows", type=int, default=20)
    parser.add_argument("--branches", type=int, default=10)
    parser.add_argument("--executions", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "deployments.json")
    args = parser.parse_args()
    report: dict[str, Any] = {**report_header("deployments"), "emulator": "moto server (own process), strict"}
    for part, function in (("deployments", deployments_part), ("runs_all_branches", runs_part)):
        process, url = start_moto()
        work, env = bench_env(url, part)
        try:
            report[part] = function(args, url, work, env)
        finally:
            process.terminate()
            process.wait(timeout=10)
    largest = report["deployments"][str(args.sizes[-1])]
    smallest = report["deployments"][str(args.sizes[0])]
    runs_small = report["runs_all_branches"][str(args.executions[0])]
    runs_large = report["runs_all_branches"][str(args.executions[-1])]
    report["targets"] = {
        "calls_do_not_grow": largest["deployments_calls"] == smallest["deployments_calls"],
        "speedup_at_least_20x": largest["speedup"] >= 20,
        "runs_ratio_at_most_1_5": runs_large["ratio"] <= 1.5,
        "runs_memory_growth": round(runs_large["peak_kib"] / max(runs_small["peak_kib"], 1), 2),
    }
    write_report(args.out, report)
    print(json.dumps(report["targets"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
