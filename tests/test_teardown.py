"""`mfproj teardown`: a whole branch goes (flows, orphans, schedules, locks) on both backends, authorized
per deployment as a delete, with --dry-run, confirmation, and running runs reported or stopped."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, as_user, write_manifest
from tests.testing.fixtures import ROLE
from tests.testing.locks import ELSEWHERE, plant_lock


def _manifest(root: Path, *, old: bool) -> None:
    extra = '[[flows]]\nname = "OldFlow"\nstep_functions = "wait.asl.json"\n' if old else ""
    write_manifest(
        root,
        f'[project]\nname = "myproj"\n[[flows]]\nname = "HelloFlow"\nstep_functions = "wait.asl.json"\n'
        f'argo_workflows = "a.json"\n[[flows]]\nname = "NightlyFlow"\nstep_functions = "wait.asl.json"\n'
        f'schedule = "0 3 * * *"\n{extra}[step_functions]\nregion = "us-east-1"\nrole_arn = "{ROLE}"\n',
        templates=False,
    )


@pytest.fixture
def branch(cli: Cli, tmp_path: Path, aws: Any, kube: Any) -> Path:
    asl = {"StartAt": "w", "States": {"w": {"Type": "Wait", "Seconds": 600, "End": True}}}
    (tmp_path / "wait.asl.json").write_text(json.dumps(asl))
    (tmp_path / "a.json").write_text(json.dumps({"spec": {"entrypoint": "a", "templates": [{"name": "a"}]}}))
    _manifest(tmp_path, old=True)
    alice = as_user("alice", tmp_path)
    assert cli("deploy", env=alice).code == 0
    _manifest(tmp_path, old=False)  # OldFlow is an orphan now
    assert cli("trigger", "HelloFlow", "--backend", "step-functions", env=alice).code == 0
    return tmp_path


def _names(sfn: Any) -> set[str]:
    return {m["name"] for m in sfn.list_state_machines()["stateMachines"]}


def test_a_branch_is_torn_down_whole(
    cli: Cli, branch: Path, sfn: Any, events: Any, kube: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from mfproj.backends.step_functions import lock

    monkeypatch.setattr(lock, "LOCK_TTL_SECONDS", 1)  # the service's clock ages the lock: it cannot be moved
    plant_lock(sfn, ELSEWHERE)  # stranded on another machine by a killed deploy
    time.sleep(2.1)
    before = _names(sfn)
    assert cli("teardown", env=as_user("alice", branch)).code == 2  # the branch must be named
    plan = cli("teardown", "--user", "alice", "--dry-run", "-o", "json", env=as_user("alice", branch))
    assert plan.code == 0, plan.stderr
    planned = {(d["flow"], d["backend"]) for d in plan.json()["deployments"]}
    assert planned == {
        ("HelloFlow", "step_functions"),
        ("HelloFlow", "argo_workflows"),
        ("NightlyFlow", "step_functions"),
        ("OldFlow", "step_functions"),
    }
    assert _names(sfn) == before
    assert cli("teardown", "--user", "alice", env=as_user("alice", branch)).code == 2  # --yes without a terminal
    refused = cli("teardown", "--user", "alice", "--yes", env=as_user("bob", branch))
    assert refused.code == 3, refused.stderr
    assert _names(sfn) == before
    listed = cli("runs", "--status", "running", "-o", "json", env=as_user("alice", branch))
    running_run = next(run["run_id"] for run in listed.json() if run["run_id"].startswith("sfn-"))
    done = cli("teardown", "--user", "alice", "--yes", env=as_user("alice", branch))
    assert done.code == 0, done.stderr
    # The run left running is named: once its deployment is gone, nothing else lists it.
    said = re.search(r"1 run\(s\) left running .*:\n  (sfn-\S+) \(HelloFlow on Step Functions\)", done.stderr)
    assert said, done.stderr
    assert said.group(1) == running_run
    assert not any(".user.alice." in name or name.startswith("mfproj-lock-") for name in _names(sfn))
    with pytest.raises(events.exceptions.ResourceNotFoundException):
        events.describe_rule(Name="myproj.user.alice.NightlyFlow")
    assert not [key for key in kube.objects if key[0] in ("workflowtemplates", "cronworkflows")]
    assert cli("teardown", "--user", "alice", "--yes", env=as_user("alice", branch)).code == 4


def test_production_teardown_can_stop_its_runs(cli: Cli, branch: Path, sfn: Any) -> None:
    ci = as_user("ci", branch)
    assert cli("deploy", "--production", env=ci).code == 0
    run_id = cli("trigger", "HelloFlow", "--backend", "step-functions", "--production", env=ci).stdout.strip()
    done = cli("teardown", "--production", "--yes", "--terminate-runs", "-o", "json", env=ci)
    assert done.code == 0, done.stderr
    assert done.json()["terminated_runs"] == [run_id]  # stopped (checked in test_terminate) before removal
    assert not any(".prod." in name for name in _names(sfn))
    assert any(".user.alice." in name for name in _names(sfn))  # other branches untouched


def test_a_torn_down_branchs_token_left_in_the_keyring_is_said(cli: Cli, branch: Path) -> None:
    ci = as_user("ci", branch)
    assert cli("deploy", "--production", "--backend", "step-functions", env=ci).code == 0
    done = cli("teardown", "--production", "--yes", env=ci)
    assert done.code == 0, done.stderr
    assert "your keyring still holds prod's production token: 'mfproj token forget --production'" in done.stderr
    forgot = cli("token", "forget", "--production", "--yes", env=ci)
    assert forgot.code == 0, forgot.stderr
    assert cli("deploy", "--production", "--backend", "step-functions", env=ci).code == 0
    again = cli("teardown", "--production", "--yes", "-o", "json", env=ci)
    assert again.json()["token_in_keyring"] is True  # deployed again: a new token, kept, said again
