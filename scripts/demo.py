#!/usr/bin/env python3
"""The embedded default: the example project on a local Step Functions emulator (moto's server).

Starts the emulator on 127.0.0.1 (a free port), deploys examples/example_project as a user, to a
custom branch and to production, triggers a tagged production run and follows it, then shows the
production token guarding the deployment. Nothing leaves this machine: the keyring is a temporary
directory and AWS credentials are fake.
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

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the emulator's request log is noise here
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
    keyrings = Path(tempfile.mkdtemp(prefix="mfproj-demo-"))
    base_env = {
        **os.environ,
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "demo",
        "AWS_SECRET_ACCESS_KEY": "demo",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "NO_COLOR": "1",
    }
    print(f"# Step Functions emulator (moto) on {url}; keyrings in {keyrings}\n")

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
        # The example's ProjectFlow also has an Argo template; the embedded default is Step Functions only.
        sfn = ("--backend", "step-functions")
        mfproj("alice", "deploy", *sfn)
        mfproj("alice", "deploy", *sfn, "--branch", "better_version")
        mfproj("alice", "deploy", *sfn, "--production")
        mfproj("alice", "deploy", *sfn, "--production")  # unchanged
        mfproj("alice", "trigger", "ProjectFlow", *sfn, "--production", "--tag", "demo:run", "--wait", "-o", "json")
        print("# Bob has no production token, so he cannot overwrite production:")
        mfproj("bob", "deploy", *sfn, "--production", expect=3)
        print("# Alice shares the token; Bob authorizes it and deploys:")
        share = mfproj("alice", "token", "share", "--production")
        mfproj("bob", "token", "authorize", "--production", "-", stdin=share)
        mfproj("bob", "deploy", *sfn, "--production")
        mfproj("bob", "token", "list")
    finally:
        server.stop()
    print("demo finished: every step above ran against the local emulator")
    return 0


if __name__ == "__main__":
    sys.exit(main())
