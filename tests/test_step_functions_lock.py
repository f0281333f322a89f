"""The Step Functions write lock: its contract, against moto's server through the real boto3 client.

Exactly one of two concurrent acquirers wins; a lock whose process is gone (on this host) or that is
older than the time-to-live is broken at once; a live one elsewhere is waited for, visibly, then
refused; only its holder releases it; `mfproj unlock` removes it with the authorization of a deploy.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from mfproj.errors import BackendError, ConflictError
from mfproj.holder import Holder
from tests.conftest import Cli, as_user
from tests.testing.fixtures import ROLE, Flow, make_project, pass_machine
from tests.testing.locks import ELSEWHERE, NAMES, lock_backend, plant_lock


def _locks(sfn: Any) -> list[str]:
    return [m["name"] for m in sfn.list_state_machines()["stateMachines"] if m["name"].startswith("mfproj-lock-")]


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def test_two_concurrent_acquirers_exactly_one_wins(sfn: Any) -> None:
    for _ in range(5):
        barrier = threading.Barrier(2)
        outcomes: list[Any] = []

        def contend(user: str, barrier: threading.Barrier = barrier, outcomes: list[Any] = outcomes) -> None:
            backend = lock_backend()
            backend.caller_identity()  # the STS call happens before the race
            barrier.wait()
            try:
                handle = backend.acquire(NAMES, holder=Holder.current(user), timeout=0.3, waiting=lambda m: None)
                outcomes.append((backend, handle))
            except ConflictError as exc:
                outcomes.append(exc)

        threads = [threading.Thread(target=contend, args=(u,)) for u in ("alice", "bob")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        winners = [o for o in outcomes if isinstance(o, tuple)]
        assert len(winners) == 1, outcomes
        assert any(isinstance(o, ConflictError) and "in progress" in str(o) for o in outcomes)
        backend, handle = winners[0]
        backend.release(handle)
        assert _locks(sfn) == []


def test_a_lock_whose_process_is_gone_is_broken_at_once(sfn: Any) -> None:
    gone = Holder.current("alice")
    gone = Holder(user="alice", host=gone.host, pid=_dead_pid(), started=gone.started, place=gone.place)
    plant_lock(sfn, gone)
    said: list[str] = []
    started = time.monotonic()
    handle = lock_backend().acquire(NAMES, holder=Holder.current("alice"), timeout=30, waiting=said.append)
    assert time.monotonic() - started < 5 and said == []  # broken at once, not waited for
    lock_backend().release(handle)
    assert _locks(sfn) == []


def test_a_lock_of_a_reused_pid_is_broken(sfn: Any) -> None:
    # This very process, but with another start time: the pid was reused by someone else.
    me = Holder.current("alice")
    if me.started is None:
        pytest.skip("no /proc on this machine: start times are unknown")
    plant_lock(sfn, Holder(user="alice", host=me.host, pid=me.pid, started=str(int(me.started) + 1), place=me.place))
    handle = lock_backend().acquire(NAMES, holder=me, timeout=0.5, waiting=lambda m: None)
    lock_backend().release(handle)


def test_an_old_lock_from_another_host_is_broken(sfn: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from mfproj.backends.step_functions import lock

    monkeypatch.setattr(lock, "LOCK_TTL_SECONDS", 1)  # moto's clock cannot be moved: the lock ages for real
    plant_lock(sfn, ELSEWHERE)
    time.sleep(2.1)  # creation dates and Date headers are whole seconds
    said: list[str] = []
    handle = lock_backend().acquire(NAMES, holder=Holder.current("alice"), timeout=30, waiting=said.append)
    assert said == []
    lock_backend().release(handle)


class _AheadClock(dt.datetime):
    """The waiter's clock, 11 minutes ahead of everyone else's."""

    @classmethod
    def now(cls, tz: Any = None) -> Any:
        return dt.datetime.now(tz) + dt.timedelta(minutes=11)


def test_a_waiter_whose_clock_is_ahead_never_breaks_a_live_lock(sfn: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    from mfproj.backends.step_functions import lock

    plant_lock(sfn, ELSEWHERE)  # taken just now, by the holder's clock and the service's
    monkeypatch.setattr(lock, "_dt", types.SimpleNamespace(datetime=_AheadClock, timezone=dt.timezone))
    with pytest.raises(ConflictError):
        lock_backend().acquire(NAMES, holder=Holder.current("alice"), timeout=1.0, waiting=lambda m: None)
    assert len(_locks(sfn)) == 1


def test_a_holder_in_another_pid_namespace_is_not_taken_for_a_dead_process(sfn: Any, aws: Any) -> None:
    import shutil

    if shutil.which("unshare") is None or subprocess.run(["unshare", "--pid", "--fork", "true"]).returncode != 0:
        pytest.skip("unshare --pid is not available here")
    holder = subprocess.Popen(
        ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c", _HOLD_IN_A_NAMESPACE],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        # Same host name, same boot; its pid (1, or 2) is some other process here.
        with pytest.raises(ConflictError):
            lock_backend().acquire(NAMES, holder=Holder.current("alice"), timeout=1.0, waiting=lambda m: None)
        assert len(_locks(sfn)) == 1
    finally:
        holder.kill()
        holder.wait(timeout=10)


_HOLD_IN_A_NAMESPACE = f"""
import os, sys, time
from mfproj.backends.step_functions.backend import StepFunctionsBackend
from mfproj.backends.step_functions.settings import StepFunctionsSettings
from mfproj.backends import registry
from mfproj.holder import Holder
backend = StepFunctionsBackend(StepFunctionsSettings(region="us-east-1", role_arn={ROLE!r}), env=os.environ)
backend.acquire(registry.flow_names("myproj", "user.alice", "HelloFlow"), holder=Holder.current("bob"), timeout=5,
                waiting=lambda m: None)
