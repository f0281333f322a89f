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
from tests.testing.branch import retemplate, two_flow_project


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
    retemplate(tmp_path, "TrainFlow", "v2")
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
    # rev-parse HEAD, status, the branch: once for the guard, the choice and the record; and one `git show`
    # of the production branch's committed manifest (its production_branch rules, not the working tree's)
    assert len(reads) == 4, reads
    assert result.stderr.count("is the production branch") == 1
    tags = sfn.list_tags_for_resource(
        resourceArn="arn:aws:states:us-east-1:123456789012:stateMachine:myproj.prod.TrainFlow"
    )["tags"]
    assert any(t["key"] == "mfproj:commit" for t in tags)  # the lineage read once is the one recorded


def _change_under_the_locks(monkeypatch: pytest.MonkeyPatch, change: Any) -> None:
    """Runs `change` (another writer) right after the deploy has taken its locks."""
    import contextlib

    from mfproj.usecases import deploy

    real = deploy.locked

    @contextlib.contextmanager
    def locked_then_changed(*args: Any, **kwargs: Any) -> Any:
        with real(*args, **kwargs):
            change()
            yield

    monkeypatch.setattr(deploy, "locked", locked_then_changed)


def test_a_change_the_listing_shows_locks_first_and_reads_each_deployment_once(
    cli: Cli, tmp_path: Path, sfn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tagging API's records show TrainFlow changing: the locks come first, then one read of each
    deployment under them (not one before and one under: DescribeStateMachine is throttled at 20 a second)."""
    from mfproj import authorization
    from mfproj.backends.step_functions.backend import StepFunctionsBackend

    two_flow_project(tmp_path)
    env = as_user("alice", tmp_path)
    assert cli("deploy", env=env).code == 0
    retemplate(tmp_path, "TrainFlow", "v2")
    decisions = _count_calls(monkeypatch, authorization, "authorize")
    listed = _count_calls(monkeypatch, StepFunctionsBackend, "read_listed")
    reads = _count_calls(monkeypatch, StepFunctionsBackend, "read")
    result = cli("deploy", "TrainFlow", "-o", "json", env=env)
    assert result.code == 0, result.stderr
    assert result.json()["deployments"][0]["action"] == "update"
    assert len(listed) == 2  # both flows as listed: TrainFlow changes, EvalFlow is read for its token
    assert len(reads) == 2  # both flows once, under the lock
    assert len(decisions) == 2  # the guess from the listing, then the plan from what is there


def test_under_the_locks_an_unchanged_branch_is_read_again_but_not_planned_again(
    cli: Cli, tmp_path: Path, sfn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A change the listing cannot see (the role is not in the record): planned from a full read, then
    read again under the locks, and not planned again since nothing moved."""
    from mfproj import authorization
    from mfproj.backends.step_functions.backend import StepFunctionsBackend

    two_flow_project(tmp_path)
    env = as_user("alice", tmp_path)
    assert cli("deploy", env=env).code == 0
    manifest = tmp_path / "mfproj.toml"
    manifest.write_text(manifest.read_text().replace("role/sfn-exec", "role/sfn-exec-2"))
    decisions = _count_calls(monkeypatch, authorization, "authorize")
    reads = _count_calls(monkeypatch, StepFunctionsBackend, "read")
    result = cli("deploy", "TrainFlow", "-o", "json", env=env)
    assert result.code == 0, result.stderr
    assert result.json()["deployments"][0]["changes"] == ["role"], result.stdout
    assert len(reads) == 4  # both flows before the locks, and again under them
    assert len(decisions) == 2  # the guess (no change seen), then TrainFlow once: nothing moved under the locks


def test_a_change_that_lands_before_the_locks_is_planned_again_and_refused(
    cli: Cli, tmp_path: Path, sfn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bob moves the deployment to his own token between Alice's plan and her locks: her deploy, authorized
    against what she read first, is authorized again against what is there now, and refused."""
    from dataclasses import replace

    from mfproj.backends.step_functions.record import decode_record, encode_record
    from tests.testing.branch import ARN, sfn_name

    two_flow_project(tmp_path)
    alice = as_user("alice", tmp_path)
    assert cli("deploy", "--branch", "solo", env=alice).code == 0
    retemplate(tmp_path, "TrainFlow", "v2")
    arn = ARN.format(sfn_name("TrainFlow"))

    def bob_takes_over() -> None:
        tags = {t["key"]: t["value"] for t in sfn.list_tags_for_resource(resourceArn=arn)["tags"]}
        record = decode_record(tags)
        assert record is not None
        bobs = replace(record, owner="bob", principal="arn:aws:iam::123456789012:user/bob", production_token="b" * 20)
        sfn.tag_resource(resourceArn=arn, tags=[{"key": k, "value": v} for k, v in encode_record(bobs).items()])

    _change_under_the_locks(monkeypatch, bob_takes_over)
    result = cli("deploy", "--branch", "solo", "TrainFlow", env=alice)
    assert result.code == 3, result.stderr
    assert "v2" not in json.dumps(sfn.describe_state_machine(stateMachineArn=arn)["definition"])
