"""deploy, delete and trigger on Step Functions, against moto's server over HTTP, through the real CLI."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mfproj import naming
from mfproj.backends.step_functions.record import decode_record
from mfproj.keyring import Keyring
from tests.conftest import Cli, write_manifest
from tests.conftest import as_user as _as
from tests.testing.fixtures import ROLE, Flow, make_project

ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:{}"
PROD = naming.token_prefix("myproj", "prod")

TEMPLATE = {
    "Comment": "${mfproj.project_flow_name} by ${mfproj.owner}",
    "StartAt": "start",
    "States": {
        "start": {
            "Type": "Pass",
            "Result": {"namespace": "${mfproj.namespace}", "production": "${mfproj.is_production}"},
            "End": True,
        }
    },
}


def _write_project(root: Path, *, schedule: str | None = "0 3 * * *", version: str = "v1") -> None:
    template = json.loads(json.dumps(TEMPLATE))
    template["States"]["start"]["Result"]["version"] = version
    make_project(
        root,
        Flow("HelloFlow", step_functions=template, tags=["team:ml"], file="flows/hello"),
        Flow("NightlyFlow", step_functions=template, schedule=schedule, file="flows/nightly"),
    )


@pytest.fixture
def proj(tmp_path: Path, aws: Any) -> Path:
    _write_project(tmp_path)
    return tmp_path


def _keyring(home: Path) -> Keyring:
    return Keyring(home)


def _state(sfn: Any, name: str) -> tuple[Any, dict[str, str]]:
    arn = ARN.format(name)
    described = sfn.describe_state_machine(stateMachineArn=arn)
    definition = described["definition"]
    definition = json.loads(definition) if isinstance(definition, str) else definition
    tags = {t["key"]: t["value"] for t in sfn.list_tags_for_resource(resourceArn=arn)["tags"]}
    return definition, tags


def test_first_deploy_creates_tags_and_stores_the_token_afterwards(
    cli: Cli, proj: Path, sfn: Any, events: Any, tmp_path: Path
) -> None:
    result = cli("deploy", "--production", "--tag", "release:1", "-o", "json", env=_as("alice", tmp_path))
    assert result.code == 0, result.stderr
    report = result.json()
    assert [(d["flow"], d["action"]) for d in report["deployments"]] == [
        ("HelloFlow", "create"),
        ("NightlyFlow", "create"),
    ]
    assert report["namespace"] == f"production:{PROD}-0-****"

    definition, tags = _state(sfn, "myproj.prod.HelloFlow")
    record = decode_record(tags)
    assert record is not None
    token = record.production_token
    assert token is not None and token.startswith(f"{PROD}-0-") and len(token.rsplit("-", 1)[1]) == 26
    assert (record.owner, record.project, record.branch, record.flow) == ("alice", "myproj", "prod", "HelloFlow")
    assert record.project_flow_name == "myproj.prod.HelloFlow"
    assert record.principal == "arn:aws:sts::123456789012:user/moto"
    assert record.tags == ("team:ml", "release:1")
    assert definition["States"]["start"]["Result"] == {
        "namespace": f"production:{token}",
        "production": "true",
        "version": "v1",
    }
    assert definition["Comment"] == "myproj.prod.HelloFlow by alice"
    # Both flows of the branch share one token (one namespace), and the keyring has it.
    assert decode_record(_state(sfn, "myproj.prod.NightlyFlow")[1]).production_token == token  # type: ignore[union-attr]
    assert _keyring(tmp_path / "keyring-alice").load_token(PROD) == token
    rule = events.describe_rule(Name="myproj.prod.NightlyFlow")
    assert rule["ScheduleExpression"] == "cron(0 3 * * ? *)"
    [target] = events.list_targets_by_rule(Rule="myproj.prod.NightlyFlow")["Targets"]
    assert target["Arn"] == ARN.format("myproj.prod.NightlyFlow")
    metadata = json.loads(target["Input"])["mfproj"]
    assert metadata["namespace"] == f"production:{token}"
    assert "runtime:step-functions" in metadata["tags"] and "project_branch:prod" in metadata["tags"]


def test_owner_redeploy_is_unchanged_then_updates(cli: Cli, proj: Path, sfn: Any, tmp_path: Path) -> None:
    env = _as("alice", tmp_path)
    assert cli("deploy", env=env).code == 0
    again = cli("deploy", "-o", "json", env=env).json()
    assert [d["action"] for d in again["deployments"]] == ["unchanged", "unchanged"]
    assert all(d["authorization"] == "owner" for d in again["deployments"])
    _write_project(proj, version="v2")
    changed = cli("deploy", "HelloFlow", "-o", "json", env=env).json()
    assert [(d["flow"], d["action"], d["changes"]) for d in changed["deployments"]] == [
        ("HelloFlow", "update", ["definition"])
    ]
    definition, _ = _state(sfn, "myproj.user.alice.HelloFlow")
    assert definition["States"]["start"]["Result"]["version"] == "v2"
    table = cli("deploy", env=env)
    assert "unchanged" in table.stdout


def test_another_user_without_the_token_is_refused_and_nothing_changes(
    cli: Cli, proj: Path, sfn: Any, tmp_path: Path
) -> None:
    assert cli("deploy", "--production", env=_as("alice", tmp_path)).code == 0
    before = _state(sfn, "myproj.prod.HelloFlow")
    _write_project(proj, version="v2")
    refused = cli("deploy", "--production", env=_as("bob", tmp_path))
    assert refused.code == 3
    assert "was deployed by alice, and you offered no production token" in refused.stderr
    assert "mfproj token share --production" in refused.stderr
    assert "mfproj token authorize --production -" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert _state(sfn, "myproj.prod.HelloFlow") == before
    assert not (tmp_path / "keyring-bob").exists() or not list((tmp_path / "keyring-bob").glob("mfprj-*"))

    wrong = cli(
        "deploy", "--production", "--authorize", f"{PROD}-0-wrongwrongwrongwrongwrongwr", env=_as("bob", tmp_path)
    )
    assert wrong.code == 3
    assert "the production token from --authorize does not match" in wrong.stderr
    assert _state(sfn, "myproj.prod.HelloFlow") == before

    new = cli("deploy", "--production", "--generate-new-token", env=_as("bob", tmp_path))
    assert new.code == 3
    assert _state(sfn, "myproj.prod.HelloFlow") == before


@pytest.mark.parametrize("how", ["--authorize", "--authorize-file", "environment", "keyring"])
def test_authorized_deploy_by_another_user(
    cli: Cli, proj: Path, sfn: Any, tmp_path: Path, how: str, secrets: set[str]
) -> None:
    assert cli("deploy", "--production", env=_as("alice", tmp_path)).code == 0
    token = _keyring(tmp_path / "keyring-alice").load_token(PROD)
    assert token
    secrets.add(token)
    env = _as("bob", tmp_path)
    args = ["deploy", "--production", "-o", "json"]
    if how == "--authorize":
        args += ["--authorize", f"production:{token}"]
    elif how == "--authorize-file":
        (tmp_path / "token.txt").write_text(token + "\n")
        args += ["--authorize-file", str(tmp_path / "token.txt")]
    elif how == "environment":
        env["MFPROJ_PRODUCTION_TOKEN"] = token
    else:
        share = cli("token", "share", "--production", env=_as("alice", tmp_path), reveal=True).stdout.strip()
        assert cli("token", "authorize", "--production", "-", stdin=share, env=env).code == 0
    result = cli(*args, env=env)
    assert result.code == 0, result.stderr
    source = {
        "--authorize": "--authorize",
        "--authorize-file": "--authorize-file",
        "environment": "MFPROJ_PRODUCTION_TOKEN",
        "keyring": "keyring",
    }[how]
    assert result.json()["deployments"][0]["authorization"] == f"authorized by the token from {source}"
    record = decode_record(_state(sfn, "myproj.prod.HelloFlow")[1])
    assert record is not None and (record.owner, record.production_token) == ("bob", token)
    # Bob deployed it, so his keyring now holds the token too.
    assert _keyring(tmp_path / "keyring-bob").load_token(PROD) == token


def test_generate_new_token_moves_every_flow_to_a_fresh_namespace(
    cli: Cli, proj: Path, sfn: Any, events: Any, tmp_path: Path
) -> None:
    env = _as("alice", tmp_path)
    assert cli("deploy", "--production", env=env).code == 0
    old = _keyring(tmp_path / "keyring-alice").load_token(PROD)
    result = cli("deploy", "--production", "--generate-new-token", "-o", "json", env=env)
    assert result.code == 0, result.stderr
    assert result.json()["token_changed"] is True
    new = _keyring(tmp_path / "keyring-alice").load_token(PROD)
    assert new != old and new is not None and new.startswith(f"{PROD}-1-")
    for flow in ("HelloFlow", "NightlyFlow"):
        assert decode_record(_state(sfn, f"myproj.prod.{flow}")[1]).production_token == new  # type: ignore[union-attr]
    [target] = events.list_targets_by_rule(Rule="myproj.prod.NightlyFlow")["Targets"]
    assert json.loads(target["Input"])["mfproj"]["namespace"] == f"production:{new}"


def test_metaflow_token_scheme_deploys_the_reference_tokens(cli: Cli, proj: Path, sfn: Any, tmp_path: Path) -> None:
    manifest = proj / "mfproj.toml"
    manifest.write_text(
        manifest.read_text().replace('name = "myproj"', 'name = "myproj"\ntoken_scheme = "metaflow"', 1)
    )
    env = _as("alice", tmp_path)
    assert cli("deploy", "--production", env=env).code == 0
    assert decode_record(_state(sfn, "myproj.prod.HelloFlow")[1]).production_token == "mfprj-wirqh2gc3chugnvb-0-olpw"  # type: ignore[union-attr]
    assert cli("deploy", "--production", "--generate-new-token", env=env).code == 0
    assert decode_record(_state(sfn, "myproj.prod.HelloFlow")[1]).production_token == "mfprj-wirqh2gc3chugnvb-1-cqey"  # type: ignore[union-attr]


def _reference_definition(owner: str, token: str) -> str:
    """The start state as Metaflow writes it: a Batch job whose parameters carry owner and token."""
    return json.dumps(
        {
            "StartAt": "start",
            "States": {
                "start": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::batch:submitJob.sync",
                    "Parameters": {
                        "JobName": "start",
                        "Parameters": {"metaflow.owner": owner, "metaflow.production_token": token},
                        "ContainerOverrides": {
                            "Environment": [
                                {"Name": "METAFLOW_OWNER", "Value": owner},
                                {"Name": "METAFLOW_PRODUCTION_TOKEN", "Value": token},
                            ]
                        },
                    },
                    "End": True,
                }
            },
        }
    )


def test_reference_deployments_are_guarded_the_same_way(cli: Cli, proj: Path, sfn: Any, tmp_path: Path) -> None:
    token = "mfprj-wirqh2gc3chugnvb-0-olpw"
    sfn.create_state_machine(
        name="myproj.prod.HelloFlow", definition=_reference_definition("carol", token), roleArn=ROLE
    )
    refused = cli("deploy", "HelloFlow", "--production", env=_as("bob", tmp_path))
    assert refused.code == 3 and "was deployed by carol" in refused.stderr
    allowed = cli("deploy", "HelloFlow", "--production", "--authorize", token, "-o", "json", env=_as("bob", tmp_path))
    assert allowed.code == 0, allowed.stderr
    assert allowed.json()["deployments"][0]["previous_owner"] == "carol"
    record = decode_record(_state(sfn, "myproj.prod.HelloFlow")[1])
    assert record is not None and record.production_token == token and record.owner == "bob"


def test_foreign_state_machine_is_refused_unless_adopted(cli: Cli, proj: Path, sfn: Any, tmp_path: Path) -> None:
    sfn.create_state_machine(
        name="myproj.user.alice.HelloFlow",
        definition=json.dumps({"StartAt": "x", "States": {"x": {"Type": "Succeed"}}}),
        roleArn=ROLE,
    )
    refused = cli("deploy", "HelloFlow", env=_as("alice", tmp_path))
    assert refused.code == 6
    assert "was not made by mfproj or Metaflow" in refused.stderr and "--adopt" in refused.stderr
    assert cli("deploy", "HelloFlow", "--adopt", env=_as("alice", tmp_path)).code == 0
    assert decode_record(_state(sfn, "myproj.user.alice.HelloFlow")[1]) is not None


def test_dry_run_changes_nothing(cli: Cli, proj: Path, sfn: Any, events: Any, tmp_path: Path) -> None:
    env = _as("alice", tmp_path)
    plan = cli("deploy", "--dry-run", "-o", "json", env=env)
    assert plan.code == 0, plan.stderr
    assert [d["action"] for d in plan.json()["deployments"]] == ["create", "create"]
    assert sfn.list_state_machines()["stateMachines"] == []
    assert events.list_rules()["Rules"] == []
    assert not (tmp_path / "keyring-alice" / naming.token_prefix("myproj", "user.alice")).exists()

    assert cli("deploy", env=env).code == 0
    before = _state(sfn, "myproj.user.alice.HelloFlow")
    _write_project(proj, version="v2")
    diff = cli("deploy", "--dry-run", env=env)
    assert diff.code == 0
    assert re.search(r'^- +"version": "v1"$', diff.stderr, re.M) and re.search(
        r'^\+ +"version": "v2"$', diff.stderr, re.M
    )
    assert _state(sfn, "myproj.user.alice.HelloFlow") == before


def test_schedule_is_added_and_removed(cli: Cli, proj: Path, events: Any, tmp_path: Path) -> None:
    env = _as("alice", tmp_path)
    _write_project(proj, schedule=None)
    assert cli("deploy", env=env).code == 0
    assert events.list_rules()["Rules"] == []
    _write_project(proj, schedule="*/15 8-18 * * MON-FRI")
    added = cli("deploy", "-o", "json", env=env).json()
    assert [(d["flow"], d["action"], d["changes"]) for d in added["deployments"]] == [
        ("HelloFlow", "unchanged", []),
        ("NightlyFlow", "update", ["schedule"]),
    ]
    rule = events.describe_rule(Name="myproj.user.alice.NightlyFlow")
    assert rule["ScheduleExpression"] == "cron(0/15 8-18 ? * MON,TUE,WED,THU,FRI *)"
    _write_project(proj, schedule=None)
    removed = cli("deploy", "-o", "json", env=env).json()
    assert removed["deployments"][1]["changes"] == ["schedule"]
    assert events.list_rules()["Rules"] == []


def test_delete_removes_rule_and_state_machine_and_keeps_the_token(
    cli: Cli, proj: Path, sfn: Any, events: Any, tmp_path: Path
) -> None:
    env = _as("alice", tmp_path)
    assert cli("deploy", "--production", env=env).code == 0
    token = _keyring(tmp_path / "keyring-alice").load_token(PROD)
    assert cli("delete", "NightlyFlow", "--production", env=_as("bob", tmp_path, CI="1")).code == 3
    needs_yes = cli("delete", "NightlyFlow", "--production", env=env)
    assert needs_yes.code == 2 and "--yes" in needs_yes.stderr
    deleted = cli("delete", "NightlyFlow", "--production", "--yes", env=env)
    assert deleted.code == 0, deleted.stderr
    assert "no running executions" in deleted.stderr
    names = [m["name"] for m in sfn.list_state_machines()["stateMachines"]]
    assert names == ["myproj.prod.HelloFlow"]
    assert events.list_rules()["Rules"] == []
    assert _keyring(tmp_path / "keyring-alice").load_token(PROD) == token
    missing = cli("delete", "NightlyFlow", "--production", "--yes", env=env)
    assert missing.code == 4 and "not deployed in prod" in missing.stderr


def test_trigger_and_wait(cli: Cli, proj: Path, sfn: Any, tmp_path: Path) -> None:
    env = _as("alice", tmp_path)
    assert cli("deploy", "--branch", "exp", "--tag", "deploy-tag", env=env).code == 0
    (tmp_path / "input.json").write_text(json.dumps({"alpha": 0.5}))
    result = cli(
        "trigger",
        "HelloFlow",
        "--branch",
        "exp",
        "--tag",
        "run:1",
        "--param",
        "k=v",
        "--input-file",
        "input.json",
        "--wait",
        "-o",
        "json",
        env=env,
    )
    assert result.code == 0, result.stderr
    run = result.json()
    assert run["status"] == "SUCCEEDED"
    assert run["run_id"].startswith("sfn-") and (run["flow"], run["branch"], run["backend"]) == (
        "HelloFlow",
        "test.exp",
        "step_functions",
    )
    execution_arn = (
        ARN.format("myproj.test.exp.HelloFlow").replace(":stateMachine:", ":execution:") + ":" + run["run_id"][4:]
    )
    payload = json.loads(sfn.describe_execution(executionArn=execution_arn)["input"])
    assert payload["alpha"] == 0.5 and json.loads(payload["Parameters"]) == {"k": "v"}
    token = _keyring(tmp_path / "keyring-alice").load_token(naming.token_prefix("myproj", "test.exp"))
    assert payload["mfproj"]["namespace"] == f"production:{token}"
    assert payload["mfproj"]["triggered_by"] == {"type": "user", "name": "alice"}
    for tag in (
        "project:myproj",
        "project_branch:test.exp",
        f"production:{token}",
        "runtime:step-functions",
        "user:alice",
        "team:ml",
        "deploy-tag",
        "run:1",
    ):
        assert tag in payload["mfproj"]["tags"]


def test_trigger_wait_exits_7_when_the_run_fails(cli: Cli, tmp_path: Path, aws: Any) -> None:
    (tmp_path / "fail.json").write_text(
        json.dumps({"StartAt": "boom", "States": {"boom": {"Type": "Fail", "Error": "Broken"}}})
    )
    write_manifest(
        tmp_path,
        f"""
        [project]
        name = "myproj"
        [[flows]]
        name = "FailFlow"
        step_functions = "fail.json"
        [step_functions]
        region = "us-east-1"
        role_arn = "{ROLE}"
        """,
        templates=False,
    )
    env = _as("alice", tmp_path)
    assert cli("deploy", env=env).code == 0
    result = cli("trigger", "FailFlow", "--wait", "-o", "json", env=env)
    assert result.code == 7
    assert result.json()["status"] == "FAILED"
    assert "ended FAILED" in result.stderr
    not_deployed = cli("trigger", "FailFlow", "--production", env=env)
    assert not_deployed.code == 4 and "mfproj deploy" in not_deployed.stderr


def test_unreachable_endpoint_exits_5_and_names_it(cli: Cli, proj: Path, tmp_path: Path) -> None:
    from tests.emulators import free_port

    url = f"http://127.0.0.1:{free_port()}"
    env = _as("alice", tmp_path, AWS_ENDPOINT_URL=url, MFPROJ_AWS_MAX_ATTEMPTS="2", MFPROJ_AWS_CONNECT_TIMEOUT="1")
    result = cli("deploy", env=env)
    assert result.code == 5
    assert url in result.stderr
    assert result.stderr.count("error:") == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "keyring-alice").exists() or not list((tmp_path / "keyring-alice").glob("mfprj-*"))


def test_a_failure_midway_rolls_back_every_flow(
    cli: Cli, proj: Path, sfn: Any, events: Any, tmp_path: Path, aws: Any
) -> None:
    from tests.emulators import FaultProxy

    env = _as("alice", tmp_path)
    assert cli("deploy", env=env).code == 0
    before = {f: _state(sfn, f"myproj.user.alice.{f}") for f in ("HelloFlow", "NightlyFlow")}
    rule_before = events.describe_rule(Name="myproj.user.alice.NightlyFlow")["ScheduleExpression"]
    keyring_before = (tmp_path / "keyring-alice" / naming.token_prefix("myproj", "user.alice")).read_text()
    _write_project(proj, schedule="30 1 * * *", version="v2")
    proxy = FaultProxy(aws.url)
    try:
        proxy.fail("AWSEvents.PutTargets")
        failing = {**env, "AWS_ENDPOINT_URL": proxy.url, "MFPROJ_AWS_MAX_ATTEMPTS": "1"}  # the rollback, not retries
        result = cli("deploy", "--generate-new-token", env=failing)
    finally:
        proxy.stop()
    assert result.code == 5, result.stderr
    assert "nothing was changed" in result.stderr and "rolled back" in result.stderr
    after = {f: _state(sfn, f"myproj.user.alice.{f}") for f in ("HelloFlow", "NightlyFlow")}
    assert after == before
    assert events.describe_rule(Name="myproj.user.alice.NightlyFlow")["ScheduleExpression"] == rule_before
    assert (tmp_path / "keyring-alice" / naming.token_prefix("myproj", "user.alice")).read_text() == keyring_before


def test_invalid_names_are_refused_before_any_request(cli: Cli, proj: Path, tmp_path: Path, aws: Any) -> None:
    from tests.emulators import FaultProxy

    proxy = FaultProxy(aws.url)
    try:
        result = cli("deploy", env={**_as("john doe", tmp_path), "AWS_ENDPOINT_URL": proxy.url})
        assert result.code == 2
        assert "must not contain white space" in result.stderr and "METAFLOW_USER" in result.stderr
        assert proxy.log == []
    finally:
        proxy.stop()


@pytest.mark.skipif(shutil.which("aws") is None, reason="the AWS CLI is not installed")
def test_the_aws_cli_reads_the_deployment_back(cli: Cli, proj: Path, aws: Any, tmp_path: Path) -> None:
    assert cli("deploy", "--production", env=_as("alice", tmp_path)).code == 0
    env = {**os.environ, "AWS_ENDPOINT_URL": aws.url}
    arn = ARN.format("myproj.prod.HelloFlow")
    described = subprocess.run(
        ["aws", "stepfunctions", "describe-state-machine", "--state-machine-arn", arn, "--output", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert described.returncode == 0, described.stderr
    assert json.loads(described.stdout)["name"] == "myproj.prod.HelloFlow"
    tagged = subprocess.run(
        ["aws", "stepfunctions", "list-tags-for-resource", "--resource-arn", arn, "--output", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    tags = {t["key"]: t["value"] for t in json.loads(tagged.stdout)["tags"]}
    assert tags["mfproj:owner"] == "alice" and tags["mfproj:branch"] == "prod"
    assert tags["mfproj:project_flow_name"] == "myproj.prod.HelloFlow"
