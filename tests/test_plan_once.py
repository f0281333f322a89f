"""A deploy plans once (issue 19): each template is rendered once, git is read once, the branch chosen
from git is said once, whatever the deploy does under its locks. Counted on the real code paths (spies
that count and call through), against moto."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, as_user
from tests.test_trust import _retemplate, two_flow_project


def _count_calls(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> list[Any]:
    """Counts the calls of owner.name, calling the real one each time."""
    calls: list[Any] = []
    real = getattr(owner, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return calls


def test_a_deploy_of_one_changed_flow_renders_its_template_once(
    cli: Cli, tmp_path: Path, sfn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mfproj.backends.step_functions.backend import StepFunctionsBackend

    two_flow_project(tmp_path)
    env = as_user("alice", tmp_path)
    assert cli("deploy", env=env).code == 0
    _retemplate(tmp_path, "TrainFlow", "v2")
    renders = _count_calls(monkeypatch, StepFunctionsBackend, "render")
    result = cli("deploy", "TrainFlow", "-o", "json", env=env)
    assert result.code == 0, result.stderr
    assert result.json()["deployments"][0]["action"] == "update"  # planned, locked, planned again, applied
    assert [Path(args[1]).name for args in renders] == ["TrainFlow.asl.json"]
    described = sfn.describe_state_machine(
        stateMachineArn=f"arn:aws:states:us-east-1:123456789012:stateMachine:{'myproj.user.alice.TrainFlow'}"
    )
    assert "v2" in json.dumps(described["definition"])
    assert "mfproj-token-not-yet-known" not in json.dumps(described["definition"])


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_a_production_deploy_from_git_reads_git_once_and_says_the_branch_once(
    cli: Cli, tmp_path: Path, sfn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mfproj import lineage

    two_flow_project(tmp_path)
    manifest = tmp_path / "mfproj.toml"
    manifest.write_text(
        manifest.read_text().replace('name = "myproj"', 'name = "myproj"\nproduction_branch = "main"', 1)
    )
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "one"]):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=tmp_path, check=True)
    reads = _count_calls(monkeypatch, lineage, "git")
    result = cli("deploy", "--branch-from-git", env=as_user("alice", tmp_path))
    assert result.code == 0, result.stderr
    assert len(reads) == 3, reads  # rev-parse HEAD, status, the branch: once for the guard, the choice and the record
    assert result.stderr.count("is the production branch") == 1
    tags = sfn.list_tags_for_resource(
        resourceArn="arn:aws:states:us-east-1:123456789012:stateMachine:myproj.prod.TrainFlow"
    )["tags"]
    assert any(t["key"] == "mfproj:commit" for t in tags)  # the lineage read once is the one recorded
