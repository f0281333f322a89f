"""`mfproj runs terminate`: stop a running run, authorized as a delete; another branch's run is refused;
an unknown run is exit 4. Both emulators, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, as_user, write_manifest

ROLE = "arn:aws:iam::123456789012:role/sfn-exec"


@pytest.fixture
def proj(tmp_path: Path, aws: Any, kube: Any) -> Path:
    # A run that waits: it is still running when terminate comes.
    asl = {"StartAt": "w", "States": {"w": {"Type": "Wait", "Seconds": 600, "End": True}}}
    (tmp_path / "wait.asl.json").write_text(json.dumps(asl))
    (tmp_path / "wait.json").write_text(json.dumps({"spec": {"entrypoint": "a", "templates": [{"name": "a"}]}}))
    write_manifest(
        tmp_path,
        f'[project]\nname = "myproj"\n[[flows]]\nname = "WaitFlow"\nstep_functions = "wait.asl.json"\n'
        f'argo_workflows = "wait.json"\n[step_functions]\nregion = "us-east-1"\nrole_arn = "{ROLE}"\n',
        templates=False,
    )
    return tmp_path


def _start(cli: Cli, tmp_path: Path, backend: str, *branch: str, user: str = "alice") -> str:
    env = as_user(user, tmp_path)
    assert cli("deploy", *branch, env=env).code == 0
    started = cli("trigger", "WaitFlow", "--backend", backend, *branch, env=env)
    assert started.code == 0, started.stderr
    return str(started.stdout.strip())


def test_a_running_step_functions_run_is_stopped(cli: Cli, proj: Path, tmp_path: Path) -> None:
    run_id = _start(cli, tmp_path, "step-functions")
    alice = as_user("alice", tmp_path)
    assert cli("runs", "terminate", run_id, env=alice).code == 2  # no terminal: --yes is required
    assert cli("runs", "show", run_id, "-o", "json", env=alice).json()["status"] == "RUNNING"
    # Bob, on Alice's branch without its token: refused.
    refused = cli("runs", "terminate", run_id, "--yes", env=as_user("bob", tmp_path, METAFLOW_OWNER="alice"))
    assert refused.code == 3, refused.stderr
    done = cli("runs", "terminate", run_id, "--yes", "-o", "json", env=alice)
    assert done.code == 0, done.stderr
    result = done.json()
    assert result["stopped"] is True and result["status"] == "ABORTED" and result["authorization"] == "owner"
    assert cli("runs", "show", run_id, "-o", "json", env=alice).json()["status"] == "ABORTED"
    again = cli("runs", "terminate", run_id, "--yes", env=alice)
    assert again.code == 0 and "already ended ABORTED" in again.stderr


def test_an_argo_run_is_shut_down(cli: Cli, proj: Path, tmp_path: Path, kube: Any) -> None:
    run_id = _start(cli, tmp_path, "argo-workflows")
    done = cli("runs", "terminate", run_id, "--yes", env=as_user("alice", tmp_path))
    assert done.code == 0, done.stderr
    workflow = kube.objects[("workflows", "default", run_id[len("argo-") :])]
    assert workflow["spec"]["shutdown"] == "Terminate"


def test_another_branchs_run_is_refused_and_an_unknown_run_is_not_found(cli: Cli, proj: Path, tmp_path: Path) -> None:
    theirs = _start(cli, tmp_path, "step-functions", "--branch", "exp")
    assert cli("deploy", env=as_user("alice", tmp_path)).code == 0
    refused = cli("runs", "terminate", theirs, "--yes", env=as_user("alice", tmp_path))
    assert refused.code == 2, refused.stderr
    assert "myproj test.exp" in refused.stderr and "--branch exp" in refused.stderr
    missing = cli("runs", "terminate", "sfn-nosuchrun", "--yes", env=as_user("alice", tmp_path))
    assert missing.code == 4, missing.stderr
    assert cli("runs", "terminate", "nonsense", "--yes", env=as_user("alice", tmp_path)).code == 2