print("held", flush=True)
time.sleep(60)
"""


def test_a_live_lock_elsewhere_is_waited_for_visibly_then_refused(sfn: Any) -> None:
    plant_lock(sfn, ELSEWHERE)
    said: list[str] = []
    started = time.monotonic()
    with pytest.raises(ConflictError) as caught:
        lock_backend().acquire(NAMES, holder=Holder.current("alice"), timeout=1.0, waiting=said.append)
    assert 1.0 <= time.monotonic() - started < 10
    assert len(said) == 1 and said[0].startswith("waiting for the lock on myproj.user.alice,")
    assert "bob (pid 4242 on build-agent-7)" in said[0]
    assert "bob (pid 4242 on build-agent-7), since" in str(caught.value)
    assert "mfproj unlock" in (caught.value.hint or "")
    assert len(_locks(sfn)) == 1  # the holder's lock is untouched


def _acquire_within(seconds: float, timeout: float) -> BaseException | None:
    """Takes the lock in a thread, joined within `seconds`: a lock loop that spins fails the test, not
    the suite."""
    outcome: list[BaseException | None] = []

    def take() -> None:
        try:
            handle = lock_backend().acquire(NAMES, holder=Holder.current("alice"), timeout=timeout, waiting=print)
            outcome.append(None)
            lock_backend().release(handle)
        except BaseException as exc:  # handed to the test
            outcome.append(exc)

    thread = threading.Thread(target=take, daemon=True)
    thread.start()
    thread.join(timeout=seconds)
    assert outcome, f"acquire did not return within {seconds} s"
    return outcome[0]


def test_a_lock_described_without_its_definition_is_an_error_not_a_loop(
    aws: Any, aws_proxy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An answer that says nothing ({}) cannot tell whose the lock is: it is neither broken nor retried."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_proxy.url)
    aws_proxy.fail("DescribeStateMachine", status=200, body={})
    failed = _acquire_within(20, timeout=2)
    assert isinstance(failed, BackendError), failed
    assert "without its definition" in str(failed)
    assert aws_proxy.count("DeleteStateMachine") == 0  # nothing deleted on the strength of an empty answer
    assert aws_proxy.count("CreateStateMachine") == 1


def test_a_lock_broken_again_and_again_is_retried_at_a_pace_and_within_the_timeout(
    aws: Any, aws_proxy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Something that is not a lock at the lock's name is broken; when it is there again at every look,
    the acquirer does not spin: it paces its tries and gives up at its timeout."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_proxy.url)
    not_a_lock = {"definition": json.dumps({"StartAt": "x", "States": {"x": {"Type": "Succeed"}}}), "status": "ACTIVE"}
    aws_proxy.fail("DescribeStateMachine", status=200, body=not_a_lock)
    started = time.monotonic()
    failed = _acquire_within(20, timeout=1.5)
    assert isinstance(failed, ConflictError), failed
    assert "could not take the lock on myproj.user.alice in 1.5 s" in str(failed)
    assert 1.5 <= time.monotonic() - started < 10
    assert aws_proxy.count("CreateStateMachine") <= 15  # paced, not thousands


def test_a_lock_is_taken_as_soon_as_its_holder_releases_it(sfn: Any) -> None:
    arn = plant_lock(sfn, ELSEWHERE)
    timer = threading.Timer(0.5, lambda: sfn.delete_state_machine(stateMachineArn=arn))
    timer.start()
    try:
        handle = lock_backend().acquire(NAMES, holder=Holder.current("alice"), timeout=20, waiting=lambda m: None)
    finally:
        timer.join()
    lock_backend().release(handle)
    assert _locks(sfn) == []


def test_only_the_holder_releases_a_lock(sfn: Any) -> None:
    holder = lock_backend()
    handle = holder.acquire(NAMES, holder=Holder.current("alice"), timeout=1, waiting=lambda m: None)
    arn, _ = handle
    lock_backend().release((arn, "someone-elses-nonce"))
    assert len(_locks(sfn)) == 1
    holder.release(handle)
    assert _locks(sfn) == []


# --- through the CLI -----------------------------------------------------------------------------


@pytest.fixture
def proj(tmp_path: Path, aws: Any) -> Path:
    return make_project(tmp_path, Flow("HelloFlow", step_functions=pass_machine("v1"), file="hello"))


def test_deploy_waits_for_a_held_lock_then_exits_6_and_changes_nothing(
    cli: Cli, proj: Path, sfn: Any, tmp_path: Path
) -> None:
    plant_lock(sfn, ELSEWHERE)
    result = cli("deploy", env=as_user("alice", tmp_path, MFPROJ_LOCK_TIMEOUT="1"))
    assert result.code == 6, result.stderr
    assert "waiting for the lock on myproj.user.alice, held by bob (pid 4242 on build-agent-7)" in (result.stderr)
    assert "another deploy of myproj.user.alice is in progress" in result.stderr
    assert [m["name"] for m in sfn.list_state_machines()["stateMachines"]] == _locks(sfn)  # nothing deployed
    assert not (tmp_path / "keyring-alice").exists() or not list((tmp_path / "keyring-alice").glob("mfprj-*"))


def test_unlock_needs_the_authorization_of_a_deploy(cli: Cli, proj: Path, sfn: Any, tmp_path: Path) -> None:
    assert cli("deploy", env=as_user("alice", tmp_path)).code == 0
    plant_lock(sfn, ELSEWHERE)
    # Bob on Alice's user branch (METAFLOW_OWNER), without its token.
    refused = cli("unlock", "HelloFlow", env=as_user("bob", tmp_path, METAFLOW_OWNER="alice"))
    assert refused.code == 3, refused.stderr
    assert len(_locks(sfn)) == 1
    done = cli("unlock", "HelloFlow", "-o", "json", env=as_user("alice", tmp_path))
    assert done.code == 0, done.stderr
    [entry] = done.json()["unlocked"]
    assert entry["removed"] is True and entry["held_by"].startswith("bob (pid 4242 on build-agent-7)")
    assert _locks(sfn) == []
    again = cli("unlock", "HelloFlow", env=as_user("alice", tmp_path))
    assert again.code == 0 and "not locked" in again.stderr
    assert cli("deploy", env=as_user("alice", tmp_path)).code == 0


def test_a_lock_left_by_this_very_process_is_broken_when_it_no_longer_holds_it(sfn: Any) -> None:
    # A library user whose earlier call could not release its lock calls again in the same process.
    plant_lock(sfn, Holder.current("alice"), nonce="released-long-ago")
    said: list[str] = []
    handle = lock_backend().acquire(NAMES, holder=Holder.current("alice"), timeout=30, waiting=said.append)
    assert said == []
    # While this process holds it, a second acquisition in the same process waits and is refused.
    with pytest.raises(ConflictError):
        lock_backend().acquire(NAMES, holder=Holder.current("alice"), timeout=0.5, waiting=said.append)
    lock_backend().release(handle)
    assert _locks(sfn) == []
