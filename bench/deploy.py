#!/usr/bin/env python3
"""Deploying 20 flows against deploying one, in one run: flows deploy concurrently.

Starts moto's server in its own process on 127.0.0.1 and times `mfproj deploy` (the whole command, as
a person runs it, and the deploy use-case alone, in process) for a project of one flow and for one
of --flows flows, first deployments and unchanged redeploys, median of --repeat each. Also counts the
API calls per flow. Writes bench/results/deploy.json. Target: many flows within 3x the time of one.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import bench_env, report_header, start_moto, timed_deploy, write_report  # noqa: E402

ROLE = "arn:aws:iam::123456789012:role/sfn-exec"


def _project(directory: Path, flows: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "flow.asl.json").write_text(
        json.dumps({"StartAt": "a", "States": {"a": {"Type": "Pass", "Result": "${mfproj.flow}", "End": True}}})
    )
    body = '[project]\nname = "bench"\n'
    for index in range(flows):
        body += f'[[flows]]\nname = "Flow{index:02d}"\nstep_functions = "flow.asl.json"\n'
    body += f'[step_functions]\nregion = "us-east-1"\nrole_arn = "{ROLE}"\n'
    (directory / "mfproj.toml").write_text(body)
    return directory


def _in_process(directory: Path, branch: str, env: dict[str, str]) -> tuple[float, int]:
    from mfproj import manifest
    from mfproj.usecases import deploy
    from mfproj.usecases import session as sessions

    session = sessions.open_session(
        manifest.load_manifest(directory / "mfproj.toml"), branch=branch, production=None, env=env
    )
    backend = session.backend("step_functions")
    calls: Counter[str] = Counter()
    for service in ("stepfunctions", "events", "sts"):
        backend.aws.client(service).meta.events.register(  # type: ignore[attr-defined]
            "before-call", lambda model, **_: calls.update([model.name])
        )
    started = time.perf_counter()
    deploy.deploy(session)
    return time.perf_counter() - started, sum(calls.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--flows", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "deploy.json")
    args = parser.parse_args()
    process, url = start_moto()
    work, env = bench_env(url, "deploy")
    try:
        results: dict[str, Any] = {}
        for count in (1, args.flows):
            directory = _project(work / f"p{count}", count)
            first_cli, again_cli, first_core, again_core, calls = [], [], [], [], []
            for attempt in range(args.repeat):
                first_cli.append(timed_deploy(directory, f"c{attempt}", env))
                again_cli.append(timed_deploy(directory, f"c{attempt}", env))
                seconds, made = _in_process(directory, f"p{attempt}", env)
                first_core.append(seconds)
                calls.append(made)
                again_core.append(_in_process(directory, f"p{attempt}", env)[0])
            results[str(count)] = {
                "flows": count,
                "cli_first_deploy_ms": round(statistics.median(first_cli) * 1000, 1),
                "cli_redeploy_ms": round(statistics.median(again_cli) * 1000, 1),
                "core_first_deploy_ms": round(statistics.median(first_core) * 1000, 1),
                "core_redeploy_ms": round(statistics.median(again_core) * 1000, 1),
                "api_calls_per_flow_first_deploy": round(statistics.median(calls) / count, 1),
            }
            print(json.dumps(results[str(count)]), flush=True)
        one, many = results["1"], results[str(args.flows)]
        ratios = {
            key.replace("_ms", ""): round(many[key] / one[key], 2)
            for key in ("cli_first_deploy_ms", "cli_redeploy_ms", "core_first_deploy_ms", "core_redeploy_ms")
        }
        report = {
            **report_header("deploy"),
            "emulator": "moto server (own process) over HTTP on 127.0.0.1",
            "results": results,
            f"ratio_{args.flows}_flows_to_1": ratios,
            "target": 3.0,
            "target_met_cli": ratios["cli_first_deploy"] <= 3.0 and ratios["cli_redeploy"] <= 3.0,
        }
        write_report(args.out, report)
    finally:
        process.terminate()
        process.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
