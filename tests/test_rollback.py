"""`mfproj rollback`: a 3-flow branch on Step Functions (LocalStack, which keeps versions) and Argo (the
Kubernetes emulator) put back to the previous deploy and to an older one, definitions, records and
schedules read back from the emulators; a rollback is a deploy that can be rolled back; someone without
the token cannot roll production back; a rollback cut off part-way says the truth (exit 8)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mfproj.backends.argo_workflows.record import decode_annotations
from mfproj.backends.step_functions.record import decode_record
from tests.conftest import Cli, StepFunctionsEmulator, as_user
from tests.testing.fixtures import Flow, git_commit, make_project, pass_machine, workflow_template

SCHEDULES = {"v1": "0 3 * * *", "v2": "0 5 * * *", "v3": "0 7 * * *"}


def _flows(version: str) -> list[Flow]:
    return [
        Flow("AFlow", step_functions=pass_machine(version), argo_workflows=workflow_template([{"name": version}])),
        Flow("BFlow", step_functions=pass_machine(version), schedule=SCHEDULES[version]),
        Flow("CFlow", argo_workflows=workflow_template([{"name": version}]), schedule=SCHEDULES[version]),
    ]


def _deploy_three(cli: Cli, root: Path, env: dict[str, str], *args: str) -> dict[str, tuple[str, str]]:
    """v1, v2, v3 deployed from three commits: version -> (deploy id, commit)."""
    done = {}
    for version in ("v1", "v2", "v3"):
        make_project(root, *_flows(version))  # templates and schedules of this version
        commit = git_commit(root, version)
        result = cli("deploy", *args, "-o", "json", env=env)
        assert result.code == 0, result.stderr
        newest = cli("history", *args, "-o", "json", env=env).json()["deploys"][0]
        done[version] = (newest["deploy_id"], commit)
    return done


def _state(sfn_emulator: StepFunctionsEmulator, kube: Any, branch: str = "user.alice") -> dict[str, Any]:
    """What the emulators hold: each deployment's version marker, schedule, and record lineage."""
    sfn, events = sfn_emulator.client("stepfunctions"), sfn_emulator.client("events")
    found: dict[str, Any] = {}
    for flow in ("AFlow", "BFlow"):
        name = f"myproj.{branch}.{flow}"
        arn = sfn_emulator.state_machine_arn(name)
        definition = json.loads(sfn.describe_state_machine(stateMachineArn=arn)["definition"])
        record = decode_record({t["key"]: t["value"] for t in sfn.list_tags_for_resource(resourceArn=arn)["tags"]})
        assert record is not None
        try:
            schedule = events.describe_rule(Name=name)["ScheduleExpression"]
        except events.exceptions.ResourceNotFoundException:
            schedule = None
        found[f"{flow}/sfn"] = (definition["States"]["a"]["Result"], schedule, record.commit, record.rolled_back_to)
    for flow in ("AFlow", "CFlow"):
        name = f"myproj.{branch}.{flow.lower()}"
        template = kube.objects[("workflowtemplates", "default", name)]
        record = decode_annotations(template["metadata"]["annotations"], made_by_mfproj=True)
        cron = kube.objects.get(("cronworkflows", "default", name))
        found[f"{flow}/argo"] = (
            template["spec"]["templates"][0]["name"],
            cron["spec"]["schedule"] if cron else None,
            record.commit,
            record.rolled_back_to,
        )
    return found


def _expected(version: str, commit: str, rolled_back_to: str | None) -> dict[str, Any]:
    cron = SCHEDULES[version]
    minute, hour = cron.split()[:2]
    return {
        "AFlow/sfn": (version, None, commit, rolled_back_to),
        "BFlow/sfn": (version, f"cron({minute} {hour} * * ? *)", commit, rolled_back_to),
        "AFlow/argo": (version, None, commit, rolled_back_to),
        "CFlow/argo": (version, cron, commit, rolled_back_to),
    }


