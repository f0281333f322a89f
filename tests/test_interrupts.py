"""Ctrl-C, SIGTERM and kill -9 during a deploy: what landed is put back, no lock stays behind, and the
next deploy on the same host goes ahead at once. Real processes, real signals, moto behind a aws_proxy."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, as_user
from tests.emulators import FaultProxy
from tests.testing.fixtures import Flow, make_project, pass_machine, write_templates

ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:myproj.user.alice.{}"
FLOWS = ("AFlow", "BFlow", "CFlow")


def _flows(version: str) -> list[Flow]:
    return [Flow(flow, step_functions=pass_machine(version)) for flow in FLOWS]


def _write(root: Path, version: str) -> None:
    write_templates(root, *_flows(version))


@pytest.fixture
def proj(tmp_path: Path, aws: Any) -> Path:
    return make_project(tmp_path, *_flows("v1"))


def _versions(sfn: Any) -> dict[str, str]:
    found = {}
    for flow in FLOWS:
        definition = sfn.describe_state_machine(stateMachineArn=ARN.format(flow))["definition"]
        definition = json.loads(definition) if isinstance(definition, str) else definition
        found[flow] = definition["States"]["a"]["Result"]
    return found


def _locks(sfn: Any) -> list[str]:
    return [m["name"] for m in sfn.list_state_machines()["stateMachines"] if m["name"].startswith("mfproj-lock-")]


def _start_deploy(tmp_path: Path, aws_proxy: FaultProxy) -> subprocess.Popen[str]:
    env = {**os.environ, **as_user("alice", tmp_path), "AWS_ENDPOINT_URL": aws_proxy.url}
    return subprocess.Popen(
        [sys.executable, "-m", "mfproj", "deploy"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A child of a test runner may inherit an ignored SIGINT; a person's shell never does.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _wait_for(aws_proxy: FaultProxy, action: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while aws_proxy.count(action) == 0:
        assert time.monotonic() < deadline, f"{action} never came: {aws_proxy.log}"
        time.sleep(0.02)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_deploy_puts_back_what_landed_and_leaves_no_lock(
    cli: Cli, proj: Path, tmp_path: Path, sfn: Any, aws_proxy: FaultProxy, signum: int
) -> None:
    assert cli("deploy", env=as_user("alice", tmp_path)).code == 0
    _write(proj, "v2")
    # The definition updates are slow (as against a distant region): the signal comes while they fly. 3 s:
    # on a loaded machine this process may be late to send it, and once every write has landed an
    # interrupt rightly keeps them (the AllLanded path) instead of rolling back.
    aws_proxy.fail("AWSStepFunctions.UpdateStateMachine", kind="slow", delay=3.0, times=len(FLOWS))
    process = _start_deploy(tmp_path, aws_proxy)
    try:
        _wait_for(aws_proxy, "AWSStepFunctions.UpdateStateMachine")
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert stderr.startswith("error: interrupted; nothing was changed (rolled back "), stderr
    assert _versions(sfn) == dict.fromkeys(FLOWS, "v1")  # the writes in flight landed, then were put back
    assert _locks(sfn) == []
    again = cli("deploy", env=as_user("alice", tmp_path, MFPROJ_LOCK_TIMEOUT="0"))  # no manual step
    assert again.code == 0, again.stderr
    assert _versions(sfn) == dict.fromkeys(FLOWS, "v2")


def test_after_kill_9_the_next_deploy_goes_ahead_at_once(
    cli: Cli, proj: Path, tmp_path: Path, sfn: Any, aws_proxy: FaultProxy
) -> None:
    assert cli("deploy", env=as_user("alice", tmp_path)).code == 0
    _write(proj, "v2")
    # The update hangs (it never reaches the emulator), so the process is killed while it holds its locks.
    aws_proxy.fail("AWSStepFunctions.UpdateStateMachine", kind="hang", delay=30.0)
    process = _start_deploy(tmp_path, aws_proxy)
    try:
        _wait_for(aws_proxy, "AWSStepFunctions.UpdateStateMachine")
        process.kill()
        process.communicate(timeout=30)
    finally:
        process.kill()
    assert len(_locks(sfn)) == 1  # the branch's, left behind by the killed process
    started = time.monotonic()
    result = cli("deploy", env=as_user("alice", tmp_path, MFPROJ_LOCK_TIMEOUT="60"))
    assert result.code == 0, result.stderr
    assert "waiting for the lock" not in result.stderr  # its holder is gone: broken at once
    assert time.monotonic() - started < 20
    assert _versions(sfn) == dict.fromkeys(FLOWS, "v2")
    assert _locks(sfn) == []
