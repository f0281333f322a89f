"""naming.py against the reference's worked cases, its unit tests, and the backends' own rules."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from mfproj import naming, tokens
from mfproj.errors import NameCollisionError, ValidationError
from tests import names as names_for_tests

GOLDEN = json.loads((Path(__file__).parent / "golden_names.json").read_text())


def _names_for(case: dict) -> dict[str, str]:
    given_ = case["input"]
    branch = naming.branch_name(user=given_["user"], branch=given_["branch"], production=given_["production"])
    names = names_for_tests.flow_names(
        given_["project"], branch, given_["flow"], state_machine_prefix=given_["state_machine_prefix"]
    )
    prefix = naming.token_prefix(given_["project"], branch)
    return {
        "token_prefix": prefix,
        "state_machine": names.state_machine,
        "eventbridge_rule": names.eventbridge_rule,
        "argo_workflow_template": names.workflow_template,
        "first_token_metaflow_scheme": tokens.metaflow_successor(prefix, None),
        "second_token_metaflow_scheme": tokens.metaflow_successor(prefix, tokens.metaflow_successor(prefix, None)),
    }


@pytest.mark.parametrize("case", GOLDEN, ids=lambda c: "-".join(str(v) for v in c["input"].values()))
def test_golden_cases_through_the_library(case: dict) -> None:
    assert _names_for(case) == case["expected"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a-valid-name", "a-valid-name"),
        ("removing---@+_characters@_+", "removing---characters"),
        ("numb3rs-4r3-0k-123", "numb3rs-4r3-0k-123"),
        ("proj3ct.br4nch.flow_name", "proj3ct.br4nch.flowname"),
        ("---1breaking1---.--2subdomain2--.-3rules3----", "1breaking1.2subdomain2.3rules3----"),
        ("1brea---king1.2sub---domain2.-3ru-les3--", "1brea---king1.2sub---domain2.3ru-les3--"),
        ("project.branch-cut-short-.flowname", "project.branch-cut-short.flowname"),
        ("test...name", "test.name"),
    ],
)
def test_sanitize_for_argo_matches_the_reference_unit_tests(text: str, expected: str) -> None:
    assert naming.sanitize_for_argo(text) == expected


def test_branches_follow_the_reference() -> None:
    assert naming.branch_name(user="alice", branch=None, production=False) == "user.alice"
    assert naming.branch_name(user="alice", branch="x", production=False) == "test.x"
    assert naming.branch_name(user="alice", branch=None, production=True) == "prod"
    assert naming.branch_name(user="alice", branch="x", production=True) == "prod.x"
    assert naming.branch_name(user="alice", branch=None, production=False, owner="bob") == "user.bob"
    # The owner replaces only the user part of the user branch.
    assert naming.branch_name(user="alice", branch="x", production=False, owner="bob") == "test.x"
    assert naming.is_user_branch(branch=None, production=False)
    assert not naming.is_user_branch(branch="x", production=False)
    assert not naming.is_user_branch(branch=None, production=True)


def test_reference_conformance_cases() -> None:
    # Metaflow's own tests (project_branch.py, project_production.py, current_singleton.py).
    branch = naming.branch_name(user="tester", branch="this_is_a_test_branch", production=False)
    assert naming.project_flow_name("project_branch", branch, "ProjectBranchTestFlow") == (
        "project_branch.test.this_is_a_test_branch.ProjectBranchTestFlow"
    )
    prod = naming.branch_name(user="tester", branch=None, production=True)
    assert naming.project_flow_name("project_prod", prod, "ProjectProductionTestFlow") == (
        "project_prod.prod.ProjectProductionTestFlow"
    )


@pytest.mark.parametrize("bad", ["My_proj", "my-proj", "my.proj", "", "a" * 129, "é"])
def test_invalid_project_names_are_refused(bad: str) -> None:
    with pytest.raises(ValidationError):
        naming.validate_project_name(bad)


def test_project_name_of_128_characters_is_allowed() -> None:
    naming.validate_project_name("a" * 128)


def test_prefix_rule_keeps_the_reference_startswith_quirk() -> None:
    assert naming.attach_state_machine_prefix("HelloFlow", "acme") == "acme_HelloFlow"
    assert naming.attach_state_machine_prefix("acmeflow", "acme") == "acmeflow"
    assert naming.attach_state_machine_prefix("HelloFlow", None) == "HelloFlow"


def test_long_state_machine_names_are_truncated_with_a_hash() -> None:
    name = naming.state_machine_name("p." + "x" * 80)
    assert len(name) == 77
    assert name[60] == "-"
    assert re.fullmatch(r"[a-z2-7]{16}", name[61:])


def test_metaflow_tokens_match_the_reference_examples() -> None:
    assert tokens.metaflow_token("helloflow", 0) == "helloflow-0-apnt"
    assert tokens.metaflow_token("helloflow", 1) == "helloflow-1-ngpj"
    assert tokens.metaflow_token("mfprj-wirqh2gc3chugnvb", 0) == "mfprj-wirqh2gc3chugnvb-0-olpw"


def test_metaflow_successor_errors_are_clear() -> None:
    with pytest.raises(ValidationError, match="not part of the metaflow token sequence"):
        tokens.metaflow_successor("helloflow", "my-custom-token")
    last = tokens.metaflow_token("helloflow", 9999)
    with pytest.raises(ValidationError, match="ends at index 9999"):
        tokens.metaflow_successor("helloflow", last)


def test_user_names_with_at_sign_break_eventbridge_and_say_how_to_fix() -> None:
    branch = naming.branch_name(user="john.doe+ci@example.com", branch=None, production=False)
    names = names_for_tests.flow_names("myproj", branch, "HelloFlow")
    problems = names_for_tests.name_problems(names, branch=branch, backends=["step_functions"], scheduled=True)
    assert [p.kind for p in problems] == ["eventbridge_rule"]
    assert "METAFLOW_USER" in (problems[0].hint or "")
    # Unscheduled flows need no rule, so nothing is wrong with them.
    assert not names_for_tests.name_problems(names, branch=branch, backends=["step_functions"], scheduled=False)


def test_user_name_with_a_space_is_invalid_everywhere() -> None:
    branch = naming.branch_name(user="John Doe", branch=None, production=False)
    names = names_for_tests.flow_names("myproj", branch, "HelloFlow")
    assert names.workflow_template == "myproj.user.john doe.helloflow"  # the reference's name
    kinds = {
        p.kind
        for p in names_for_tests.name_problems(
            names, branch=branch, backends=["step_functions", "argo_workflows"], scheduled=True
        )
    }
    assert kinds == {"state_machine", "eventbridge_rule", "workflow_template"}


def test_collisions_name_both_sides() -> None:
    finder = naming.CollisionFinder()
    finder.add("workflow_template", naming.argo_workflow_template_name("p", "prod", "My_Flow"), "flow 'My_Flow'")
    finder.add("workflow_template", naming.argo_workflow_template_name("p", "prod", "MyFlow"), "flow 'MyFlow'")
    with pytest.raises(NameCollisionError, match="'My_Flow' and flow 'MyFlow'"):
        finder.raise_if_any()


def test_deployment_of_another_branch_under_our_name_is_a_collision() -> None:
    a = naming.argo_workflow_template_name("myproj", "test.feature_x", "HelloFlow")
    b = naming.argo_workflow_template_name("myproj", "test.featurex", "HelloFlow")
    assert a == b
    with pytest.raises(NameCollisionError, match=r"myproj\.test\.feature_x\.HelloFlow"):
        naming.check_same_deployment(
            "workflow_template",
            a,
            existing=("myproj", "test.feature_x", "HelloFlow"),
            wanted=("myproj", "test.featurex", "HelloFlow"),
        )


# --- properties ---------------------------------------------------------------------------------

identifiers = st.from_regex(r"[a-z0-9_]{1,40}", fullmatch=True)
flow_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,60}", fullmatch=True)
users = st.text(min_size=1, max_size=40)
prefixes = st.one_of(st.none(), st.from_regex(r"[a-z][a-z0-9_-]{0,20}", fullmatch=True))


@st.composite
def branches(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["user", "test", "prod", "prod_branch"]))
    if kind == "user":
        return naming.branch_name(user=draw(users), branch=None, production=False)
    if kind == "prod":
        return "prod"
    return naming.branch_name(user="x", branch=draw(identifiers), production=kind == "prod_branch")


@settings(max_examples=400, deadline=None)
@given(project=identifiers, branch=branches(), flow=flow_names, prefix=prefixes)
def test_every_name_is_valid_for_its_backend_or_a_problem_is_reported(
    project: str, branch: str, flow: str, prefix: str | None
) -> None:
    names = names_for_tests.flow_names(project, branch, flow, state_machine_prefix=prefix)
    problems = names_for_tests.name_problems(
        names, branch=branch, backends=["step_functions", "argo_workflows"], scheduled=True
    )
    reported = {p.kind for p in problems}
    sfn_valid = 1 <= len(names.state_machine) <= 80 and not re.search(
        r"[\s<>{}\[\]?*\"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f]", names.state_machine
    )
    rule_valid = re.fullmatch(r"[.\-_A-Za-z0-9]{1,64}", names.eventbridge_rule) is not None
    k8s_valid = (
        len(names.workflow_template) <= 52
        and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*", names.workflow_template)
        is not None
    )
    assert sfn_valid == ("state_machine" not in reported)
    assert rule_valid == ("eventbridge_rule" not in reported)
    assert k8s_valid == ("workflow_template" not in reported and "cron_workflow" not in reported)
    for problem in problems:
        assert problem.rule and problem.name and problem.hint


@settings(max_examples=500, deadline=None)
@given(
    project=st.from_regex(r"[a-z]([a-z0-9_]{0,60}[a-z0-9])?", fullmatch=True),
    flow=st.from_regex(r"[A-Za-z]([A-Za-z0-9_]{0,60}[A-Za-z0-9])?", fullmatch=True),
    prefix=prefixes,
)
def test_letter_led_names_are_always_valid_on_argo(project: str, flow: str, prefix: str | None) -> None:
    # Names that start with a letter and end with a letter or digit survive Argo's shortening intact.
    # (Others may not: a flow named `_` gives `p.prod.`, which the check reports.)
    for branch in ("prod", "test.feature_x", "user.alice"):
        names = names_for_tests.flow_names(project, branch, flow, state_machine_prefix=prefix)
        assert not names_for_tests.name_problems(names, branch=branch, backends=["argo_workflows"], scheduled=True)
        assert len(names.workflow_template) <= 47


@settings(max_examples=300, deadline=None)
@given(
    first=st.tuples(identifiers, branches(), flow_names),
    second=st.tuples(identifiers, branches(), flow_names),
)
def test_distinct_inputs_that_collide_are_reported(first: tuple, second: tuple) -> None:
    assume(first != second)
    for kind, compute in (
        ("workflow_template", lambda p, b, f: naming.argo_workflow_template_name(p, b, f)),
        ("state_machine", lambda p, b, f: names_for_tests.flow_names(p, b, f).state_machine),
    ):
        finder = naming.CollisionFinder()
        finder.add(kind, compute(*first), ".".join(first))
        finder.add(kind, compute(*second), ".".join(second))
        if compute(*first) == compute(*second):
            with pytest.raises(NameCollisionError):
                finder.raise_if_any()
            with pytest.raises(NameCollisionError):
                naming.check_same_deployment(kind, compute(*first), existing=first, wanted=second)
        else:
            finder.raise_if_any()


@given(
    project=st.from_regex(r"[a-z]{1,10}", fullmatch=True),
    flow=st.from_regex(r"[A-Z][a-z]{1,10}", fullmatch=True),
)
def test_underscores_make_argo_collisions_that_are_caught(project: str, flow: str) -> None:
    # The reference's sanitizing drops '_': `my_proj` and `myproj` share every Argo name.
    split = project[:1] + "_" + project[1:]
    a = naming.argo_workflow_template_name(split, "prod", flow)
    b = naming.argo_workflow_template_name(project, "prod", flow)
    assert a == b
    with pytest.raises(NameCollisionError):
        naming.check_same_deployment(
            "workflow_template", a, existing=(split, "prod", flow), wanted=(project, "prod", flow)
        )
