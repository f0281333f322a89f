"""`mfproj gc`: stale branches by age or by merged git branch; production is never proposed; with --yes
the caller's own are torn down and the others skipped for lack of a token."""

from __future__ import annotations

import datetime as _dt
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mfproj.usecases import gc
from tests.conftest import Cli, as_user
from tests.testing.fixtures import Flow, make_project, succeed_machine, workflow_template


def _project(root: Path, *, argo: bool = False) -> None:
    make_project(
        root,
        Flow(
            "HelloFlow",
            step_functions=succeed_machine(),
            argo_workflows=workflow_template() if argo else None,
            file="a",
        ),
    )


def _branches(sfn: Any) -> set[str]:
    return {m["name"].split(".")[1] + "." + m["name"].split(".")[2] for m in sfn.list_state_machines()["stateMachines"]}


def test_stale_by_age_never_production_and_skipped_without_a_token(
    cli: Cli, tmp_path: Path, aws: Any, sfn: Any, kube: Any
) -> None:
    _project(tmp_path, argo=True)
    assert cli("deploy", env=as_user("alice", tmp_path)).code == 0
    assert cli("deploy", "--branch", "exp", env=as_user("alice", tmp_path)).code == 0
    assert cli("deploy", env=as_user("bob", tmp_path)).code == 0
    assert cli("deploy", "--production", env=as_user("ci", tmp_path)).code == 0
    fresh = cli("gc", "-o", "json", env=as_user("bob", tmp_path))  # the default age is 30 days
    assert fresh.code == 0 and fresh.json() == []
    plan = cli("gc", "--older-than", "0s", "-o", "json", env=as_user("bob", tmp_path)).json()
    assert [p["branch"] for p in plan] == ["test.exp", "user.alice", "user.bob"]  # never prod
    assert all(p["outcome"] == "proposed" and p["why"] for p in plan)
    # Deployed moments ago: said in the unit that says it (never "not deployed for 0 days").
    assert all(p["why"] == ["not deployed for less than a minute"] for p in plan), plan
    only = cli("gc", "--older-than", "0s", "--branches", "test.*", "-o", "json", env=as_user("bob", tmp_path)).json()
    assert [p["branch"] for p in only] == ["test.exp"]
    rehearsal = cli("gc", "--older-than", "0s", "--yes", "--dry-run", "-o", "json", env=as_user("bob", tmp_path))
    assert {p["outcome"] for p in rehearsal.json()} == {"proposed"}
    assert _branches(sfn) == {"user.alice", "test.exp", "user.bob", "prod.HelloFlow"}
    templates = {key[2] for key in kube.objects if key[0] == "workflowtemplates"}
    assert "myproj.user.bob.helloflow" in templates
    done = cli("gc", "--older-than", "0s", "--yes", "-o", "json", env=as_user("bob", tmp_path))
    assert done.code == 0, done.stderr
    outcomes = {p["branch"]: p["outcome"] for p in done.json()}
    assert outcomes["user.bob"] == "removed"
    assert outcomes["user.alice"].startswith("skipped: no token") and outcomes["test.exp"].startswith("skipped")
    assert _branches(sfn) == {"user.alice", "test.exp", "prod.HelloFlow"}
    after = {key[2] for key in kube.objects if key[0] == "workflowtemplates"}
    assert after == templates - {"myproj.user.bob.helloflow"}  # bob's branch went on Argo too


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_stale_when_its_git_branch_is_merged(cli: Cli, tmp_path: Path, aws: Any) -> None:
    repo = tmp_path / "repo"
    _project(repo)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]

    def run(*args: str) -> None:
        subprocess.run([*git, *args], cwd=repo, check=True, capture_output=True)

    run("init", "-q", "-b", "main")
    run("add", "-A")
    run("commit", "-q", "-m", "first")
    env = as_user("alice", tmp_path)
    for name in ("done", "open"):
        run("checkout", "-q", "-b", f"feature/{name}")
        (repo / f"{name}.txt").write_text(name)
        run("add", "-A")
        run("commit", "-q", "-m", name)
        assert cli("deploy", "--branch", name, env=env, cwd=repo).code == 0
        run("checkout", "-q", "main")
    run("merge", "-q", "--no-ff", "-m", "merge", "feature/done")
    plan = cli("gc", "--merged", "-o", "json", env=env, cwd=repo).json()
    assert [(p["branch"], p["why"]) for p in plan] == [("test.done", ["git branch feature/done is merged into main"])]
    run("branch", "-q", "-D", "feature/open")
    gone = cli("gc", "--merged", "-o", "json", env=env, cwd=repo).json()
    assert {p["branch"] for p in gone} == {"test.done", "test.open"}


@pytest.mark.parametrize(
    ("delta", "said"),
    [
        (_dt.timedelta(days=3, hours=2), "3 days"),
        (_dt.timedelta(days=1), "1 day"),
        (_dt.timedelta(hours=5), "5 hours"),
        (_dt.timedelta(minutes=1, seconds=5), "1 minute"),
        (_dt.timedelta(seconds=20), "less than a minute"),
    ],
)
def test_a_branchs_age_is_said_in_its_largest_whole_unit(delta: _dt.timedelta, said: str) -> None:
    assert gc.age(delta) == said
