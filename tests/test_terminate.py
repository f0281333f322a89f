"""`mfproj runs terminate`: stop a running run, authorized as a delete; another branch's run is refused;
an unknown run is exit 4. Both emulators, through the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mfproj.usecases import terminate
from tests.conftest import Cli, StepFunctionsEmulator, as_user
from tests.testing.fixtures import Flow, make_project, wait_machine, workflow_template


@pytest.fixture
def proj(tmp_path: Path, aws: Any, kube: Any) -> Path:
    # A run that waits: it is still running when terminate comes.
    return make_project(
        tmp_path, Flow("WaitFlow", step_functions=wait_machine(), argo_workflows=workflow_template(), file="wait")
    )


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


def test_an_argo_run_is_shut_down(
    cli: Cli, proj: Path, tmp_path: Path, kube: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(terminate, "STOP_SETTLE_SECONDS", 0.5)  # no controller here: the phase stays
    run_id = _start(cli, tmp_path, "argo-workflows")
    done = cli("runs", "terminate", run_id, "--yes", env=as_user("alice", tmp_path))
    assert done.code == 0, done.stderr
    # Asked to stop, not seen stopped: said as it is, not as "stopped … now RUNNING".
    assert f"asked {run_id} to stop; after 0.5 s it is still PENDING" in done.stderr, done.stderr
    workflow = kube.objects[("workflows", "default", run_id[len("argo-") :])]
    assert workflow["spec"]["shutdown"] == "Terminate"
    kube.set_phase("default", run_id[len("argo-") :], "Failed")  # what Argo's controller records then
    shown = cli("runs", "show", run_id, "-o", "json", env=as_user("alice", tmp_path))
    assert shown.json()["status"] == "ABORTED"  # stopped on purpose, as on Step Functions (not FAILED)


def test_another_branchs_run_is_refused_and_an_unknown_run_is_not_found(cli: Cli, proj: Path, tmp_path: Path) -> None:
    theirs = _start(cli, tmp_path, "step-functions", "--branch", "exp")
    assert cli("deploy", env=as_user("alice", tmp_path)).code == 0
    refused = cli("runs", "terminate", theirs, "--yes", env=as_user("alice", tmp_path))
    assert refused.code == 2, refused.stderr
    assert "myproj test.exp" in refused.stderr and "--branch exp" in refused.stderr
    missing = cli("runs", "terminate", "sfn-nosuchrun", "--yes", env=as_user("alice", tmp_path))
    assert missing.code == 4, missing.stderr
    assert cli("runs", "terminate", "nonsense", "--yes", env=as_user("alice", tmp_path)).code == 2


def test_another_users_run_is_reached_with_user_and_stopped_with_the_delete_authorization(
    cli: Cli, proj: Path, tmp_path: Path
) -> None:
    bobs = _start(cli, tmp_path, "step-functions", user="bob")
    alice = as_user("alice", tmp_path)
    elsewhere = cli("runs", "terminate", bobs, "--yes", env=alice)
    assert elsewhere.code == 2, elsewhere.stderr
    assert f"hint: select its branch: mfproj runs terminate {bobs} --user bob" in elsewhere.stderr
    assert cli("runs", "show", bobs, "--user", "bob", "-o", "json", env=alice).json()["status"] == "RUNNING"
    # --branch takes the whole branch name too, as the error printed it
    assert cli("runs", "show", bobs, "--branch", "user.bob", "-o", "json", env=alice).json()["status"] == "RUNNING"
    refused = cli("runs", "terminate", bobs, "--user", "bob", "--yes", env=alice)  # not the owner, no token
    assert refused.code == 3, refused.stderr
    both = cli("runs", "terminate", bobs, "--user", "bob", "--branch", "x", "--yes", env=alice)
    assert both.code == 2 and "--user selects a user branch" in both.stderr
    done = cli("runs", "terminate", bobs, "--user", "bob", "--yes", "-o", "json", env=as_user("bob", tmp_path))
    assert done.code == 0 and done.json()["status"] == "ABORTED", done.stderr


def test_a_run_of_a_torn_down_argo_deployment_is_still_shown_and_stopped(
    cli: Cli, proj: Path, tmp_path: Path, kube: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Teardown leaves runs running: `runs show` and `runs terminate` still reach them by id (the service
    keeps them), authorized by the run's own namespace (its deployment's token)."""
    monkeypatch.setattr(terminate, "STOP_SETTLE_SECONDS", 0.5)
    run_id = _start(cli, tmp_path, "argo-workflows")
    alice = as_user("alice", tmp_path)
    assert cli("teardown", "--user", "alice", "--yes", env=alice).code == 0
    shown = cli("runs", "show", run_id, "-o", "json", env=alice)
    assert shown.code == 0, shown.stderr
    assert shown.json()["deployment_gone"] is True and shown.json()["status"] in ("PENDING", "RUNNING")
    refused = cli("runs", "terminate", run_id, "--user", "alice", "--yes", env=as_user("bob", tmp_path))
    assert refused.code == 3, refused.stderr  # Bob has not the token of the run's namespace
    done = cli("runs", "terminate", run_id, "--yes", "-o", "json", env=alice)  # Alice's keyring has it
    assert done.code == 0, done.stderr
    assert kube.objects[("workflows", "default", run_id[len("argo-") :])]["spec"]["shutdown"] == "Terminate"
    assert done.json()["stopped"] is True and done.json()["ended"] is False


