#!/usr/bin/env python3
"""Two people deploy the same flow and branch at the same moment, many times over.

For each backend (moto's Step Functions server; the Kubernetes API emulator from tests/) and each
round: a clean emulator, then `mfproj deploy --branch shared` as alice and as bob in two processes
started together. Exactly one must win; the other must end with exit 3 (not authorized: it saw the
winner's deployment) or 6 (conflict: it lost the race on the lock or the resourceVersion); and the
deployment must be one coherent version (the definition's owner and namespace are the tags' owner and
token). Writes the outcome counts to bench/results/races.json (or --out).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import report_header, write_report  # noqa: E402  (after the path is set)

ASL = {
    "Comment": "${mfproj.owner}",
    "StartAt": "a",
    "States": {"a": {"Type": "Pass", "Result": "${mfproj.namespace}", "End": True}},
}
ARGO = {
    "spec": {
        "entrypoint": "a",
        "templates": [{"name": "a", "container": {"image": "x", "args": ["${mfproj.owner}", "${mfproj.namespace}"]}}],
    }
}


def _project(directory: Path, backend: str) -> None:
    (directory / "flow.asl.json").write_text(json.dumps(ASL))
    (directory / "flow.json").write_text(json.dumps(ARGO))
    key = "step_functions" if backend == "step-functions" else "argo_workflows"
    template = "flow.asl.json" if key == "step_functions" else "flow.json"
    (directory / "mfproj.toml").write_text(
        f'[project]\nname = "race"\n[[flows]]\nname = "RaceFlow"\n{key} = "{template}"\n'
        '[step_functions]\nregion = "us-east-1"\nrole_arn = "arn:aws:iam::123456789012:role/r"\n'
    )


def _coherent_sfn(url: str) -> bool:
    import boto3

    from mfproj.backends.step_functions.record import decode_record

    client = boto3.client("stepfunctions", endpoint_url=url, region_name="us-east-1")
    arn = "arn:aws:states:us-east-1:123456789012:stateMachine:race.test.shared.RaceFlow"
    described = client.describe_state_machine(stateMachineArn=arn)
    definition = described["definition"]
    definition = json.loads(definition) if isinstance(definition, str) else definition
    tags = {t["key"]: t["value"] for t in client.list_tags_for_resource(resourceArn=arn)["tags"]}
    record = decode_record(tags)
    return (
        record is not None
        and definition["Comment"] == record.owner
        and definition["States"]["a"]["Result"] == f"production:{record.production_token}"
    )


def _leftover_locks(url: str) -> int:
    """Locks left behind. On AWS a create is atomic; moto's is check-then-insert, so two creates at the
    same instant can both insert, and deleting by ARN then removes only one of them."""
    import boto3

    client = boto3.client("stepfunctions", endpoint_url=url, region_name="us-east-1")
    return sum(1 for m in client.list_state_machines()["stateMachines"] if m["name"].startswith("mfproj-lock"))


def _coherent_argo(kube: Any) -> bool:
    template = kube.objects.get(("workflowtemplates", "default", "race.test.shared.raceflow"))
    if template is None:
        return False
    annotations = template["metadata"]["annotations"]
    args = template["spec"]["templates"][0]["container"]["args"]
    return args == [annotations["metaflow/owner"], f"production:{annotations['metaflow/production_token']}"]


def race(
    rounds: int, backend: str, work: Path, env: dict[str, str], reset: Any, coherent: Any, leftovers: Any
) -> dict[str, Any]:
    outcomes: collections.Counter[str] = collections.Counter()
    incoherent = left = 0
    for index in range(rounds):
        reset()
        processes = []
        for user in ("alice", "bob"):
            user_env = {**env, "METAFLOW_USER": user, "METAFLOW_TOKEN_HOME": str(work / f"kr-{index}-{user}")}
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "mfproj", "deploy", "--branch", "shared", "--backend", backend],
                    cwd=work,
                    env=user_env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                )
            )
        codes = sorted(p.wait(timeout=120) for p in processes)
        outcomes[",".join(str(c) for c in codes)] += 1
        if not coherent():
            incoherent += 1
        left += leftovers()
    exactly_one = sum(n for k, n in outcomes.items() if k in ("0,3", "0,6"))
    return {
        "rounds": rounds,
        "outcomes": dict(outcomes),
        "exactly_one_winner": exactly_one,
        "incoherent": incoherent,
        "emulator_duplicate_locks": left,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "races.json")
    args = parser.parse_args()
    if not 1 <= args.rounds <= 500:
        parser.error("--rounds must be between 1 and 500")

    from tests.emulators import MotoServer
    from tests.k8s_emulator import KubernetesEmulator

    results: dict[str, Any] = {}
    moto, kube = MotoServer(), KubernetesEmulator()
    try:
        base = {
            **os.environ,
            "AWS_ENDPOINT_URL": moto.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "CI": "1",
        }
        os.environ.update({k: base[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")})
        for backend in ("step-functions", "argo-workflows"):
            work = Path(tempfile.mkdtemp(prefix=f"mfproj-race-{backend}-"))
            _project(work, backend)
            (work / "kubeconfig").write_text(kube.kubeconfig())
            env = {**base, "KUBECONFIG": str(work / "kubeconfig")}
            started = time.perf_counter()
            if backend == "step-functions":
                results[backend] = race(
                    args.rounds,
                    backend,
                    work,
                    env,
                    moto.reset,
                    lambda: _coherent_sfn(moto.url),
                    lambda: _leftover_locks(moto.url),
                )
            else:
                results[backend] = race(
                    args.rounds, backend, work, env, kube.reset, lambda: _coherent_argo(kube), lambda: 0
                )
            results[backend]["seconds"] = round(time.perf_counter() - started, 1)
            print(backend, json.dumps(results[backend]), flush=True)
    finally:
        moto.stop()
        kube.stop()
    write_report(args.out, {**report_header("races"), "results": results}, echo=False)
    ok = all(r["exactly_one_winner"] == r["rounds"] and r["incoherent"] == 0 for r in results.values())
    print("every round had exactly one winner and a coherent deployment" if ok else "RACE FAILURES")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
