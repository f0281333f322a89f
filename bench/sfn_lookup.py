#!/usr/bin/env python3
"""Finding a deployment among many state machines: mfproj's ARN lookup against a list scan.

Starts moto's server on 127.0.0.1, fills the account with --machines state machines, and in one run
measures (a) deploying one new flow with mfproj and counting its API calls, at an empty account and
at a full one, and (b) the reference's way to find one name: paging through list_state_machines.
Writes bench/results/sfn_lookup.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import report_header, write_report  # noqa: E402  (after the path is set)

ROLE = "arn:aws:iam::123456789012:role/sfn-exec"
DEFINITION = json.dumps({"StartAt": "a", "States": {"a": {"Type": "Succeed"}}})


def _project(directory: Path) -> Path:
    (directory / "flow.asl.json").write_text(
        json.dumps({"StartAt": "a", "States": {"a": {"Type": "Pass", "Result": "${mfproj.namespace}", "End": True}}})
    )
    manifest = directory / "mfproj.toml"
    manifest.write_text(
        '[project]\nname = "bench"\n[[flows]]\nname = "BenchFlow"\nstep_functions = "flow.asl.json"\n'
        f'[step_functions]\nregion = "us-east-1"\nrole_arn = "{ROLE}"\n'
    )
    return manifest


def _deploy_once(manifest_path: Path, branch: str, env: dict[str, str]) -> tuple[float, Counter[str]]:
    from mfproj import manifest
    from mfproj.usecases import deploy
    from mfproj.usecases import session as sessions

    session = sessions.open_session(manifest.load_manifest(manifest_path), branch=branch, production=False, env=env)
    backend = session.backend("step_functions")
    calls: Counter[str] = Counter()
    for service in ("stepfunctions", "events", "sts"):
        client = backend.aws.client(service)  # type: ignore[attr-defined]
        client.meta.events.register("before-call", lambda model, **_: calls.update([model.name]))
    started = time.perf_counter()
    deploy.deploy(session)
    return time.perf_counter() - started, calls


def _lookup(manifest_path: Path, branch: str, env: dict[str, str]) -> float:
    """mfproj's lookup alone: build the ARN, describe it, read its tags and schedule."""
    from mfproj import manifest
    from mfproj.backends import registry
    from mfproj.usecases import session as sessions

    session = sessions.open_session(manifest.load_manifest(manifest_path), branch=branch, production=False, env=env)
    backend = session.backend("step_functions")
    # Client creation and the one STS call per process stay outside the timing, as in _deploy_once.
    backend.caller_identity()  # type: ignore[attr-defined]
    backend.aws.client("stepfunctions"), backend.aws.client("events")  # type: ignore[attr-defined]
    names = registry.flow_names("bench", session.target.branch, "BenchFlow")
    started = time.perf_counter()
    assert backend.read(names) is not None
    return time.perf_counter() - started


def _scan(client: Any, name: str) -> tuple[float, int]:
    """The reference's lookup: page through every state machine until the name turns up."""
    started = time.perf_counter()
    pages = 0
    found = None
    for page in client.get_paginator("list_state_machines").paginate():
        pages += 1
        for machine in page["stateMachines"]:
            if machine["name"] == name:
                found = machine
                break
        if found:
            break
    if found:
        client.describe_state_machine(stateMachineArn=found["stateMachineArn"])
    return time.perf_counter() - started, pages + (1 if found else 0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--machines", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "sfn_lookup.json")
    args = parser.parse_args()

    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    home = Path(tempfile.mkdtemp(prefix="mfproj-bench-"))
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "METAFLOW_USER": "bench",
        "METAFLOW_TOKEN_HOME": str(home / "keyring"),
    }
    os.environ.update(env)
    client = boto3.client("stepfunctions", endpoint_url=url, region_name="us-east-1")
    manifest_path = _project(home)
    try:
        results: dict[str, Any] = {}
        for label, count in (("empty", 0), ("full", args.machines)):
            existing = len(client.list_state_machines(maxResults=1000)["stateMachines"])
            for index in range(existing, count):
                client.create_state_machine(name=f"filler-{index:05d}", definition=DEFINITION, roleArn=ROLE)
            create_times, redeploy_times, create_calls, redeploy_calls = [], [], [], []
            for attempt in range(args.repeat):
                seconds, calls = _deploy_once(manifest_path, f"{label}_{attempt}", env)
                create_times.append(seconds)
                create_calls.append(sum(calls.values()))
                seconds, calls = _deploy_once(manifest_path, f"{label}_{attempt}", env)
                redeploy_times.append(seconds)
                redeploy_calls.append(sum(calls.values()))
            lookup_times = [_lookup(manifest_path, f"{label}_{a}", env) for a in range(args.repeat)]
            scan_times, scan_calls = [], []
            for attempt in range(args.repeat):
                # First deployments scan everything (the name is not there yet): the worst case.
                seconds, calls_made = _scan(client, f"bench.test.absent_{attempt}.BenchFlow")
                scan_times.append(seconds)
                scan_calls.append(calls_made)
            results[label] = {
                "state_machines": count,
                "mfproj_first_deploy_ms": round(statistics.median(create_times) * 1000, 1),
                "mfproj_redeploy_ms": round(statistics.median(redeploy_times) * 1000, 1),
                "mfproj_api_calls_first_deploy": create_calls,
                "mfproj_api_calls_redeploy": redeploy_calls,
                "mfproj_lookup_ms": round(statistics.median(lookup_times) * 1000, 1),
                "scan_lookup_ms": round(statistics.median(scan_times) * 1000, 1),
                "scan_api_calls": scan_calls[0],
            }
        full = results["full"]
        report = {
            **report_header("sfn_lookup"),
            "emulator": "moto server over HTTP on 127.0.0.1",
            "results": results,
            "api_calls_constant": results["empty"]["mfproj_api_calls_first_deploy"]
            == full["mfproj_api_calls_first_deploy"],
            "scan_over_mfproj_lookup": round(full["scan_lookup_ms"] / full["mfproj_lookup_ms"], 1),
            "scan_over_mfproj_redeploy": round(full["scan_lookup_ms"] / full["mfproj_redeploy_ms"], 1),
            "scan_over_mfproj_first_deploy": round(full["scan_lookup_ms"] / full["mfproj_first_deploy_ms"], 1),
        }
        write_report(args.out, report)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