def test_a_run_of_a_deleted_state_machine_is_still_shown_and_stopped(
    cli: Cli, tmp_path: Path, localstack: StepFunctionsEmulator
) -> None:
    """LocalStack keeps an execution whose state machine is deleted, as AWS does (moto drops them)."""
    make_project(tmp_path, Flow("WaitFlow", step_functions=wait_machine(), file="wait"))
    alice = as_user("alice", tmp_path)
    assert cli("deploy", env=alice).code == 0
    run_id = cli("trigger", "WaitFlow", env=alice).stdout.strip()
    assert cli("delete", "WaitFlow", "--yes", env=alice).code == 0
    shown = cli("runs", "show", run_id, "-o", "json", env=alice)
    assert shown.code == 0, shown.stderr
    assert shown.json()["deployment_gone"] is True and shown.json()["status"] == "RUNNING"
    done = cli("runs", "terminate", run_id, "--yes", "-o", "json", env=alice)
    assert done.code == 0, done.stderr
    assert done.json()["stopped"] is True and done.json()["status"] == "ABORTED"


def _running_description(sfn: Any, run_id: str) -> dict[str, Any]:
    """DescribeExecution's answer for the run as it is now (RUNNING), to be answered again later."""
    (machine,) = sfn.list_state_machines()["stateMachines"]
    arn = machine["stateMachineArn"].replace(":stateMachine:", ":execution:") + ":" + run_id[len("sfn-") :]
    described = sfn.describe_execution(executionArn=arn)
    return {
        key: (value.timestamp() if hasattr(value, "timestamp") else value)
        for key, value in described.items()
        if key != "ResponseMetadata"
    }


def test_a_stopped_run_is_reported_as_it_is_once_the_backend_has_ended_it(
    cli: Cli, proj: Path, tmp_path: Path, aws_proxy: Any, sfn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """StopExecution is taken before the execution ends (moto's interpreter, as AWS, ends it a moment
    later): terminate reads the run until it has ended, and says what it read."""
    run_id = _start(cli, tmp_path, "step-functions")
    still_running = _running_description(sfn, run_id)
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_proxy.url)
    aws_proxy.fail("StopExecution", kind="slow", delay=0.0, times=1)  # forwarded: arms the next fault
    aws_proxy.fail("DescribeExecution", status=200, body=still_running, times=2, after="StopExecution")
    done = cli("runs", "terminate", run_id, "--yes", "-o", "json", env=as_user("alice", tmp_path))
    assert done.code == 0, done.stderr
    assert done.json()["status"] == "ABORTED" and done.json()["ended"] is True, done.stdout
    assert aws_proxy.count("DescribeExecution") >= 3  # read again after the two RUNNING answers


def test_a_run_that_does_not_end_in_time_is_not_called_stopped(
    cli: Cli, proj: Path, tmp_path: Path, aws_proxy: Any, sfn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = _start(cli, tmp_path, "step-functions")
    still_running = _running_description(sfn, run_id)
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_proxy.url)
    monkeypatch.setattr(terminate, "STOP_SETTLE_SECONDS", 0.6)
    aws_proxy.fail("StopExecution", kind="slow", delay=0.0, times=1)
    aws_proxy.fail("DescribeExecution", status=200, body=still_running, after="StopExecution")
    done = cli("runs", "terminate", run_id, "--yes", env=as_user("alice", tmp_path))
    assert done.code == 0, done.stderr
    assert f"asked {run_id} to stop; after 0.6 s it is still RUNNING" in done.stderr, done.stderr
    assert "hint: mfproj runs show" in done.stderr
    assert 3 <= aws_proxy.count("DescribeExecution") <= 12  # read a few times, not in a tight loop
