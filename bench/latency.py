#!/usr/bin/env python3
"""Deploying 20 flows against deploying one, with 80 ms between mfproj and each API (a distant region).

moto's server (own process) and the Kubernetes API emulator each sit behind a proxy that holds every
request for --latency seconds before forwarding it. Times `mfproj deploy` (the whole command, as a
person runs it) for a project of one flow and one of --flows flows, each flow on both backends: a first
deploy (a new branch) and an unchanged redeploy, median of --repeat each, in one run.
Targets: 20 flows within 1.5x of one flow; an unchanged redeploy of 20 within 1.3x of one.
Writes bench/results/latency.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import bench_env, report_header, start_moto, timed_deploy, write_report  # noqa: E402
from tests.emulators import Fault, FaultProxy  # noqa: E402
from tests.k8s_emulator import KubernetesEmulator, kubeconfig_for  # noqa: E402

ROLE = "arn:aws:iam::123456789012:role/sfn-exec"
TEMPLATE = """\
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
spec:
  entrypoint: start
  templates:
    - name: start
      container: {image: alpine, command: [echo, "${mfproj.flow} ${mfproj.namespace}"]}
"""


def _project(directory: Path, flows: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "flow.asl.json").write_text(
        json.dumps({"StartAt": "a", "States": {"a": {"Type": "Pass", "Result": "${mfproj.flow}", "End": True}}})
    )
    (directory / "flow.yaml").write_text(TEMPLATE)
    body = '[project]\nname = "bench"\n'
    for index in range(flows):
        body += f'[[flows]]\nname = "Flow{index:02d}"\nstep_functions = "flow.asl.json"\nargo_workflows = "flow.yaml"\n'
    body += f'[step_functions]\nregion = "us-east-1"\nrole_arn = "{ROLE}"\n'
    (directory / "mfproj.toml").write_text(body)
    return directory


def _delayed(upstream: str, latency: float) -> FaultProxy:
    proxy = FaultProxy(upstream)
    proxy.faults.append(Fault(".*", kind="slow", delay=latency))  # every request, both protocols
    return proxy


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--flows", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.080)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "latency.json")
    args = parser.parse_args()
    process, url = start_moto()
    kube = KubernetesEmulator()
    aws_proxy, kube_proxy = _delayed(url, args.latency), _delayed(kube.url, args.latency)
    work, env = bench_env(aws_proxy.url, "latency")
    (work / "kubeconfig").write_text(kubeconfig_for(kube_proxy.url))
    env["KUBECONFIG"] = str(work / "kubeconfig")
    try:
        results: dict[str, Any] = {}
        for count in (1, args.flows):
            directory = _project(work / f"p{count}", count)
            first, again = [], []
            requests_before = len(aws_proxy.log) + len(kube_proxy.log)
            for attempt in range(args.repeat):
                first.append(timed_deploy(directory, f"b{attempt}", env))
                again.append(timed_deploy(directory, f"b{attempt}", env))
            requests = len(aws_proxy.log) + len(kube_proxy.log) - requests_before
            results[str(count)] = {
                "flows": count,
                "deployments": count * 2,
                "first_deploy_ms": round(statistics.median(first) * 1000, 1),
                "unchanged_redeploy_ms": round(statistics.median(again) * 1000, 1),
                "requests_per_deploy_and_redeploy": round(requests / args.repeat, 1),
            }
            print(json.dumps(results[str(count)]), flush=True)
        one, many = results["1"], results[str(args.flows)]
        ratios = {
            "first_deploy": round(many["first_deploy_ms"] / one["first_deploy_ms"], 2),
            "unchanged_redeploy": round(many["unchanged_redeploy_ms"] / one["unchanged_redeploy_ms"], 2),
        }
        report = {
            **report_header("latency"),
            "latency_per_request_ms": args.latency * 1000,
            "emulators": "moto server (own process) and the Kubernetes API emulator, each behind a delaying proxy",
            "results": results,
            f"ratio_{args.flows}_flows_to_1": ratios,
            "targets": {"first_deploy": 1.5, "unchanged_redeploy": 1.3},
            "targets_met": ratios["first_deploy"] <= 1.5 and ratios["unchanged_redeploy"] <= 1.3,
        }
        write_report(args.out, report)
        print(json.dumps(report[f"ratio_{args.flows}_flows_to_1"]), "targets met:", report["targets_met"])
    finally:
        aws_proxy.stop()
        kube_proxy.stop()
        kube.stop()
        process.terminate()
        process.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