def test_rollback_puts_back_the_previous_deploy_then_an_older_one_and_can_itself_be_rolled_back(
    cli: Cli, tmp_path: Path, localstack: StepFunctionsEmulator, kube: Any
) -> None:
    env = as_user("alice", tmp_path)
    deploys = _deploy_three(cli, tmp_path, env)
    assert _state(localstack, kube) == _expected("v3", deploys["v3"][1], None)

    planned = cli("rollback", "--dry-run", "-o", "json", env=env)
    assert planned.code == 0, planned.stderr
    assert planned.json()["rolled_back_to"] == deploys["v2"][0]
    assert _state(localstack, kube) == _expected("v3", deploys["v3"][1], None)  # a dry run changes nothing

    back = cli("rollback", "-o", "json", env=env)
    assert back.code == 0, back.stderr
    assert {d["action"] for d in back.json()["deployments"]} == {"update"}
    assert _state(localstack, kube) == _expected("v2", deploys["v2"][1], deploys["v2"][0])

    older = cli("rollback", "--to", deploys["v1"][0], env=env)
    assert older.code == 0, older.stderr
    assert f"rolling user.alice back to deploy {deploys['v1'][0]}" in older.stderr
    assert _state(localstack, kube) == _expected("v1", deploys["v1"][1], deploys["v1"][0])

    history = cli("history", "-o", "json", env=env).json()["deploys"]
    assert [d["rolled_back_to"] for d in history[:2]] == [deploys["v1"][0], deploys["v2"][0]]
    assert len(history[0]["live"]) == 4

    undo = cli("rollback", "-o", "json", env=env)  # the newest deploy before the live one: the first rollback
    assert undo.code == 0, undo.stderr
    assert _state(localstack, kube) == _expected("v2", deploys["v2"][1], history[1]["deploy_id"])
    again = cli("rollback", "--to", undo.json()["rolled_back_to"], "-o", "json", env=env)
    assert [d["action"] for d in again.json()["deployments"]] == ["unchanged"] * 4


def test_a_rollback_of_production_needs_the_token(
    cli: Cli, tmp_path: Path, localstack: StepFunctionsEmulator, kube: Any
) -> None:
    ci = as_user("ci", tmp_path)
    deploys = _deploy_three(cli, tmp_path, ci, "--production")
    refused = cli("rollback", "--production", env=as_user("mallory", tmp_path))
    assert refused.code == 3, refused.stderr
    assert _state(localstack, kube, "prod") == _expected("v3", deploys["v3"][1], None)
    assert cli("rollback", "--production", env=ci).code == 0
    assert _state(localstack, kube, "prod") == _expected("v2", deploys["v2"][1], deploys["v2"][0])


def test_a_rollback_cut_off_part_way_says_exactly_what_is_not_back(
    cli: Cli, tmp_path: Path, localstack: StepFunctionsEmulator, kube: Any
) -> None:
    """BFlow's schedule cannot be put back (EventBridge refuses), and then no definition can be put back
    either: exit 8, naming each deployment not back, in the state the emulators hold it."""
    from tests.emulators import THROTTLED, FaultProxy

    env = as_user("alice", tmp_path, MFPROJ_AWS_MAX_ATTEMPTS="1", MFPROJ_THROTTLE_BUDGET="0")
    deploys = _deploy_three(cli, tmp_path, env)
    proxy = FaultProxy(localstack.url)
    try:
        proxy.fail("AWSEvents.PutRule", status=400, body=THROTTLED, times=1)
        proxy.fail("AWSStepFunctions.UpdateStateMachine", status=400, body=THROTTLED, after="AWSEvents.PutRule")
        result = cli("rollback", env={**env, "AWS_ENDPOINT_URL": proxy.url})
    finally:
        proxy.stop()
    assert result.code == 8, result.stderr
    first = result.stderr.splitlines()[0]
    assert first.startswith("error:") and "could not put everything back" in first, first
    state = _state(localstack, kube)
    v2, v3 = _expected("v2", deploys["v2"][1], deploys["v2"][0]), _expected("v3", deploys["v3"][1], None)
    for key, held in state.items():
        flow = key.split("/")[0]
        if held[0] == "v2":  # the definition is not back: said, with what the emulator holds
            assert f"{flow} on" in first and "new definition" in first, (key, first)
            assert held[1] == v2[key][1] or held[1] == v3[key][1]
        else:
            assert held == v3[key], key  # back as it was
    assert any(held[0] == "v2" for held in state.values())


def test_a_rollback_past_a_new_token_is_refused(
    cli: Cli, tmp_path: Path, localstack: StepFunctionsEmulator, kube: Any
) -> None:
    """v2 moved the branch to a fresh token: v1's definitions carry the old namespace, so a rollback to it
    would change the token. Refused (exit 3), nothing written."""
    env = as_user("alice", tmp_path)
    make_project(tmp_path, *_flows("v1"))
    git_commit(tmp_path, "v1")
    assert cli("deploy", env=env).code == 0
    make_project(tmp_path, *_flows("v2"))
    git_commit(tmp_path, "v2")
    assert cli("deploy", "--generate-new-token", env=env).code == 0
    before = _state(localstack, kube)
    refused = cli("rollback", env=env)
    assert refused.code == 3, refused.stderr
    assert "a rollback never changes the token" in refused.stderr
    assert _state(localstack, kube) == before
