"""See the whole project: `mfproj deployments`, `deployments show`, `namespaces`, `runs -A` and lineage,
against both emulators through the real CLI (in-process)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mfproj import naming
from mfproj.keyring import Keyring
from tests.conftest import Cli, as_user, write_manifest
from tests.testing.fixtures import ROLE


def _templates(root: Path, version: str = "v1") -> None:
    asl = {"StartAt": "a", "States": {"a": {"Type": "Pass", "Result": "${mfproj.namespace} " + version, "End": True}}}
    (root / "hello.asl.json").write_text(json.dumps(asl))
    (root / "hello.json").write_text(json.dumps({"spec": {"entrypoint": "a", "templates": [{"name": version}]}}))


def _manifest(root: Path, *, old_flow: bool = False) -> None:
    extra = '[[flows]]\nname = "OldFlow"\nstep_functions = "hello.asl.json"\n' if old_flow else ""
    write_manifest(
        root,
        f"""
[project]
name = "myproj"
[[flows]]
name = "HelloFlow"
step_functions = "hello.asl.json"
argo_workflows = "hello.json"
tags = ["team:ml"]
[[flows]]
name = "NightlyFlow"
step_functions = "hello.asl.json"
schedule = "0 3 * * *"
{extra}
[step_functions]
region = "us-east-1"
role_arn = "{ROLE}"
""",
        templates=False,
    )


@pytest.fixture
def team(cli: Cli, tmp_path: Path, aws: Any, kube: Any) -> Path:
    """Three branches (user.alice, test.exp, prod) on both backends, and an orphan (OldFlow, since removed)."""
    _templates(tmp_path)
    _manifest(tmp_path, old_flow=True)
    assert cli("deploy", env=as_user("alice", tmp_path)).code == 0
    _manifest(tmp_path)
    assert cli("deploy", "--branch", "exp", env=as_user("alice", tmp_path)).code == 0
    assert cli("deploy", "--production", env=as_user("ci", tmp_path)).code == 0
    return tmp_path


def _rows(cli: Cli, tmp_path: Path, *args: str, user: str = "bob", cwd: Path | None = None) -> list[dict[str, Any]]:
    result = cli("deployments", *args, "-o", "json", env=as_user(user, tmp_path), cwd=cwd)
    assert result.code == 0, result.stderr
    rows: list[dict[str, Any]] = result.json()
    return rows


def test_every_branch_and_the_orphan_are_listed(cli: Cli, team: Path) -> None:
    rows = _rows(cli, team)
    seen = {(r["flow"], r["branch"], r["backend"]): r for r in rows}
    assert set(seen) == {
        ("HelloFlow", "prod", "step_functions"),
        ("HelloFlow", "prod", "argo_workflows"),
        ("NightlyFlow", "prod", "step_functions"),
        ("HelloFlow", "test.exp", "step_functions"),
        ("HelloFlow", "test.exp", "argo_workflows"),
        ("NightlyFlow", "test.exp", "step_functions"),
        ("HelloFlow", "user.alice", "step_functions"),
        ("HelloFlow", "user.alice", "argo_workflows"),
        ("NightlyFlow", "user.alice", "step_functions"),
        ("OldFlow", "user.alice", "step_functions"),
    }
    assert [r["branch"] for r in rows][:3] == ["prod"] * 3  # prod first
    assert seen[("OldFlow", "user.alice", "step_functions")]["state"] == "orphan"
    for key, row in seen.items():
        assert row["owner"] == ("ci" if key[1] == "prod" else "alice")
        assert row["made_by"] == "mfproj"
        assert row["namespace"].startswith("production:mfprj-") and row["namespace"].endswith("-****")
        if key[0] != "OldFlow":
            assert row["state"] == "in-sync", (row["drift"], row)
    assert seen[("NightlyFlow", "prod", "step_functions")]["schedule"] == "cron(0 3 * * ? *)"
    # One branch only:
    assert {r["branch"] for r in _rows(cli, team, "--production")} == {"prod"}
    assert {r["branch"] for r in _rows(cli, team, "--branch", "exp")} == {"test.exp"}


def test_drift_is_detected_after_a_template_change(cli: Cli, team: Path) -> None:
    _templates(team, "v2")
    rows = _rows(cli, team, "HelloFlow", "--production")
    assert {r["backend"]: (r["state"], r["drift"]) for r in rows} == {
        "step_functions": ("drift", ["definition"]),
        "argo_workflows": ("drift", ["definition"]),
    }
    shown = cli(
        "deployments", "show", "HelloFlow", "--production", "--backend", "step-functions", env=as_user("bob", team)
    )
    assert shown.code == 0, shown.stderr
    assert "diff against the manifest" in shown.stdout and "+" in shown.stdout and "v2" in shown.stdout
    token = Keyring(team / "keyring-ci").load_token(naming.token_prefix("myproj", "prod"))
    assert token and token not in shown.stdout


def test_reference_deployments_appear_with_include_metaflow(cli: Cli, team: Path, sfn: Any, kube: Any) -> None:
    token = "mfprj-wirqh2gc3chugnvb-7-abcd"
    definition = {
        "StartAt": "start",
        "States": {
            "start": {
                "Type": "Pass",
                "Parameters": {
                    "Parameters": {
                        "metaflow.owner": "carol",
                        "metaflow.production_token": token,
                        "metaflow.flow_name": "RefFlow",  # as the reference writes it
                    }
                },
                "End": True,
            }
        },
    }
    sfn.create_state_machine(name="myproj.prod.RefFlow", definition=json.dumps(definition), roleArn=ROLE)
    kube.objects[("workflowtemplates", "default", "myproj.prod.refflow")] = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "WorkflowTemplate",
        "metadata": {
            "name": "myproj.prod.refflow",
            "namespace": "default",
            "resourceVersion": "1",
            "labels": {"app.kubernetes.io/part-of": "metaflow"},
            "annotations": {
                "metaflow/owner": "carol",
                "metaflow/production_token": token,
                "metaflow/project_name": "myproj",
                "metaflow/branch_name": "prod",
                "metaflow/flow_name": "RefFlow",
                "metaflow/deployment_timestamp": "2026-12-01T10:00:00.123456",  # as the reference writes it
            },
        },
        "spec": {"entrypoint": "a", "templates": []},
    }
    plain = cli("deployments", env=as_user("bob", team))
    assert "RefFlow" not in plain.stdout and "--include-metaflow" in plain.stderr
    rows = [r for r in _rows(cli, team, "--include-metaflow") if r["made_by"] == "metaflow"]
    assert {(r["backend"], r["owner"], r["state"]) for r in rows} == {
        ("step_functions", "carol", "unknown"),
        ("argo_workflows", "carol", "unknown"),
    }
    argo = next(r for r in rows if r["backend"] == "argo_workflows")
    assert (argo["flow"], argo["branch"]) == ("RefFlow", "prod")  # from the record, not the name
    # Step Functions: the flow from the definition, the branch from the name between project and flow.
    ref = next(r for r in rows if r["backend"] == "step_functions")
    assert (ref["flow"], ref["branch"]) == ("RefFlow", "prod"), ref
    table = cli("deployments", "--include-metaflow", "-o", "wide", env=as_user("bob", team)).stdout
    assert "2026-12-01T10:00:00Z" in table and ".123456" not in table  # to the second, in UTC
    shown = cli("deployments", "show", "RefFlow", "--production", "--include-metaflow", env=as_user("bob", team))
    assert shown.code == 0, shown.stderr
    assert "myproj.prod.RefFlow" in shown.stdout and "carol" in shown.stdout
    fields = shown.stdout.split("diff against the manifest:")[0].splitlines()
    starts = {len(line) - len(line.split("  ", 1)[1].lstrip()) for line in fields if "  " in line}
    assert len(starts) == 1, fields  # every value in one column (promoted_from, rolled_back_to … aligned)


def test_runs_of_every_branch_newest_first(cli: Cli, team: Path) -> None:
    started = []
    for user, branch_args in (("alice", []), ("alice", ["--branch", "exp"]), ("ci", ["--production"])):
        result = cli(
            "trigger", "HelloFlow", "--backend", "step-functions", *branch_args, "--tag", "x", env=as_user(user, team)
        )
        assert result.code == 0, result.stderr
        started.append(result.stdout.strip())
    argo = cli("trigger", "HelloFlow", "--backend", "argo-workflows", "--tag", "x", env=as_user("alice", team))
    started.append(argo.stdout.strip())
    cli("trigger", "HelloFlow", "--backend", "step-functions", "--tag", "other", env=as_user("alice", team))
    # Bob has no deployment of his own: the global namespace still shows every branch's runs.
    result = cli("runs", "-A", "--tag", "x", "-o", "json", env=as_user("bob", team))
    assert result.code == 0, result.stderr
    runs = result.json()
    assert {r["run_id"] for r in runs} == set(started)
    assert {r["branch"] for r in runs} == {"user.alice", "test.exp", "prod"}
    moments = [r["started_at"] for r in runs]
    assert moments == sorted(moments, reverse=True)
    narrowed = cli("runs", "-A", "--production", "--tag", "x", "-o", "json", env=as_user("bob", team)).json()
    assert [r["branch"] for r in narrowed] == ["prod"]
    assert len(cli("runs", "-A", "--limit", "2", "-o", "json", env=as_user("bob", team)).json()) == 2


def test_namespaces_group_deployments_by_token(cli: Cli, team: Path) -> None:
    result = cli("namespaces", "--count-runs", "-o", "json", env=as_user("alice", team))
    assert result.code == 0, result.stderr
    spaces = result.json()
    assert [ns["branches"] for ns in spaces] == [["prod"], ["test.exp"], ["user.alice"]]
    assert [ns["in_keyring"] for ns in spaces] == [False, True, True]  # alice has her own two, not prod's
    assert all(ns["namespace"].endswith("-****") for ns in spaces)
    assert len(spaces[0]["deployments"]) == 3 and spaces[0]["runs"] == 0


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_lineage_is_recorded_from_a_git_repository_and_absent_outside_one(
    cli: Cli, tmp_path: Path, aws: Any, kube: Any
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    _templates(outside)
    _manifest(outside)
    assert cli("deploy", "NightlyFlow", env=as_user("alice", tmp_path), cwd=outside).code == 0
    [row] = _rows(cli, tmp_path, "NightlyFlow", user="alice", cwd=outside)
    assert (row["commit"], row["dirty"], row["git_branch"]) == (None, None, None)

    repo = tmp_path / "repo"
    repo.mkdir()
    _templates(repo)
    _manifest(repo)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "first"]):
        subprocess.run([*git, *args], cwd=repo, check=True, capture_output=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    env = as_user("alice", tmp_path, GITHUB_ACTIONS="true", GITHUB_RUN_ID="42", GITHUB_REPOSITORY="acme/ml")
    assert cli("deploy", "HelloFlow", "--branch", "exp", env=env, cwd=repo).code == 0
    rows = _rows(cli, tmp_path, "HelloFlow", "--branch", "exp", user="alice", cwd=repo)
    for row in rows:
        assert (row["commit"], row["dirty"], row["git_branch"]) == (head, False, "main")
        assert row["ci_run"] == "https://github.com/acme/ml/actions/runs/42"
