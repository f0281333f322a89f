"""Every table command at 80 and 120 columns on a real pseudo-terminal: one line per row (nothing wraps),
no line wider than the terminal, the columns that identify a row kept, statuses and ids never cut (a run
id may show in its short form, which `runs show` takes)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, as_user
from tests.terminal import in_terminal
from tests.testing.fixtures import Flow, make_project, pass_machine, succeed_machine, workflow_template, write_templates

FLOWS = ("IngestFlow", "TrainingFlow", "EvaluateModelFlow")


@pytest.fixture
def team(cli: Cli, tmp_path: Path, aws: Any, kube: Any) -> Path:
    """A three-flow project on both backends (one scheduled), deployed by alice, bob (a test branch) and
    ci (production, where the schedule is), with a run of each of alice's flows on Step Functions."""
    root = make_project(
        tmp_path,
        *(
            Flow(
                name,
                step_functions=succeed_machine(),
                argo_workflows=workflow_template(),
                schedule="0 3 * * *" if name == "IngestFlow" else None,
            )
            for name in FLOWS
        ),
        project="recommender",
    )
    for user, branch in (("alice", ()), ("bob", ("--branch", "feature_ranking")), ("ci", ("--production",))):
        assert cli("deploy", *branch, env=as_user(user, root)).code == 0
    for name in FLOWS:
        started = cli("trigger", name, "--backend", "step-functions", env=as_user("alice", root))
        assert started.code == 0, started.stderr
    return root


def _lines(shown: str) -> list[str]:
    return [line for line in shown.splitlines() if line.strip()]


COMMANDS: list[tuple[list[str], dict[int, int]]] = [  # (arguments, rows under the header at 80 and 120 columns)
    (["runs", "-A"], {80: 3, 120: 3}),
    (["deployments"], {80: 18, 120: 18}),  # 3 flows x 2 backends x 3 branches
    (["deploy", "--dry-run"], {80: 6, 120: 6}),
    (["teardown", "--user", "alice", "--dry-run"], {80: 6, 120: 6}),
    (["namespaces"], {80: 3, 120: 3}),
    (["history"], {80: 1, 120: 1}),
    (["token", "list"], {80: 1, 120: 1}),
    (["names"], {80: 7, 120: 7}),  # one name per line: a flow's 3 whole names do not fit side by side
    (["gc", "--older-than", "0s"], {80: 2, 120: 2}),  # test.feature_ranking and user.alice (never prod)
    (["schedules", "pause"], {80: 2, 120: 2}),  # IngestFlow's, on both backends
]


@pytest.mark.parametrize("columns", [80, 120])
@pytest.mark.parametrize(("args", "rows"), COMMANDS, ids=[" ".join(a) for a, _ in COMMANDS])
def test_a_table_fits_the_terminal_one_line_per_row(
    team: Path, columns: int, args: list[str], rows: dict[int, int]
) -> None:
    shown = in_terminal(args, team, as_user("alice", team), columns)
    lines = _lines(shown)
    assert len(lines) == rows[columns] + 1, shown  # the header and one line per row
    assert max(len(line.rstrip()) for line in lines) <= columns, shown
    assert "…" not in shown.split("\n", 1)[0], shown  # headers whole


@pytest.mark.parametrize("columns", [80, 120])
def test_runs_of_every_branch_say_whose_they_are_with_whole_statuses_and_ids_runs_show_takes(
    cli: Cli, team: Path, columns: int
) -> None:
    shown = in_terminal(["runs", "-A"], team, as_user("alice", team), columns)
    header, *rows = _lines(shown)
    assert "branch" in header.split() and "status" in header.split(), shown
    for row in rows:
        assert "user.alice" in row, row
        assert re.search(r"\b(RUNNING|SUCCEEDED)\b", row), row  # never SUCCE…
        run_id = row.split()[0]
        assert "…" not in run_id
        show = cli("runs", "show", run_id, "-o", "json", env=as_user("alice", team))
        assert show.code == 0, show.stderr
        assert show.json()["run_id"].startswith(run_id)


@pytest.mark.parametrize("columns", [80, 120])
def test_a_deploy_that_changes_every_flow_fits_with_its_actions_whole(team: Path, columns: int) -> None:
    """`update (definition, record)` is the longest action: it stays whole, and the row stays one line."""
    write_templates(
        team,
        *(Flow(name, step_functions=pass_machine("v2"), argo_workflows=workflow_template()) for name in FLOWS),
    )
    shown = in_terminal(["deploy", "--dry-run"], team, as_user("alice", team), columns)
    header, *rows = _lines(shown)
    assert len(rows) == 6, shown
    assert max(len(line.rstrip()) for line in [header, *rows]) <= columns, shown
    assert sum("update (definition" in row for row in rows) == 3, shown  # never `update (defi…`
