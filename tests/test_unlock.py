"""`mfproj unlock --all` and teardown remove the branch's leftover locks, with authorization."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests import names as names_for_tests
from tests.conftest import Cli, as_user
from tests.testing.branch import (
    two_flow_project,
)
from tests.testing.fixtures import ROLE

# --- 10. leftover locks have a way out ------------------------------------------------------------------------


def _leave_lock(flow: str, branch: str = "test.solo") -> None:
    """A lock as a deploy killed on another machine leaves it."""
    import os

    from mfproj.backends.step_functions.backend import StepFunctionsBackend
    from mfproj.backends.step_functions.settings import StepFunctionsSettings
    from mfproj.holder import Holder

    backend = StepFunctionsBackend(StepFunctionsSettings(region="us-east-1", role_arn=ROLE), env=os.environ)
    names = names_for_tests.flow_names("myproj", branch, flow)
    backend.acquire(names, holder=Holder("carol", "laptop-9", 4242, "1"), timeout=5, waiting=lambda m: None)


def _lock_count(sfn: Any) -> int:
    return sum(m["name"].startswith("mfproj-lock-") for m in sfn.list_state_machines()["stateMachines"])


def test_unlock_all_lists_and_removes_the_branchs_locks_with_authorization(cli: Cli, tmp_path: Path, sfn: Any) -> None:
    two_flow_project(tmp_path)
    alice = as_user("alice", tmp_path)
    assert cli("deploy", "--branch", "solo", env=alice).code == 0
    assert cli("deploy", "--branch", "other", env=alice).code == 0
    _leave_lock("TrainFlow")  # one lock per branch: any flow's deploy takes it
    _leave_lock("TrainFlow", "test.other")
    refused = cli("unlock", "--all", "--branch", "solo", env=as_user("bob", tmp_path))
    assert refused.code == 3 and _lock_count(sfn) == 2  # nothing removed without the authorization
    done = cli("unlock", "--all", "--branch", "solo", "-o", "json", env=alice)
    assert done.code == 0, done.stderr
    removed = {(u["name"], u["held_by"].split(",")[0]) for u in done.json()["unlocked"]}
    assert removed == {("myproj.test.solo", "carol (pid 4242 on laptop-9)")}
    assert _lock_count(sfn) == 1  # test.other's is not this branch's
    assert cli("unlock", "--all", "TrainFlow", env=alice).code == 2


def test_teardown_removes_the_branchs_locks_even_when_nothing_is_deployed(cli: Cli, tmp_path: Path, sfn: Any) -> None:
    two_flow_project(tmp_path)
    alice = as_user("alice", tmp_path)
    assert cli("deploy", "TrainFlow", "--branch", "solo", env=alice).code == 0
    _leave_lock("GuardFlow")  # a deploy killed on another machine: the branch's lock is left, held there
    blocked = cli("teardown", "--branch", "solo", "--yes", env={**alice, "MFPROJ_LOCK_TIMEOUT": "1"})
    assert blocked.code == 6 and "mfproj unlock" in blocked.stderr, blocked.stderr  # it may be live: refused
    assert cli("unlock", "--all", "--branch", "solo", env=alice).code == 0
    assert cli("teardown", "--branch", "solo", "--yes", env=alice).code == 0
    assert _lock_count(sfn) == 0
    _leave_lock("TrainFlow")  # a teardown killed part-way left this one
    again = cli("teardown", "--branch", "solo", "--yes", env=alice)
    assert again.code == 0, again.stderr
    assert "removed the leftover lock on myproj.test.solo" in again.stderr
    assert _lock_count(sfn) == 0
    assert cli("teardown", "--branch", "solo", "--yes", env=alice).code == 4
