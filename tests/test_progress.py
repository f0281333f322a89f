"""What a person watching sees: warnings as whole lines (repeats counted), an interrupt said in every phase,
and the live view telling a rollback is under way."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, as_user
from tests.terminal import drain
from tests.testing.branch import (
    retemplate,
    two_flow_project,
)

# --- 13. warnings ------------------------------------------------------------------------------------------


def test_warnings_from_threads_are_whole_lines_and_repeats_are_counted(capsys: pytest.CaptureFixture[str]) -> None:
    import threading

    from mfproj.cli import output

    output.flush_warnings()
    threads = [threading.Thread(target=output.warn, args=(f"cannot reach backend {i % 3}",)) for i in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    output.flush_warnings()
    lines = capsys.readouterr().err.splitlines()
    assert all(line.startswith("warning: cannot reach backend ") for line in lines), lines
    assert sorted(lines[:3]) == [f"warning: cannot reach backend {i}" for i in range(3)]
    assert sorted(lines[3:]) == [f"warning: cannot reach backend {i} (10 times in all)" for i in range(3)]


# --- 11. interrupts and rollbacks are always said -------------------------------------------------------------


@pytest.mark.parametrize(
    ("phase", "slow", "said"),
    [
        ("reading", "DescribeStateMachine", "interrupted while reading what is deployed: nothing was changed"),
        ("locking", "CreateStateMachine", "interrupted while taking the locks: nothing was changed"),
    ],
)
def test_ctrl_c_in_every_phase_is_said_on_a_terminal(
    cli: Cli, tmp_path: Path, aws: Any, phase: str, slow: str, said: str
) -> None:
    import fcntl
    import os
    import pty
    import signal
    import struct
    import subprocess
    import sys
    import termios
    import time

    from tests.emulators import FaultProxy

    two_flow_project(tmp_path)
    env = {**os.environ, **as_user("alice", tmp_path)}
    env.pop("CI", None)
    # Deployed first: a redeploy reads before any lock; a change (the tagging API's records show it) takes
    # its locks first (their creates are slow).
    assert cli("deploy", env=as_user("alice", tmp_path)).code == 0
    if phase == "locking":
        retemplate(tmp_path, "TrainFlow", "v2")
    proxy = FaultProxy(aws.url)
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    try:
        proxy.fail(slow, kind="slow", delay=2.0)
        process = subprocess.Popen(
            [sys.executable, "-m", "mfproj", "deploy"],
            cwd=tmp_path,
            env={**env, "AWS_ENDPOINT_URL": proxy.url, "TERM": "xterm"},
            stdin=follower,
            stdout=follower,
            stderr=follower,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        os.close(follower)
        deadline = time.monotonic() + 30
        while proxy.count(slow) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        process.send_signal(signal.SIGINT)
        shown = drain(leader, process)
        assert process.wait(timeout=30) == 130
    finally:
        os.close(leader)
        proxy.stop()
    assert said in shown.decode("utf-8", "replace")
    assert not [m for m in sfn_locks(aws) if m.startswith("mfproj-lock-")]


def sfn_locks(aws: Any) -> list[str]:
    import boto3

    client = boto3.client("stepfunctions", endpoint_url=aws.url, region_name="us-east-1")
    return [m["name"] for m in client.list_state_machines()["stateMachines"]]


def test_the_live_view_says_a_rollback_is_under_way_and_how_far() -> None:
    from mfproj.cli.progress import ProgressView
    from mfproj.usecases.apply import PUT_BACK, ROLLING_BACK

    view = ProgressView(enabled=False)
    for index in range(60):
        view.update(f"Flow{index:02d}", "step_functions", "updated" if index < 30 else "failed")
    for index in range(30):
        view.update(f"Flow{index:02d}", "step_functions", ROLLING_BACK)
    assert view.summary().startswith("rolling back after a failure: 0/30 put back or checked")
    for index in range(12):
        view.update(f"Flow{index:02d}", "step_functions", PUT_BACK)
    assert view.summary().startswith("rolling back after a failure: 12/30 put back or checked")
    assert "failed" not in view.summary()


def test_a_failed_deploy_reports_its_rollback_to_the_live_view(
    tmp_path: Path, sfn: Any, aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mfproj import manifest
    from mfproj.errors import MfprojError
    from mfproj.usecases import deploy, session
    from tests.emulators import FaultProxy

    two_flow_project(tmp_path)
    env = as_user("alice", tmp_path)
    opened = session.open_session(manifest.load(tmp_path), branch=None, production=None, env=env)
    deploy.deploy(opened)
    for flow in ("TrainFlow", "GuardFlow"):
        retemplate(tmp_path, flow, "v2")
    proxy = FaultProxy(aws.url)
    seen: list[tuple[str, str]] = []
    try:
        refused = {"__type": "ValidationException", "message": "injected"}  # not retried
        proxy.fail("TagResource", body=refused, times=1)  # one flow's second write fails: all is undone
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)  # botocore reads the process's environment
        failing = session.open_session(
            manifest.load(tmp_path),
            branch=None,
            production=None,
            env=env,
            progress=lambda flow, backend, state: seen.append((flow, state)),
        )
        with pytest.raises(MfprojError):
            deploy.deploy(failing)
    finally:
        proxy.stop()
    states = [state for _, state in seen]
    assert "rolling back" in states and "put back" in states
    assert states.index("rolling back") < len(states) - 1


def test_the_live_view_says_locked_only_for_backends_that_take_locks(tmp_path: Path, aws: Any, kube: Any) -> None:
    """Argo changes by compare-and-swap: its rows never say `locking`/`locked`."""
    from mfproj import manifest
    from mfproj.usecases import deploy, session
    from tests.testing.fixtures import Flow, make_project, pass_machine, workflow_template

    make_project(tmp_path, Flow("BothFlow", step_functions=pass_machine("v1"), argo_workflows=workflow_template()))
    seen: list[tuple[str, str]] = []
    opened = session.open_session(
        manifest.load(tmp_path),
        branch=None,
        production=None,
        env={**os.environ, **as_user("alice", tmp_path)},
        progress=lambda flow, backend, state: seen.append((backend, state)),
    )
    deploy.deploy(opened)
    assert ("step_functions", "locked") in seen
    assert not [state for backend, state in seen if backend == "argo_workflows" and "lock" in state], seen


@pytest.mark.parametrize("width", [40, 80, 120])
def test_the_wait_line_never_wraps_at_the_terminals_width(width: int) -> None:
    """A live line wider than the terminal wraps, and its first half stays above the final line."""
    from mfproj.cli.progress import RunWatch

    run_id = "sfn-" + "a" * 26 + "." + "b" * 41  # 72 characters, as mfproj names executions
    watch = RunWatch(run_id, clock=lambda: 0.0)
    watch.status = "SUCCEEDED"
    line = watch.line(width)
    assert len(line) < width, line
    assert "SUCCEEDED" in line and line.startswith("sfn-aaaaaaaaaaaa"), line
    assert run_id in RunWatch(run_id, clock=lambda: 0.0).line(200)  # whole where it fits
