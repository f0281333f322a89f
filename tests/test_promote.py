"""`mfproj promote`: production gets exactly the commit deployed on test.B, read from git whatever the
working tree holds; dirty, git-less or mixed-commit sources are refused; --dry-run changes nothing."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, as_user, write_manifest
from tests.testing.fixtures import ROLE

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:{}"


def _template(repo: Path, version: str) -> None:
    asl = {"StartAt": "a", "States": {"a": {"Type": "Pass", "Result": version, "End": True}}}
    (repo / "flows").mkdir(exist_ok=True)
    (repo / "flows" / "hello.asl.json").write_text(json.dumps(asl))
    argo = {"spec": {"entrypoint": "a", "templates": [{"name": "a", "container": {"image": version}}]}}
    (repo / "flows" / "hello.json").write_text(json.dumps(argo))


@pytest.fixture
def repo(tmp_path: Path, aws: Any, kube: Any) -> Path:
    root = tmp_path / "repo" / "project"  # the manifest below the repository's top
    root.mkdir(parents=True)
    _template(root, "v1")
    write_manifest(
        root,
        f'[project]\nname = "myproj"\n[[flows]]\nname = "HelloFlow"\nstep_functions = "flows/hello.asl.json"\n'
        'argo_workflows = "flows/hello.json"\n'
        f'[step_functions]\nregion = "us-east-1"\nrole_arn = "{ROLE}"\n',
        templates=False,
    )
    _git(root.parent, "init", "-q", "-b", "main")
    _git(root.parent, "add", "-A")
    _git(root.parent, "commit", "-q", "-m", "v1")
    return root


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


def _version(sfn: Any, name: str) -> str:
    definition = sfn.describe_state_machine(stateMachineArn=ARN.format(name))["definition"]
    definition = json.loads(definition) if isinstance(definition, str) else definition
    return str(definition["States"]["a"]["Result"])


def test_promote_deploys_the_tested_commit_even_when_the_tree_moved_on(
    cli: Cli, repo: Path, tmp_path: Path, sfn: Any, kube: Any
) -> None:
    tested = _git(repo, "rev-parse", "HEAD")
    alice = as_user("alice", tmp_path)
    assert cli("deploy", "--branch", "exp", env=alice, cwd=repo).code == 0
    _template(repo, "v2")  # the tree moves on: a new commit and an uncommitted change on top
    _git(repo, "commit", "-q", "-am", "v2")
    _template(repo, "v3-uncommitted")
    plan = cli("promote", "--branch", "exp", "--dry-run", "-o", "json", env=alice, cwd=repo)
    assert plan.code == 0, plan.stderr
    assert plan.json()["commit"] == tested and plan.json()["dry_run"] is True
    with pytest.raises(sfn.exceptions.StateMachineDoesNotExist):
        sfn.describe_state_machine(stateMachineArn=ARN.format("myproj.prod.HelloFlow"))
    done = cli("promote", "--branch", "exp", "--allow-dirty", "-o", "json", env=alice, cwd=repo)
    assert done.code == 0, done.stderr
    assert _version(sfn, "myproj.prod.HelloFlow") == "v1"  # what was tested, not the working tree
    template = kube.objects[("workflowtemplates", "default", "myproj.prod.helloflow")]
    assert template["spec"]["templates"][0]["container"]["image"] == "v1"
    rows = cli("deployments", "--production", "-o", "json", env=alice, cwd=repo).json()
    assert {r["backend"] for r in rows} == {"step_functions", "argo_workflows"}
    for row in rows:
        assert (
            row["commit"] == tested and row["promoted_from"].startswith(f"test.exp@{tested}/") and row["dirty"] is False
        )
    to_variant = cli("promote", "--branch", "exp", "--to-branch", "v1", "--allow-dirty", env=alice, cwd=repo)
    assert to_variant.code == 0 and _version(sfn, "myproj.prod.v1.HelloFlow") == "v1"


def test_a_dirty_or_changed_source_cannot_be_promoted(cli: Cli, repo: Path, tmp_path: Path, sfn: Any) -> None:
    alice = as_user("alice", tmp_path)
    _template(repo, "v2-uncommitted")
    assert cli("deploy", "--branch", "dirty", env=alice, cwd=repo).code == 0
    refused = cli("promote", "--branch", "dirty", env=alice, cwd=repo)
    assert refused.code == 2 and "dirty tree" in refused.stderr and "hint:" in refused.stderr
    assert cli("promote", "--branch", "nothing", env=alice, cwd=repo).code == 4
    # test.exp from the clean commit, then changed by hand on the service: the source is not proven.
    _git(repo, "checkout", "-q", "--", ".")
    assert cli("deploy", "--branch", "exp", env=alice, cwd=repo).code == 0
    changed = {"StartAt": "a", "States": {"a": {"Type": "Pass", "Result": "hand-made", "End": True}}}
    sfn.update_state_machine(stateMachineArn=ARN.format("myproj.test.exp.HelloFlow"), definition=json.dumps(changed))
    unproven = cli("promote", "--branch", "exp", env=alice, cwd=repo)
    assert unproven.code == 2 and "is not what commit" in unproven.stderr
    outside = tmp_path / "outside"
    shutil.copytree(repo, outside)
    assert cli("deploy", "--branch", "nogit", env=alice, cwd=outside).code == 0
    nogit = cli("promote", "--branch", "nogit", env=alice, cwd=outside)
    assert nogit.code == 2 and "outside a git repository" in nogit.stderr


def _exec_kubeconfig(server: str) -> str:
    """A kubeconfig whose credentials come from an exec plugin that leaves a mark wherever it runs."""
    credential = json.dumps(
        {"apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "ExecCredential", "status": {"token": "x"}}
    )
    plugin = {
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "command": "sh",
        "args": ["-c", f"echo ran >> \"$MFPROJ_TEST_MARK\"; echo '{credential}'"],
    }
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "c", "cluster": {"server": server}}],
            "users": [{"name": "u", "user": {"exec": plugin}}],
            "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u", "namespace": "default"}}],
            "current-context": "c",
        }
    )


def test_promote_takes_code_from_the_tested_commit_and_configuration_from_the_caller(
    cli: Cli, repo: Path, tmp_path: Path, sfn: Any, kube: Any
) -> None:
    manifest = repo / "mfproj.toml"
    clean = manifest.read_text()
    # The tester's commit points production elsewhere: its own kubeconfig (with an exec plugin) and role.
    (repo / "kc.json").write_text(_exec_kubeconfig(kube.url))
    hostile = (
        clean.replace(ROLE, "arn:aws:iam::123456789012:role/attacker") + '[argo_workflows]\nkubeconfig = "kc.json"\n'
    )
    manifest.write_text(hostile)
    _git(repo.parent, "add", "-A")
    _git(repo.parent, "commit", "-q", "-m", "tested")
    mark = tmp_path / "tester-mark"
    tester = {**as_user("mallory", tmp_path), "MFPROJ_TEST_MARK": str(mark)}
    assert cli("deploy", "--branch", "exp", env=tester, cwd=repo).code == 0
    assert mark.exists()  # the plugin ran on the tester's own machine, as it may
    manifest.write_text(clean)  # the promoter's manifest: the clean one (uncommitted here)
    promoter_mark = tmp_path / "promoter-mark"
    promoter = {**as_user("alice", tmp_path), "MFPROJ_TEST_MARK": str(promoter_mark)}
    plan = cli("promote", "--branch", "exp", "--dry-run", "--allow-dirty", env=promoter, cwd=repo)
    assert plan.code == 0, plan.stderr
    assert "[step_functions], [argo_workflows]" in plan.stderr and "yours" in plan.stderr
    done = cli("promote", "--branch", "exp", "--allow-dirty", env=promoter, cwd=repo)
    assert done.code == 0, done.stderr
    assert not promoter_mark.exists()  # nothing of the tested commit ran on the promoter's machine
    described = sfn.describe_state_machine(stateMachineArn=ARN.format("myproj.prod.HelloFlow"))
    assert described["roleArn"] == ROLE


def test_promote_ignores_untracked_files_and_says_how_to_promote_what_is_there(
    cli: Cli, repo: Path, tmp_path: Path, sfn: Any
) -> None:
    """Promote reads the code from git: an untracked file is not an uncommitted change to it. A source
    branch missing some deployments gets the command that promotes the rest."""
    manifest = repo / "mfproj.toml"
    manifest.write_text(manifest.read_text().replace('name = "myproj"', 'name = "myproj"\nproduction_branch = "main"'))
    _git(repo.parent, "commit", "-q", "-am", "production from main")
    alice = as_user("alice", tmp_path)
    assert cli("deploy", "--branch", "exp", "--backend", "step-functions", env=alice, cwd=repo).code == 0
    (repo / "notes.txt").write_text("untracked")
    missing = cli("promote", "--branch", "exp", "--dry-run", env=alice, cwd=repo)
    assert missing.code == 4, missing.stderr
    assert "hint: deploy and test it there first, or promote what is there: " in missing.stderr
    assert "mfproj promote --branch exp --backend step-functions" in missing.stderr
    done = cli("promote", "--branch", "exp", "--backend", "step-functions", "--dry-run", env=alice, cwd=repo)
    assert done.code == 0, done.stderr  # the untracked file is no reason to refuse
