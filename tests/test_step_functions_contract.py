"""The Step Functions contract on both emulators (the `sfn_emulator` fixture): moto, and LocalStack, which
behaves as AWS does where moto does not (definitions as text, StateMachineAlreadyExists, executions that
really run). deploy, redeploy, update, dry run, trigger --wait and delete, through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import Cli, StepFunctionsEmulator, as_user
from tests.testing.fixtures import Flow, make_project, pass_machine, write_templates

NAME = "myproj.user.alice.HelloFlow"


def _hello(result: str) -> Flow:
    return Flow("HelloFlow", step_functions=pass_machine(result), schedule="0 3 * * *", file="hello")


def _definition(emulator: StepFunctionsEmulator) -> Any:
    described = emulator.client("stepfunctions").describe_state_machine(
        stateMachineArn=emulator.state_machine_arn(NAME)
    )
    definition = described["definition"]
    return json.loads(definition) if isinstance(definition, str) else definition


def test_deploy_redeploy_update_and_delete(cli: Cli, tmp_path: Path, sfn_emulator: StepFunctionsEmulator) -> None:
    make_project(tmp_path, _hello("v1"))
    env = as_user("alice", tmp_path)
    first = cli("deploy", "--backend", "step-functions", "-o", "json", env=env)
    assert first.code == 0, first.stderr
    assert [d["action"] for d in first.json()["deployments"]] == ["create"]
    assert _definition(sfn_emulator)["States"]["a"]["Result"] == "v1"
    rule = sfn_emulator.client("events").describe_rule(Name=NAME)
    assert rule["ScheduleExpression"] == "cron(0 3 * * ? *)"

    again = cli("deploy", "--backend", "step-functions", "-o", "json", env=env)
    assert [d["action"] for d in again.json()["deployments"]] == ["unchanged"], again.stderr

    write_templates(tmp_path, _hello("v2"))
    planned = cli("deploy", "--backend", "step-functions", "--dry-run", env=env)
    assert planned.code == 0 and '-      "Result": "v1",' in planned.stderr, planned.stderr
    assert _definition(sfn_emulator)["States"]["a"]["Result"] == "v1"  # a dry run changes nothing
    updated = cli("deploy", "--backend", "step-functions", "-o", "json", env=env)
    assert updated.json()["deployments"][0]["action"] == "update", updated.stderr
    assert _definition(sfn_emulator)["States"]["a"]["Result"] == "v2"

    deleted = cli("delete", "HelloFlow", "--yes", env=env)
    assert deleted.code == 0, deleted.stderr
    machines = sfn_emulator.client("stepfunctions").list_state_machines()["stateMachines"]
    assert NAME not in [m["name"] for m in machines]


def test_trigger_and_wait_for_the_run(cli: Cli, tmp_path: Path, sfn_emulator: StepFunctionsEmulator) -> None:
    make_project(tmp_path, Flow("HelloFlow", step_functions=pass_machine("${mfproj.namespace}"), file="hello"))
    env = as_user("alice", tmp_path)
    assert cli("deploy", "--backend", "step-functions", env=env).code == 0
    result = cli("trigger", "HelloFlow", "--tag", "nightly", "--wait", "--timeout", "60", "-o", "json", env=env)
    assert result.code == 0, result.stderr
    run = result.json()
    assert run["status"] == "SUCCEEDED"
    shown = cli("runs", "show", run["run_id"], "-o", "json", env=env)
    assert shown.code == 0, shown.stderr
    assert "nightly" in shown.json()["tags"]


def test_another_writers_machine_with_the_name_is_refused_not_replaced(
    cli: Cli, tmp_path: Path, sfn_emulator: StepFunctionsEmulator
) -> None:
    """A state machine of the same name made by someone else (no record): deploy refuses to take it over."""
    make_project(tmp_path, _hello("v1"))
    sfn_emulator.client("stepfunctions").create_state_machine(
        name=NAME, definition=json.dumps(pass_machine("theirs")), roleArn="arn:aws:iam::123456789012:role/other"
    )
    result = cli("deploy", "--backend", "step-functions", env=as_user("alice", tmp_path))
    assert result.code != 0 and "--adopt" in result.stderr, result.stderr
    assert _definition(sfn_emulator)["States"]["a"]["Result"] == "theirs"


def test_a_definition_the_service_refuses_is_found_by_the_dry_run(
    cli: Cli, tmp_path: Path, sfn_emulator: StepFunctionsEmulator
) -> None:
    """ValidateStateMachineDefinition where the service has it (LocalStack, AWS): a state the language does
    not have is exit 2 in --dry-run and in deploy, before any write. Where the service lacks the
    call (moto answers 500), the check is skipped quietly, without retries. (LocalStack checks the schema
    only, so the broken state is a type that does not exist.)"""
    broken = {"StartAt": "a", "States": {"a": {"Type": "Bogus", "End": True}}}
    make_project(tmp_path, Flow("HelloFlow", step_functions=broken, file="hello"))
    env = as_user("alice", tmp_path)
    if sfn_emulator.name == "moto":  # no check to ask: the dry run goes on, asked once, with no retry
        from tests.emulators import FaultProxy

        make_project(
            tmp_path,
            Flow("HelloFlow", step_functions=broken, file="hello"),
            Flow("OtherFlow", step_functions=broken, file="other"),
        )
        proxy = FaultProxy(sfn_emulator.url)
        try:
            result = cli(
                "deploy", "--dry-run", "--backend", "step-functions", env={**env, "AWS_ENDPOINT_URL": proxy.url}
            )
            assert result.code == 0 and "warning" not in result.stderr, result.stderr
            assert proxy.count("ValidateStateMachineDefinition") == 1
        finally:
            proxy.stop()
        return
    for args in (["deploy", "--dry-run"], ["deploy"]):
        result = cli(*args, "--backend", "step-functions", env=env)
        assert result.code == 2, result.stderr
        assert "HelloFlow: Step Functions would refuse its definition" in result.stderr
        assert "nothing was deployed" in result.stderr
    assert sfn_emulator.client("stepfunctions").list_state_machines()["stateMachines"] == []
