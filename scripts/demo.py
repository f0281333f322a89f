#!/usr/bin/env python3
"""The embedded default: the example project on local emulators of both backends.

Starts moto's server (Step Functions, EventBridge, STS) and the Kubernetes API emulator with its small
Argo controller (tests/k8s_emulator.py: Workflows go Pending, Running, Succeeded) on 127.0.0.1, free
ports; deploys examples/example_project as a user, to a custom branch and to production on both
backends, triggers a tagged production run on each and follows it, pauses and resumes production's
schedules, then shows the production token guarding the deployment. Nothing leaves this machine: the
keyring is a temporary directory, AWS credentials are fake, the cluster is the emulator.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "example_project"


def main() -> int:
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        print("the demo needs moto's server: pip install -e '.[demo]'", file=sys.stderr)
        return 2
    import logging

    # The emulator logs its request lines, and a traceback for each call it lacks (mfproj asks once for
    # ValidateStateMachineDefinition, and goes on without it): noise here.
    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    request = urllib.request.Request(
        f"{url}/moto-api/config",
        data=json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(request, timeout=10).read()
    sys.path.insert(0, str(ROOT))
    from tests.k8s_emulator import KubernetesEmulator, WorkflowController

    cluster = KubernetesEmulator()
    controller = WorkflowController(cluster).start()
    keyrings = Path(tempfile.mkdtemp(prefix="mfproj-demo-"))
    kubeconfig = keyrings / "kubeconfig"
    kubeconfig.write_text(cluster.kubeconfig(), encoding="utf-8")
    base_env = {
        **os.environ,
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "demo",
        "AWS_SECRET_ACCESS_KEY": "demo",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "KUBECONFIG": str(kubeconfig),
        "NO_COLOR": "1",
        "COLUMNS": "80",
    }
    print(f"# Step Functions emulator (moto) on {url}; Kubernetes API emulator on {cluster.url}")
    print(f"# keyrings and the kubeconfig in {keyrings}\n")

    def mfproj(user: str, *args: str, expect: int = 0, stdin: str | None = None) -> str:
        env = {**base_env, "METAFLOW_USER": user, "METAFLOW_TOKEN_HOME": str(keyrings / user)}
        print(f"$ METAFLOW_USER={user} mfproj {shlex.join(args)}", flush=True)
        done = subprocess.run(
            [sys.executable, "-m", "mfproj", *args],
            cwd=EXAMPLE,
            env=env,
            input=stdin,
            text=True,
            capture_output=True,
            timeout=300,
        )
        sys.stdout.write(done.stderr + done.stdout + "\n")
        if done.returncode != expect:
            raise SystemExit(f"demo: expected exit code {expect}, got {done.returncode}")
        return done.stdout

    try:
        mfproj("alice", "names")
        mfproj("alice", "deploy")  # both backends: each flow where it has a template
        mfproj("alice", "deploy", "--branch", "better_version")
        mfproj("alice", "deploy", "--production")
        mfproj("alice", "deploy", "--production")  # unchanged
        for backend in ("step-functions", "argo-workflows"):
            mfproj(
                "alice",
                "trigger",
                "ProjectFlow",
                "--backend",
                backend,
                "--production",
                "--tag",
                "demo:run",
                "--wait",
                "-o",
                "json",
            )
        mfproj("alice", "runs", "-A")
        mfproj("alice", "deployments")
        print("# An incident: production's schedules paused, then resumed:")
        mfproj("alice", "schedules", "pause", "--production")
        mfproj("alice", "schedules", "resume", "--production")
        print("# Bob has no production token, so he cannot overwrite production:")
        mfproj("bob", "deploy", "--production", expect=3)
        print("# Alice shares the token; Bob authorizes it and deploys:")
        share = mfproj("alice", "token", "share", "--production")
        mfproj("bob", "token", "authorize", "--production", "-", stdin=share)
        mfproj("bob", "deploy", "--production")
        mfproj("bob", "token", "list")
    finally:
        controller.stop()
        cluster.stop()
        server.stop()
    print("demo finished: every step above ran against the local emulators (a real cluster and AWS account")
    print("are what you deploy to: see the README's 'Trying Argo Workflows locally')")
    return 0


if __name__ == "__main__":
    sys.exit(main())
