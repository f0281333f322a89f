"""Golden names computed from the pinned reference (metaflow 2.19) in the test, not written down as literals:
its own `format_name`, `resolve_state_machine_name`, `resolve_workflow_name_v2` and `new_token`, for the
worked cases of golden_names.json and for generated projects, branches, users and flows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mfproj import naming, tokens
from tests import names as names_for_tests

metaflow = pytest.importorskip("metaflow")

GOLDEN = json.loads((Path(__file__).parent / "golden_names.json").read_text())


def reference(project: str, flow: str, branch: str | None, production: bool, user: str, prefix: str | None) -> Any:
    """What the reference computes: (project flow name, state machine, token prefix, Argo name, tokens 0 and 1)."""
    from metaflow import current
    from metaflow.plugins import project_decorator
    from metaflow.plugins.argo import argo_workflows_cli
    from metaflow.plugins.aws.step_functions import production_token, step_functions_cli

    project_flow_name, branch_name = project_decorator.format_name(flow, project, production, branch, user)
    current._update_env(
        {
            "project_name": project,
            "branch_name": branch_name,
            "project_flow_name": project_flow_name,
            "flow_name": flow,
        }
    )

    class Obj:
        pass

    saved = step_functions_cli.SFN_STATE_MACHINE_PREFIX
    step_functions_cli.SFN_STATE_MACHINE_PREFIX = prefix
    try:
        state_machine, token_prefix, _ = step_functions_cli.resolve_state_machine_name(Obj(), None)
    finally:
        step_functions_cli.SFN_STATE_MACHINE_PREFIX = saved
    workflow, argo_prefix, *_ = argo_workflows_cli.resolve_workflow_name_v2(Obj(), None)
    assert argo_prefix == token_prefix  # one token per branch, whatever the backend
    first = production_token.new_token(token_prefix)
    return (
        project_flow_name,
        branch_name,
        state_machine,
        token_prefix,
        workflow,
        first,
        production_token.new_token(token_prefix, first),
    )


def mine(project: str, flow: str, branch: str | None, production: bool, user: str, prefix: str | None) -> Any:
    branch_name = naming.branch_name(branch=branch, production=production, user=user)
    names = names_for_tests.flow_names(project, branch_name, flow, state_machine_prefix=prefix)
    token_prefix = naming.token_prefix(project, branch_name)
    first = tokens.metaflow_successor(token_prefix, None)
    return (
        names.project_flow_name,
        branch_name,
        names.state_machine,
        token_prefix,
        names.workflow_template,
        first,
        tokens.metaflow_successor(token_prefix, first),
    )


@pytest.mark.parametrize("case", GOLDEN, ids=lambda c: "-".join(str(v) for v in c["input"].values()))
def test_worked_cases_match_the_reference(case: dict[str, Any]) -> None:
    given_input = case["input"]
    arguments = (
        given_input["project"],
        given_input["flow"],
        given_input["branch"],
        given_input["production"],
        given_input["user"],
        given_input["state_machine_prefix"],
    )
    expected = reference(*arguments)
    assert mine(*arguments) == expected
    # The stored worked case agrees with the reference too (it documents, it does not decide).
    assert case["expected"]["state_machine"] == expected[2]
    assert case["expected"]["argo_workflow_template"] == expected[4]


@settings(max_examples=150, deadline=None)
@given(
    project=st.from_regex(r"[a-z0-9_]{1,40}", fullmatch=True),
    flow=st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,40}", fullmatch=True),
    branch=st.none() | st.from_regex(r"[a-z0-9_]{1,40}", fullmatch=True),
    production=st.booleans(),
    user=st.from_regex(r"[a-z][a-z0-9._-]{0,20}", fullmatch=True),
    prefix=st.none() | st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True),
)
def test_generated_names_match_the_reference(
    project: str, flow: str, branch: str | None, production: bool, user: str, prefix: str | None
) -> None:
    assert mine(project, flow, branch, production, user, prefix) == reference(
        project, flow, branch, production, user, prefix
    )
