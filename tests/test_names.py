"""What the real run would refuse, found offline: by `names`, by `deploy --dry-run` (before any request),
and at manifest load where the manifest itself is wrong."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Cli, as_user
from tests.emulators import FaultProxy
from tests.testing.fixtures import Flow, make_project, succeed_machine, workflow_template


def _project(root: Path, *, role: bool = True, schedule: str | None = None) -> None:
    make_project(
        root,
        Flow("HelloFlow", step_functions=succeed_machine(), schedule=schedule, file="a"),
        Flow("ArgoFlow", argo_workflows=workflow_template([]), schedule="0 3 1 * MON", file="a"),
        role_arn="arn:aws:iam::123456789012:role/r" if role else None,
    )


def test_a_missing_role_is_found_by_names_and_by_dry_run_before_any_request(
    cli: Cli, tmp_path: Path, aws_proxy: FaultProxy
) -> None:
    _project(tmp_path, role=False)
    env = as_user("alice", tmp_path, AWS_ENDPOINT_URL=aws_proxy.url)
    names = cli("names", env=env)
    assert names.code == 0
    assert "warning: HelloFlow: step_functions.role_arn is required to deploy to Step Functions" in names.stderr
    problems = cli("names", "-o", "json", env=env).json()["problems"]
    assert [(p["flow"], p["kind"], p["name"]) for p in problems] == [
        ("HelloFlow", "setting", "step_functions.role_arn")
    ]
    assert cli("names", "--strict", env=env).code == 2
    for args in (["deploy", "--dry-run"], ["deploy"]):
        result = cli(*args, env=env)
        assert result.code == 2, result.stderr
        assert "step_functions.role_arn is required" in result.stderr and "hint:" in result.stderr
    as_json = cli("deploy", "HelloFlow", "--dry-run", "-o", "json", env=env)
    error = json.loads(as_json.stderr)["error"]
    assert as_json.code == error["exit_code"] == 2 and error["code"] == "validation"
    assert "step_functions.role_arn is required" in error["message"] and error["hint"]
    assert aws_proxy.log == []  # all of it offline
    # A flow without a Step Functions template needs no role.
    assert "role_arn" not in cli("deploy", "ArgoFlow", "--dry-run", env=env).stderr


def test_a_schedule_eventbridge_cannot_express_is_a_manifest_error(cli: Cli, tmp_path: Path) -> None:
    _project(tmp_path, schedule="0 3 1 * MON")
    env = as_user("alice", tmp_path)
    for args in (["names"], ["deploy", "--dry-run"]):
        result = cli(*args, env=env)
        assert result.code == 2, result.stderr
        first = result.stderr.splitlines()[0]
        assert first.startswith("error:") and "mfproj.toml: flows[0].schedule:" in first
        assert "day of month and day of week" in first
        assert "hint:" in result.stderr
    # Argo's cron has no such limit: the same schedule on an Argo-only flow (flows[1] above) is fine.
    _project(tmp_path)
    assert cli("names", env=env).code == 0


def test_a_name_a_backend_would_refuse_is_found_by_dry_run_before_any_request(
    cli: Cli, tmp_path: Path, aws_proxy: FaultProxy
) -> None:
    _project(tmp_path)
    env = as_user("john doe", tmp_path, AWS_ENDPOINT_URL=aws_proxy.url)
    result = cli("deploy", "HelloFlow", "--dry-run", env=env)
    assert result.code == 2, result.stderr
    assert "must not contain white space" in result.stderr and "METAFLOW_USER" in result.stderr
    assert aws_proxy.log == []


def test_branch_takes_a_whole_branch_name_of_any_kind(cli: Cli, cli_process: Cli, tmp_path: Path) -> None:
    """`--branch user.bob`, `test.x`, `prod.x`: as the tool prints branches (the reference's branch names
    have no dot, so none is ambiguous), in-process and on the fast path of a real process."""
    make_project(tmp_path, Flow("HelloFlow", step_functions=succeed_machine()))
    alice = as_user("alice", tmp_path)
    for run in (cli, cli_process):
        given_as = (("user.bob",), ("test.x",), ("prod.x", "--production"), ("x",))
        for given, branch in zip(given_as, ("user.bob", "test.x", "prod.x", "test.x"), strict=True):
            shown = run("names", "--branch", *given, "-o", "json", env=alice)
            assert shown.code == 0 and shown.json()["branch"] == branch, (given, shown.stderr)
        both = run("names", "--branch", "test.x", "--production", env=alice)
        assert both.code == 2 and "names a whole branch" in both.stderr
        unnamed = run("names", "--branch", "prod.x", env=alice)  # production only with --production named
        assert unnamed.code == 2 and "hint: --production --branch x" in unnamed.stderr, unnamed.stderr
