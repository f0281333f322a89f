"""Production guard rails (`production_branch`), branches from git, and schedules on production only."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, as_user
from tests.testing.fixtures import Flow, make_project, succeed_machine

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _project(root: Path, project_lines: str = "") -> None:
    nightly = Flow("NightlyFlow", step_functions=succeed_machine(), schedule="0 3 * * *", file="a")
    make_project(root, nightly, project_lines=project_lines)


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


def _repo(root: Path, project_lines: str) -> Path:
    _project(root, project_lines)
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "first")
    return root


def _rule(events: Any, name: str) -> Any:
    try:
        return events.describe_rule(Name=name)
    except events.exceptions.ResourceNotFoundException:
        return None


def test_schedules_on_production_only(cli: Cli, tmp_path: Path, aws: Any, events: Any) -> None:
    _project(tmp_path)
    alice = as_user("alice", tmp_path)
    assert cli("deploy", env=alice).code == 0
    assert _rule(events, "myproj.user.alice.NightlyFlow") is not None  # the reference's behaviour: all branches
    _project(tmp_path, 'schedules = "production"')
    names = cli("names", "-o", "json", env=alice).json()
    assert names["flows"][0]["schedule"] is None
    redeployed = cli("deploy", "-o", "json", env=alice)
    assert redeployed.code == 0, redeployed.stderr
    assert redeployed.json()["deployments"][0]["changes"] == ["schedule"]
    assert _rule(events, "myproj.user.alice.NightlyFlow") is None  # the user branch lost its schedule
    assert cli("deploy", "--production", env=as_user("ci", tmp_path)).code == 0
    assert _rule(events, "myproj.prod.NightlyFlow") is not None
    assert cli("names", "--production", "-o", "json", env=alice).json()["flows"][0]["schedule"] == "0 3 * * *"
    rows = cli("deployments", "-o", "json", env=alice).json()
    assert {r["branch"]: r["state"] for r in rows} == {"prod": "in-sync", "user.alice": "in-sync"}


@needs_git
def test_production_deploys_come_from_the_production_branch_and_a_clean_tree(
    cli: Cli, tmp_path: Path, aws: Any
) -> None:
    repo = _repo(tmp_path / "repo", 'production_branch = "main"')
    env = as_user("ci", tmp_path)
    _git(repo, "checkout", "-q", "-b", "feature/x")
    refused = cli("deploy", "--production", env=env, cwd=repo)
    assert refused.code == 2, refused.stderr
    assert (
        "production_branch" in refused.stderr and "'feature/x'" in refused.stderr and "--allow-branch" in refused.stderr
    )
    assert cli("deploy", "--production", "--dry-run", "--allow-branch", env=env, cwd=repo).code == 0
    _git(repo, "checkout", "-q", "main")
    (repo / "scratch.txt").write_text("uncommitted")
    dirty = cli("deploy", "--production", env=env, cwd=repo)
    assert dirty.code == 2 and "uncommitted changes" in dirty.stderr and "--allow-dirty" in dirty.stderr
    assert cli("deploy", "--production", "--allow-dirty", env=env, cwd=repo).code == 0
    (repo / "scratch.txt").unlink()
    assert cli("deploy", "--production", env=env, cwd=repo).code == 0
    # Other branches are not guarded.
    _git(repo, "checkout", "-q", "feature/x")
    assert cli("deploy", "--branch", "x", env=env, cwd=repo).code == 0


@needs_git
def test_the_branch_from_git(cli: Cli, tmp_path: Path, aws: Any) -> None:
    repo = _repo(tmp_path / "repo", 'production_branch = "main"')
    env = as_user("alice", tmp_path)
    _git(repo, "checkout", "-q", "-b", "feature/Add-X")
    result = cli("names", "--branch-from-git", "-o", "json", env=env, cwd=repo)
    assert result.code == 0, result.stderr
    assert result.json()["branch"] == "test.feature_add_x"
    assert "git branch 'feature/Add-X' → branch test.feature_add_x" in result.stderr
    deployed = cli("deploy", "--branch-from-git", "-o", "json", env=env, cwd=repo)
    assert deployed.code == 0 and deployed.json()["branch"] == "test.feature_add_x"
    _git(repo, "checkout", "-q", "main")
    assert cli("names", "-o", "json", env={**env, "MFPROJ_BRANCH_FROM_GIT": "1"}, cwd=repo).json()["branch"] == "prod"
    _git(repo, "checkout", "-q", "--detach")
    detached = cli("names", "--branch-from-git", env=env, cwd=repo)
    assert detached.code == 2 and "detached" in detached.stderr and "hint:" in detached.stderr
    in_ci = cli("names", "--branch-from-git", "-o", "json", env={**env, "GITHUB_REF_NAME": "release/1.2"}, cwd=repo)
    assert in_ci.json()["branch"] == "test.release_1_2"


@needs_git
def test_the_guard_follows_the_production_branchs_committed_manifest_not_the_checkout(
    cli: Cli, tmp_path: Path, aws: Any
) -> None:
    """A feature branch made before `production_branch` was committed on main (its manifest has no such
    key), or one that drops the key, is still held to main's rule."""
    repo = _repo(tmp_path / "repo", "")
    _git(repo, "checkout", "-q", "-b", "feature/old")  # made before the rule
    _git(repo, "checkout", "-q", "main")
    _project(repo, 'production_branch = "main"')
    _git(repo, "commit", "-q", "-am", "production deploys come from main")
    _git(repo, "checkout", "-q", "feature/old")
    env = as_user("ci", tmp_path)
    refused = cli("deploy", "--production", "--dry-run", env=env, cwd=repo)
    assert refused.code == 2, refused.stderr
    assert "production deploys come from git branch 'main'" in refused.stderr and "'feature/old'" in refused.stderr
    assert cli("deploy", "--production", "--dry-run", "--allow-branch", env=env, cwd=repo).code == 0
    _git(repo, "checkout", "-q", "main")
    assert cli("deploy", "--production", "--dry-run", env=env, cwd=repo).code == 0
