"""A Step Functions record that cannot lie: its definition digest finds a deploy killed between the
definition and the record, and the next deploy converges."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import as_user
from tests.testing.branch import (
    ARN,
    retemplate,
    sfn_name,
    two_flow_project,
)

# --- 2. a record that cannot lie ----------------------------------------------------------------------------


def test_a_deploy_killed_between_definition_and_record_converges(tmp_path: Path, sfn: Any, aws: Any) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.emulators import FaultProxy

    two_flow_project(tmp_path)
    env = {**os.environ, **as_user("alice", tmp_path)}
    run = [sys.executable, "-m", "mfproj", "deploy", "TrainFlow"]
    assert subprocess.run(run, env=env, cwd=tmp_path, capture_output=True, timeout=60).returncode == 0
    name = sfn_name("TrainFlow", "user.alice")
    retemplate(tmp_path, "TrainFlow", "v2")
    proxy = FaultProxy(aws.url)
    try:
        proxy.fail("TagResource", kind="hang", delay=30)
        process = subprocess.Popen(
            run,
            env={**env, "AWS_ENDPOINT_URL": proxy.url},
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while proxy.count("TagResource") == 0 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        assert proxy.count("UpdateStateMachine") == 1
        process.send_signal(signal.SIGKILL)  # after the definition was updated, before its tags were
        process.wait(timeout=10)
    finally:
        proxy.stop()
    assert "v2" in json.dumps(sfn.describe_state_machine(stateMachineArn=ARN.format(name))["definition"])
    from tests.conftest import run_in_process

    listing = run_in_process(("deployments", "-o", "json"), env, tmp_path, None)
    train = next(d for d in listing.json() if d["flow"] == "TrainFlow")
    assert train["state"] == "drift" and "record" in train["drift"]
    plan = run_in_process(("deploy", "TrainFlow", "-o", "json", "--dry-run"), env, tmp_path, None)
    assert plan.json()["deployments"][0]["action"] == "update"
    assert plan.json()["deployments"][0]["changes"] == ["record"]
    assert run_in_process(("deploy", "TrainFlow"), env, tmp_path, None).code == 0
    listing = run_in_process(("deployments", "-o", "json"), env, tmp_path, None)
    assert next(d for d in listing.json() if d["flow"] == "TrainFlow")["state"] == "in-sync"
