"""Manifest discovery and validation: every error names the file, the key and the rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from mfproj import manifest
from mfproj.errors import ManifestError, ValidationError
from tests.conftest import write_manifest

MINIMAL = """
[project]
name = "myproj"

[[flows]]
name = "HelloFlow"
"""


def _error(tmp_path: Path, body: str) -> str:
    path = write_manifest(tmp_path, body, templates=False)
    with pytest.raises(ManifestError) as caught:
        manifest.load_manifest(path)
    text = str(caught.value)
    assert text.startswith(str(path)), text
    return text + " | hint: " + str(caught.value.hint)


def test_minimal_manifest_loads(tmp_path: Path) -> None:
    loaded = manifest.load_manifest(write_manifest(tmp_path, MINIMAL))
    assert loaded.project == "myproj"
    assert [f.name for f in loaded.flows] == ["HelloFlow"]
    assert loaded.token_scheme == "random"
    assert loaded.settings_for("argo_workflows").namespace == "default"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("[project]\nname = 'My-Proj'\n", "project.name: project name 'My-Proj' has the character 'M'"),
        ("[project]\n", "project.name: is required"),
        ("[[flows]]\nname = 'A'\n", "project: is required"),
        ("[project]\nname = 'p'\nnmae = 'x'\n", "project.nmae: unknown key | hint: did you mean 'name'?"),
        (
            "[project]\nname = 'p'\n[step_function]\nregion = 'us-east-1'\n",
            "step_function: unknown key | hint: did you mean 'step_functions'?",
        ),
        (
            "[project]\nname = 'p'\n[[flows]]\nname = 'A'\n[[flows]]\nname = 'B'\nshedule = '* * * * *'\n",
            "flows[1].shedule: unknown key | hint: did you mean 'schedule'?",
        ),
        (
            "[project]\nname = 'p'\n[[flows]]\nname = 'A'\n[[flows]]\nname = 'my-flow'\n",
            "flows[1].name: flow name 'my-flow' is not a Python class name",
        ),
        (
            "[project]\nname = 'p'\n[[flows]]\nname = 'A'\n[[flows]]\nname = 'A'\n",
            "flows[1].name: duplicate flow name 'A' (also flows[0].name)",
        ),
        (
            "[project]\nname = 'p'\n[[flows]]\nname = 'A'\nschedule = '* * *'\n",
            "flows[0].schedule: cron '* * *' has 3 fields",
        ),
        (
            "[project]\nname = 'p'\n[[flows]]\nname = 'A'\nschedule = '61 * * * *'\n",
            "flows[0].schedule: cron minute: 61 is outside 0-59",
        ),
        (
            "[project]\nname = 'p'\n[[flows]]\nname = 'A'\ntags = ['ok', '']\n",
            "flows[0].tags[1]: must not be empty",
        ),
        (
            "[project]\nname = 'p'\n[[flows]]\nname = 'A'\ntags = 'x'\n",
            "flows[0].tags: must be an array of strings, not str",
        ),
        (
            "[project]\nname = 'p'\n[[flows]]\nname = 'A'\nstep_functions = 'missing.json'\n",
            "flows[0].step_functions: template 'missing.json' does not exist",
        ),
        (
            "[project]\nname = 'p'\ntoken_scheme = 'weak'\n",
            "project.token_scheme: must be one of random, metaflow, not 'weak'",
        ),
        (
            "[project]\nname = 'p'\n[step_functions]\nrole_arn = 'sfn-role'\n",
            "step_functions.role_arn: 'sfn-role' is not an IAM role ARN",
        ),
        (
            "[project]\nname = 'p'\n[step_functions]\nregion = 'Virginia'\n",
            "step_functions.region: 'Virginia' is not an AWS region",
        ),
        (
            "[project]\nname = 'p'\n[argo_workflows]\nnamespace = 'My_NS'\n",
            "argo_workflows.namespace: 'My_NS' is not a Kubernetes namespace",
        ),
        ("[project]\nname = 1\n", "project.name: must be a string, not an integer"),
        ("project = 'p'\n", "project: must be a table, not str"),
        ("[project\nname = 'p'\n", "invalid TOML: "),
    ],
)
def test_errors_name_file_key_and_rule(tmp_path: Path, body: str, expected: str) -> None:
    assert expected in _error(tmp_path, body)


def test_tags_over_the_limit(tmp_path: Path) -> None:
    tags = ", ".join(f"'t{i}'" for i in range(51))
    assert "flows[0].tags: 51 distinct tags; at most 50" in _error(
        tmp_path, f"[project]\nname = 'p'\n[[flows]]\nname = 'A'\ntags = [{tags}]\n"
    )
    assert "flows[0].tags[0]: is 501 characters long" in _error(
        tmp_path, f"[project]\nname = 'p'\n[[flows]]\nname = 'A'\ntags = ['{'x' * 501}']\n"
    )


def test_found_by_walking_up(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, MINIMAL)
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert manifest.find_manifest(start=deep, env={}) == path.resolve()


def test_pyproject_tool_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[project]\nname = 'pkg'\n\n[tool.mfproj.project]\nname = 'from_pyproject'\n\n"
        "[[tool.mfproj.flows]]\nname = 'HelloFlow'\nbogus = 1\n"
    )
    found = manifest.find_manifest(start=tmp_path, env={})
    assert found.name == "pyproject.toml"
    with pytest.raises(ManifestError, match=r"tool\.mfproj\.flows\[0\]\.bogus: unknown key"):
        manifest.load_manifest(found)


def test_pyproject_without_tool_table_is_skipped(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, MINIMAL)
    inner = tmp_path / "pkg"
    inner.mkdir()
    (inner / "pyproject.toml").write_text("[project]\nname = 'pkg'\n")
    assert manifest.find_manifest(start=inner, env={}) == path.resolve()


def test_explicit_path_and_environment(tmp_path: Path) -> None:
    other = write_manifest(tmp_path / "elsewhere", MINIMAL)
    assert manifest.find_manifest(str(other), env={}) == other
    assert manifest.find_manifest(None, env={"MFPROJ_MANIFEST": str(other)}) == other
    with pytest.raises(ManifestError, match="no such file") as caught:
        manifest.find_manifest(None, env={"MFPROJ_MANIFEST": str(tmp_path / "nope.toml")})
    assert "MFPROJ_MANIFEST" in str(caught.value.hint)


def test_missing_manifest_says_how_to_start(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as caught:
        manifest.find_manifest(start=tmp_path, env={})
    assert "mfproj init" in str(caught.value.hint)


def test_unknown_flow_suggests_the_closest(tmp_path: Path) -> None:
    loaded = manifest.load_manifest(write_manifest(tmp_path, MINIMAL))
    with pytest.raises(Exception, match="no flow named 'HeloFlow'") as caught:
        loaded.flows_named(["HeloFlow"])
    assert "HelloFlow" in str(caught.value.hint)  # type: ignore[attr-defined]


def test_an_unknown_flow_suggests_only_a_flow_alike_beyond_the_flow_suffix(tmp_path: Path) -> None:
    """`Flow` ends every name: NoSuchFlow is not LunchFlow (0.74 alike with it), TrainFlw is TrainFlow."""
    body = MINIMAL + '\n[[flows]]\nname = "LunchFlow"\nstep_functions = "l.asl.json"\n'
    loaded = manifest.load_manifest(write_manifest(tmp_path, body))
    with pytest.raises(ValidationError) as unknown:
        loaded.flow("NoSuchFlow")
    assert "did you mean" not in str(getattr(unknown.value, "hint", "")), unknown.value
    with pytest.raises(ValidationError) as typo:
        loaded.flow("LunchFlw")
    assert "did you mean 'LunchFlow'?" in str(getattr(typo.value, "hint", ""))
