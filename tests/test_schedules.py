"""`mfproj schedules pause|resume`: a branch's schedules stopped from starting runs and let again, on both
backends (EventBridge rule disabled, CronWorkflow suspended), authorized as a delete, kept paused by a
deploy, shown by `deployments`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, as_user
from tests.testing.fixtures import Flow, make_project, pass_machine, workflow_template, write_templates

RULE = "myproj.user.alice.NightlyFlow"


def _flows(version: str) -> list[Flow]:
    return [
        Flow(
            "NightlyFlow",
            step_functions=pass_machine(version),
            argo_workflows=workflow_template(),
            schedule="0 3 * * *",
        ),
        Flow("AdhocFlow", step_functions=pass_machine(version)),
    ]


@pytest.fixture
def proj(cli: Cli, tmp_path: Path, aws: Any, kube: Any) -> Path:
    root = make_project(tmp_path, *_flows("v1"))
    assert cli("deploy", env=as_user("alice", root)).code == 0
    return root


def _cron(kube: Any) -> dict[str, Any]:
    crons = [obj for key, obj in kube.objects.items() if key[0] == "cronworkflows"]
    assert len(crons) == 1
    return crons[0]


def test_schedules_pause_and_resume_on_both_backends_and_a_deploy_keeps_them_paused(
    cli: Cli, proj: Path, events: Any, kube: Any
) -> None:
    alice = as_user("alice", proj)
    paused = cli("schedules", "pause", "-o", "json", env=alice)
    assert paused.code == 0, paused.stderr
    assert {(s["backend"], s["paused"], s["changed"]) for s in paused.json()} == {
        ("step_functions", True, True),
        ("argo_workflows", True, True),
    }
    assert events.describe_rule(Name=RULE)["State"] == "DISABLED"
    assert _cron(kube)["spec"]["suspend"] is True
    listed = cli("deployments", "-o", "json", env=alice).json()
    nightly = [d for d in listed if d["flow"] == "NightlyFlow"]
    assert nightly and all(d["schedule_paused"] and d["state"] == "in-sync" for d in nightly), nightly
    planned = cli("deploy", "--dry-run", "-o", "json", env=alice).json()["deployments"]
    assert {d["action"] for d in planned} == {"unchanged"}, planned  # paused is not drift

    write_templates(proj, *_flows("v2"))  # a deploy in the incident: the schedules stay paused
    assert cli("deploy", env=alice).code == 0
    assert events.describe_rule(Name=RULE)["State"] == "DISABLED"
    assert _cron(kube)["spec"]["suspend"] is True
    again = cli("schedules", "pause", "-o", "json", env=alice).json()
    assert not any(s["changed"] for s in again)  # already paused: nothing to do, and said

    resumed = cli("schedules", "resume", env=alice)
    assert resumed.code == 0, resumed.stderr
    assert "resumed 2 schedule(s)" in resumed.stderr
    assert events.describe_rule(Name=RULE)["State"] == "ENABLED"
    assert _cron(kube)["spec"]["suspend"] is False


def test_another_users_schedules_need_the_delete_authorization(cli: Cli, proj: Path, events: Any, kube: Any) -> None:
    refused = cli("schedules", "pause", "--user", "alice", env=as_user("bob", proj))
    assert refused.code == 3, refused.stderr
    assert events.describe_rule(Name=RULE)["State"] == "ENABLED"  # nothing changed, on either backend
    assert not _cron(kube)["spec"].get("suspend")


def test_a_branch_without_schedules_says_so(cli: Cli, proj: Path) -> None:
    missing = cli("schedules", "pause", "AdhocFlow", env=as_user("alice", proj))
    assert missing.code == 4 and "has a schedule" in missing.stderr, missing.stderr
