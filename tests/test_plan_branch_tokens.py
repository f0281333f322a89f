"""One branch, one token (plan.BranchTokens), whatever a deploy deploys: flows deployed one at a time, on
two backends, by two people; a split branch said and converged; --generate-new-token moving the whole branch,
even when killed half-way. Against moto and the Kubernetes emulator, through the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mfproj.backends.step_functions.record import decode_record, encode_record
from mfproj.keyring import Keyring
from tests.conftest import Cli, as_user
from tests.testing.branch import (
    ARN,
    SOLO,
    argo_name,
    argo_token,
    sfn_name,
    sfn_token,
    two_flow_project,
)

# --- 1. one branch, one token, whatever the run deploys -------------------------------------------


def test_deploying_flows_one_at_a_time_keeps_one_token(cli: Cli, tmp_path: Path, sfn: Any) -> None:
    two_flow_project(tmp_path)
    env = as_user("alice", tmp_path)
    assert cli("deploy", "TrainFlow", "--branch", "solo", env=env).code == 0
    second = cli("deploy", "GuardFlow", "--branch", "solo", "-o", "json", env=env)
    assert second.code == 0, second.stderr
    assert second.json()["deployments"][0]["authorization"] != "first deployment: new production token"
    first, other = sfn_token(sfn, sfn_name("TrainFlow")), sfn_token(sfn, sfn_name("GuardFlow"))
    assert first and first == other
    assert Keyring(tmp_path / "keyring-alice").load_token(SOLO) == first


def test_a_flow_deployed_on_argo_joins_the_token_on_step_functions(
    cli: Cli, tmp_path: Path, sfn: Any, kube: Any
) -> None:
    two_flow_project(tmp_path, argo=True)
    env = as_user("alice", tmp_path)
    assert cli("deploy", "TrainFlow", "--branch", "solo", "--backend", "step-functions", env=env).code == 0
    assert cli("deploy", "GuardFlow", "--branch", "solo", "--backend", "argo-workflows", env=env).code == 0
    assert argo_token(kube, argo_name("GuardFlow")) == sfn_token(sfn, sfn_name("TrainFlow"))


def test_a_teammate_authorized_for_one_flow_deploys_the_other(cli: Cli, tmp_path: Path, sfn: Any) -> None:
    two_flow_project(tmp_path)
    alice, bob = as_user("alice", tmp_path), as_user("bob", tmp_path)
    assert cli("deploy", "TrainFlow", "--branch", "solo", env=alice).code == 0
    assert cli("deploy", "GuardFlow", "--branch", "solo", env=alice).code == 0
    token = Keyring(tmp_path / "keyring-alice").load_token(SOLO)
    assert token
    result = cli("deploy", "--branch", "solo", "--authorize", token, env=bob)
    assert result.code == 0, result.stderr


def _split(sfn: Any, name: str, token: str) -> None:
    """What a kill -9 in the middle of --generate-new-token leaves: one deployment moved, the rest not."""
    arn = ARN.format(name)
    tags = {t["key"]: t["value"] for t in sfn.list_tags_for_resource(resourceArn=arn)["tags"]}
    record = decode_record(tags)
    assert record is not None
    from dataclasses import replace

    moved = encode_record(replace(record, production_token=token, deployed_at="2999-01-01T00:00:00+00:00"))
    sfn.tag_resource(resourceArn=arn, tags=[{"key": k, "value": v} for k, v in moved.items()])


def test_a_split_branch_is_said_and_converges_on_one_token(cli: Cli, tmp_path: Path, sfn: Any) -> None:
    two_flow_project(tmp_path)
    env = as_user("alice", tmp_path)
    assert cli("deploy", "--branch", "solo", env=env).code == 0
    other = f"{SOLO}-1-{'z' * 26}"
    _split(sfn, sfn_name("GuardFlow"), other)
    for command in (["deployments"], ["namespaces"], ["namespaces", "-o", "json"]):
        seen = cli(*command, env=env)
        assert seen.code == 0, seen.stderr
        assert "test.solo holds 2 production tokens" in seen.stderr
        assert "TrainFlow on Step Functions" in seen.stderr and "GuardFlow on Step Functions" in seen.stderr
    marks = {ns["fingerprint"] for ns in cli("namespaces", "-o", "json", env=env).json()}
    assert len(marks) == 2  # the two namespaces are told apart, not listed twice alike
    plan = cli("deploy", "--branch", "solo", "--dry-run", env=env)
    assert "holds more than one production token" in plan.stderr
    assert other not in plan.stderr + plan.stdout
    result = cli("deploy", "--branch", "solo", "-o", "json", env=env)
    assert result.code == 0, result.stderr
    assert "holds more than one production token" in result.stderr
    assert sfn_token(sfn, sfn_name("TrainFlow")) == sfn_token(sfn, sfn_name("GuardFlow"))
    again = cli("deploy", "--branch", "solo", "-o", "json", env=env)
    assert "more than one" not in again.stderr
    assert {d["action"] for d in again.json()["deployments"]} == {"unchanged"}


def test_generate_new_token_for_one_flow_moves_every_flow_of_the_branch(
    cli: Cli, tmp_path: Path, sfn: Any, kube: Any
) -> None:
    two_flow_project(tmp_path, argo=True)
    env = as_user("alice", tmp_path)
    assert cli("deploy", "--branch", "solo", env=env).code == 0
    before = sfn_token(sfn, sfn_name("TrainFlow"))
    result = cli(
        "deploy", "TrainFlow", "--branch", "solo", "--backend", "step-functions", "--generate-new-token", env=env
    )
    assert result.code == 0, result.stderr
    after = {
        sfn_token(sfn, sfn_name("TrainFlow")),
        sfn_token(sfn, sfn_name("GuardFlow")),
        argo_token(kube, argo_name("TrainFlow")),
        argo_token(kube, argo_name("GuardFlow")),
    }
    assert len(after) == 1 and before not in after
    assert Keyring(tmp_path / "keyring-alice").load_token(SOLO) in after


def test_a_split_argo_branch_converges_too(cli: Cli, tmp_path: Path, kube: Any) -> None:
    two_flow_project(tmp_path, argo=True, sfn=False)
    env = as_user("alice", tmp_path)
    assert cli("deploy", "--branch", "solo", env=env).code == 0
    found = kube.objects[("workflowtemplates", "default", argo_name("GuardFlow"))]
    found["metadata"]["annotations"]["metaflow/production_token"] = f"{SOLO}-1-{'y' * 26}"
    found["metadata"]["annotations"]["metaflow/deployment_timestamp"] = "2999-01-01T00:00:00+00:00"
    result = cli("deploy", "TrainFlow", "--branch", "solo", env=env)
    assert result.code == 0, result.stderr
    assert argo_token(kube, argo_name("TrainFlow")) == argo_token(kube, argo_name("GuardFlow"))


def test_a_kill_9_during_generate_new_token_leaves_a_branch_the_next_deploy_converges(
    cli: Cli, tmp_path: Path, sfn: Any, aws: Any
) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.emulators import FaultProxy

    two_flow_project(tmp_path)
    alice = as_user("alice", tmp_path)
    assert cli("deploy", "--branch", "solo", env=alice).code == 0
    before = sfn_token(sfn, sfn_name("TrainFlow"))
    proxy = FaultProxy(aws.url)
    try:
        proxy.fail("TagResource", kind="hang", delay=30, times=1)  # one flow's record never lands
        process = subprocess.Popen(
            [sys.executable, "-m", "mfproj", "deploy", "--branch", "solo", "--generate-new-token"],
            env={**os.environ, **alice, "AWS_ENDPOINT_URL": proxy.url},
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30

        def moved() -> int:  # deployments whose record already holds the new token
            found = {sfn_token(sfn, sfn_name("TrainFlow")), sfn_token(sfn, sfn_name("GuardFlow"))}
            return len(found - {before})

        while not moved() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)  # until one flow's record landed (the other's is held by the proxy)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        proxy.stop()
    split = {sfn_token(sfn, sfn_name("TrainFlow")), sfn_token(sfn, sfn_name("GuardFlow"))}
    assert len(split) == 2 and before in split  # what the kill left: one moved, one not
    result = cli("deploy", "--branch", "solo", env=alice)
    assert result.code == 0, result.stderr
    after = {sfn_token(sfn, sfn_name("TrainFlow")), sfn_token(sfn, sfn_name("GuardFlow"))}
    assert len(after) == 1
    assert Keyring(tmp_path / "keyring-alice").load_token(SOLO) in after
