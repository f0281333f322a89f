"""`mfproj history`: every deploy that writes keeps what it wrote (a published Step Functions version on
LocalStack, an Argo history ConfigMap on the Kubernetes emulator) with its lineage, under one deploy id per
`mfproj deploy`; the branch's history lists the deploys, newest first, and which is live; the oldest past
the manifest's `history` are pruned."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import Cli, StepFunctionsEmulator, as_user
from tests.testing.fixtures import Flow, git_commit, make_project, pass_machine, workflow_template, write_templates

STATE_MACHINE = "myproj.user.alice.{}"


def _flows(version: str) -> list[Flow]:
    return [
        Flow("AFlow", step_functions=pass_machine(version), argo_workflows=workflow_template([{"name": version}])),
        Flow("BFlow", step_functions=pass_machine(version), schedule="0 3 * * *"),
        Flow("CFlow", argo_workflows=workflow_template([{"name": version}]), schedule="0 4 * * *"),
    ]


def _three_deploys(cli: Cli, root: Path, env: dict[str, str]) -> list[tuple[str, str]]:
    """v1, v2, v3 deployed from three commits; returns (deploy id, commit) of each, oldest first."""
    done = []
    for version in ("v1", "v2", "v3"):
        write_templates(root, *_flows(version))
        commit = git_commit(root, version)
        result = cli("deploy", "-o", "json", env=env)
        assert result.code == 0, result.stderr
        listed = cli("history", "-o", "json", env=env).json()["deploys"]
        done.append((listed[0]["deploy_id"], commit))
    return done


def test_three_deploys_are_three_entries_with_their_lineage_on_both_backends(
    cli: Cli, tmp_path: Path, localstack: StepFunctionsEmulator, kube: Any
) -> None:
    make_project(tmp_path, *_flows("v1"))
    env = as_user("alice", tmp_path)
    deploys = _three_deploys(cli, tmp_path, env)
    assert len({d for d, _ in deploys}) == 3
    listed = cli("history", "-o", "json", env=env).json()["deploys"]
    assert [d["deploy_id"] for d in listed] == [d for d, _ in reversed(deploys)]
    for document, (_, commit) in zip(listed, reversed(deploys), strict=True):
        assert document["commit"] == commit and document["owner"] == "alice"
        assert document["principal"] and document["deployed_at"]
        wrote = {(d["flow"], d["backend"]) for d in document["deployments"]}
        assert wrote == {
            ("AFlow", "step_functions"),
            ("AFlow", "argo_workflows"),
            ("BFlow", "step_functions"),
            ("CFlow", "argo_workflows"),
        }
    assert len(listed[0]["live"]) == 4 and listed[1]["live"] == [] and listed[2]["live"] == []
    # What is kept is what was deployed: the Step Functions version and the Argo entry of v2.
    sfn = localstack.client("stepfunctions")
    arn = localstack.state_machine_arn(STATE_MACHINE.format("AFlow"))
    versions = sfn.list_state_machine_versions(stateMachineArn=arn)["stateMachineVersions"]
    assert len(versions) == 3
    described = sfn.describe_state_machine(stateMachineArn=sorted(v["stateMachineVersionArn"] for v in versions)[1])
    assert json.loads(described["definition"])["States"]["a"]["Result"] == "v2"
    assert deploys[1][0] in described["description"]
    kept = kube.objects[("configmaps", "default", "myproj.user.alice.cflow.history")]["data"]
    assert json.loads(kept[deploys[1][0]])["definition"]["spec"]["templates"] == [{"name": "v2"}]
    table = cli("history", env=env)
    assert table.code == 0 and deploys[2][0] in table.stdout, table.stdout


def test_an_unchanged_redeploy_keeps_nothing_and_pruning_keeps_n(
    cli: Cli, tmp_path: Path, localstack: StepFunctionsEmulator, kube: Any
) -> None:
    make_project(tmp_path, *_flows("v1"), project_lines="history = 2")
    env = as_user("alice", tmp_path)
    _three_deploys(cli, tmp_path, env)
    assert cli("deploy", env=env).code == 0  # unchanged: writes nothing, keeps nothing
    listed = cli("history", "-o", "json", env=env).json()["deploys"]
    assert len(listed) == 2
    sfn = localstack.client("stepfunctions")
    arn = localstack.state_machine_arn(STATE_MACHINE.format("BFlow"))
    assert len(sfn.list_state_machine_versions(stateMachineArn=arn)["stateMachineVersions"]) == 2
    assert len(kube.objects[("configmaps", "default", "myproj.user.alice.cflow.history")]["data"]) == 2


def test_deployments_show_says_which_deploy_is_live_and_how_many_are_kept(cli: Cli, tmp_path: Path, kube: Any) -> None:
    """On Argo (the Kubernetes emulator; `deployments` reads the project through labels)."""
    flow = Flow("CFlow", argo_workflows=workflow_template([{"name": "v1"}]))
    make_project(tmp_path, flow)
    env = as_user("alice", tmp_path)
    for version in ("v1", "v2"):
        write_templates(tmp_path, Flow("CFlow", argo_workflows=workflow_template([{"name": version}])))
        assert cli("deploy", env=env).code == 0
    live = cli("history", "-o", "json", env=env).json()["deploys"][0]["deploy_id"]
    shown = cli("deployments", "show", "CFlow", "-o", "json", env=env)
    assert shown.code == 0, shown.stderr
    assert [(d["deploy_id"], d["deploys_kept"]) for d in shown.json()] == [(live, 2)]
    listed = cli("deployments", "-o", "json", env=env).json()
    assert [d["deploy_id"] for d in listed] == [live]


def test_a_lineage_fits_a_version_description_and_reads_back() -> None:
    from mfproj.history import DESCRIPTION_LIMIT, DeployLineage

    full = DeployLineage(
        deploy_id="20261201T220600.417203Z-3fa9c2",
        deployed_at="2026-12-01T22:06:00+00:00",
        owner="a" * 64,
        principal="arn:aws:sts::123456789012:assumed-role/" + "r" * 60 + "/session-name",
        commit="0" * 40,
        schedule="0 3 * * MON-FRI",
        rolled_back_to="20261130T100000.000001Z-aaaaaa",
        token_fingerprint="#1a2b3c",
    )
    text = full.compact()
    assert len(text) <= DESCRIPTION_LIMIT
    back = DeployLineage.parse_compact(text)
    assert back is not None and back.deploy_id == full.deploy_id and back.commit == full.commit
    assert back.schedule == full.schedule and back.rolled_back_to == full.rolled_back_to
    short = DeployLineage("20261201T220600Z-3fa9c2", principal="arn:aws:iam::123456789012:user/bob")
    assert DeployLineage.parse_compact(short.compact()) == short


def test_a_description_someone_else_wrote_is_not_a_lineage() -> None:
    from mfproj.history import DeployLineage

    for text in (None, "", "a release", "mfproj1 not json", "mfproj1 " + "[" * 5000, 'mfproj1 {"u":"x"}'):
        assert DeployLineage.parse_compact(text) is None
    shown = DeployLineage.parse_compact('mfproj1 {"d":"x","u":"eve\\u001b[2J' + "e" * 500 + '"}')
    assert shown is not None and shown.owner is not None
    assert "\x1b" not in shown.owner and len(shown.owner) < 80  # cut at 64 characters, then escaped
