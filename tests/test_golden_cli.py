"""The worked cases of golden_names.json, through `mfproj names -o json`, in every field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Cli, write_manifest

GOLDEN = json.loads((Path(__file__).parent / "golden_names.json").read_text())


@pytest.mark.parametrize("case", GOLDEN, ids=lambda c: "-".join(str(v) for v in c["input"].values()))
def test_golden_case_through_the_cli(case: dict, cli: Cli, tmp_path: Path) -> None:
    given = case["input"]
    expected = case["expected"]
    prefix = given["state_machine_prefix"]
    write_manifest(
        tmp_path,
        f"""
        [project]
        name = "{given["project"]}"
        token_scheme = "metaflow"

        [[flows]]
        name = "{given["flow"]}"
        step_functions = "flow.asl.json"
        argo_workflows = "flow.yaml"
        schedule = "0 * * * *"

        [step_functions]
        state_machine_prefix = "{prefix or ""}"
        """,
    )
    args = ["names", "-o", "json"]
    if given["branch"]:
        args += ["--branch", given["branch"]]
    if given["production"]:
        args.append("--production")
    result = cli(*args, env={"METAFLOW_USER": given["user"]})
    assert result.code == 0, result.stderr
    document = result.json()
    flow = document["flows"][0]
    got = {
        "token_prefix": document["token_prefix"],
        "state_machine": flow["step_functions"]["state_machine"],
        "eventbridge_rule": flow["step_functions"]["eventbridge_rule"],
        "argo_workflow_template": flow["argo_workflows"]["workflow_template"],
        "first_token_metaflow_scheme": document["metaflow_scheme_tokens"][0],
        "second_token_metaflow_scheme": document["metaflow_scheme_tokens"][1],
    }
    assert got == expected
    assert document["user"] == given["user"]
    assert document["is_production"] is given["production"]
    assert document["is_user_branch"] is (given["branch"] is None and not given["production"])


def test_prefix_from_the_environment_overrides_the_manifest(cli: Cli, tmp_path: Path) -> None:
    case = next(c for c in GOLDEN if c["input"]["state_machine_prefix"] == "acme")
    write_manifest(
        tmp_path,
        f"""
        [project]
        name = "{case["input"]["project"]}"
        [[flows]]
        name = "{case["input"]["flow"]}"
        [step_functions]
        state_machine_prefix = "other"
        """,
    )
    args = ["names", "-o", "json"] + (["--branch", case["input"]["branch"]] if case["input"]["branch"] else [])
    result = cli(*args, env={"METAFLOW_USER": "alice", "METAFLOW_SFN_STATE_MACHINE_PREFIX": "acme"})
    assert result.json()["flows"][0]["step_functions"]["state_machine"] == case["expected"]["state_machine"]
