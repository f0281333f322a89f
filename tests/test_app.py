"""CLI conventions: help, version, exit codes, output streams, identity, and the fast path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mfproj.cli import app as typer_app
from mfproj.cli import fastpath
from tests.conftest import Cli, write_manifest


def test_help_lists_every_command(cli: Cli) -> None:
    result = cli("--help")
    assert result.code == 0
    for command in ("names", "init", "completion"):
        assert command in result.stdout


def test_version(cli: Cli) -> None:
    from mfproj import __version__

    assert cli("--version").stdout.strip() == f"mfproj {__version__}"


def test_names_json_shape(cli: Cli, project: Path) -> None:
    result = cli("names", "-o", "json", "--branch", "foo", env={"METAFLOW_USER": "alice"})
    assert result.code == 0, result.stderr
    document = result.json()
    assert document["project"] == "myproj"
    assert document["branch"] == "test.foo"
    assert document["user"] == "alice"
    assert document["is_user_branch"] is False
    assert document["token_prefix"].startswith("mfprj-")
    assert [f["flow"] for f in document["flows"]] == ["HelloFlow", "NightlyFlow"]
    hello = document["flows"][0]
    assert hello["project_flow_name"] == "myproj.test.foo.HelloFlow"
    assert hello["step_functions"] == {
        "state_machine": "myproj.test.foo.HelloFlow",
        "eventbridge_rule": None,  # not scheduled: no rule (the table shows '-')
    }
    assert hello["argo_workflows"] == {"workflow_template": "myproj.test.foo.helloflow"}
    assert "metaflow_scheme_tokens" not in document  # only for token_scheme = "metaflow"
    assert result.stderr == ""


def test_names_selects_flows_and_rejects_unknown_ones(cli: Cli, project: Path) -> None:
    env = {"METAFLOW_USER": "alice"}
    assert [f["flow"] for f in cli("names", "NightlyFlow", "-o", "json", env=env).json()["flows"]] == ["NightlyFlow"]
    result = cli("names", "HeloFlow", env=env)
    assert result.code == 2
    assert "no flow named 'HeloFlow'" in result.stderr
    assert "did you mean 'HelloFlow'?" in result.stderr
    assert "Traceback" not in result.stderr


def test_table_goes_to_stdout_and_context_to_stderr(cli: Cli, project: Path) -> None:
    result = cli("names", env={"METAFLOW_USER": "alice"})
    assert result.code == 0
    assert "myproj.user.alice.HelloFlow" in result.stdout
    assert "token prefix" in result.stderr
    assert "\x1b[" not in result.stdout + result.stderr


def test_no_user_is_a_clear_error_never_user_none(cli: Cli, project: Path) -> None:
    result = cli("names", "-o", "json", env={"USER": "root"})
    assert result.code == 2
    assert "METAFLOW_USER" in result.stderr
    assert "user.None" not in result.stdout + result.stderr
    # Production and custom branches do not need a user name.
    assert cli("names", "-o", "json", "--production", env={"USER": "root"}).json()["branch"] == "prod"


@pytest.mark.parametrize(
    ("env", "user"),
    [
        ({"METAFLOW_USER": "mf", "SUDO_USER": "sudo", "USERNAME": "un", "USER": "u"}, "mf"),
        ({"SUDO_USER": "sudo", "USERNAME": "un", "USER": "u"}, "sudo"),
        ({"SUDO_USER": "root", "USERNAME": "", "USER": "u"}, "u"),
        ({"METAFLOW_USER": "", "USER": "u"}, "u"),
    ],
)
def test_user_resolution_order(cli: Cli, project: Path, env: dict, user: str) -> None:
    assert cli("names", "-o", "json", env=env).json()["user"] == user


def test_metaflow_user_from_metaflow_config(cli: Cli, project: Path, tmp_path: Path) -> None:
    config = tmp_path / "mfhome"
    config.mkdir()
    (config / "config.json").write_text(json.dumps({"METAFLOW_USER": "configured"}))
    result = cli("names", "-o", "json", env={"METAFLOW_HOME": str(config), "USER": "u"})
    assert result.json()["user"] == "configured"


def test_metaflow_owner_replaces_only_the_user_branch(cli: Cli, project: Path) -> None:
    env = {"METAFLOW_OWNER": "bob", "USER": "alice"}
    document = cli("names", "-o", "json", env=env).json()
    assert document["branch"] == "user.bob"
    assert document["user"] == "alice"
    assert cli("names", "-o", "json", "--branch", "x", env=env).json()["branch"] == "test.x"
    empty = cli("names", env={"METAFLOW_OWNER": "", "USER": "alice"})
    assert empty.code == 2 and "METAFLOW_OWNER is set but empty" in empty.stderr


def test_branch_and_production_from_the_environment(cli: Cli, project: Path) -> None:
    env = {"USER": "alice"}
    assert cli("names", "-o", "json", env={**env, "METAFLOW_BRANCH": "mf"}).json()["branch"] == "test.mf"
    assert (
        cli("names", "-o", "json", env={**env, "METAFLOW_BRANCH": "mf", "MFPROJ_BRANCH": "ours"}).json()["branch"]
        == "test.ours"
    )
    assert (
        cli("names", "-o", "json", "--branch", "cli", env={**env, "MFPROJ_BRANCH": "ours"}).json()["branch"]
        == "test.cli"
    )
    assert cli("names", "-o", "json", env={**env, "METAFLOW_PRODUCTION": "True"}).json()["branch"] == "prod"
    assert (
        cli("names", "-o", "json", env={**env, "MFPROJ_PRODUCTION": "0", "METAFLOW_PRODUCTION": "1"}).json()["branch"]
        == "user.alice"
    )
    assert (
        cli("names", "-o", "json", "--no-production", env={**env, "MFPROJ_PRODUCTION": "1"}).json()["branch"]
        == "user.alice"
    )
    bad = cli("names", env={**env, "MFPROJ_PRODUCTION": "maybe"})
    assert bad.code == 2 and "MFPROJ_PRODUCTION='maybe' is not a boolean" in bad.stderr
    bad_branch = cli("names", env={**env, "MFPROJ_BRANCH": "Feature-X"})
    assert bad_branch.code == 2 and "MFPROJ_BRANCH: branch name 'Feature-X'" in bad_branch.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["names", "--branch", "Bad-Branch"], "branch name 'Bad-Branch' has the character 'B'"),
        (["names", "--branch", ""], "--branch must not be empty"),
    ],
)
def test_bad_branches_exit_2(cli: Cli, project: Path, args: list[str], message: str) -> None:
    result = cli(*args, env={"USER": "alice"})
    assert result.code == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_usage_errors_exit_2(cli: Cli, project: Path) -> None:
    result = cli("names", "--bogus", env={"USER": "alice"})
    assert result.code == 2
    assert "--bogus" in result.stderr
    assert cli("names", "-o", "yaml", env={"USER": "alice"}).code == 2
    assert cli("no-such-command").code == 2


def test_debug_shows_the_traceback(cli: Cli, project: Path) -> None:
    result = cli("--debug", "names", "--branch", "Bad", env={"USER": "alice"})
    assert result.code == 2
    assert "Traceback" in result.stderr


def test_collisions_between_flows_exit_6(cli: Cli, tmp_path: Path) -> None:
    write_manifest(
        tmp_path,
        """
        [project]
        name = "p"
        [[flows]]
        name = "My_Flow"
        argo_workflows = "a.yaml"
        [[flows]]
        name = "MyFlow"
        argo_workflows = "b.yaml"
        """,
    )
    result = cli("names", env={"USER": "alice"})
    assert result.code == 6
    assert "flow 'My_Flow' and flow 'MyFlow' both map to the workflow template 'p.user.alice.myflow'" in result.stderr


def test_invalid_backend_names_warn_and_strict_fails(cli: Cli, tmp_path: Path) -> None:
    write_manifest(
        tmp_path,
        """
        [project]
        name = "p"
        [[flows]]
        name = "HelloFlow"
        step_functions = "a.json"
        schedule = "0 * * * *"
        [step_functions]
        role_arn = "arn:aws:iam::123456789012:role/r"
        """,
    )
    env = {"METAFLOW_USER": "john.doe+ci@example.com"}
    result = cli("names", "-o", "json", env=env)
    assert result.code == 0
    [problem] = result.json()["problems"]
    assert problem["kind"] == "eventbridge_rule" and "METAFLOW_USER" in problem["hint"]
    assert "warning:" in result.stderr
    strict = cli("names", "--strict", env=env)
    assert strict.code == 2


def test_manifest_option_and_errors_name_the_file(cli: Cli, tmp_path: Path) -> None:
    path = write_manifest(tmp_path / "sub", "flow = 1\n[project]\nname = 'p'\n")
    result = cli("--manifest", str(path), "names", env={"USER": "a"})
    assert result.code == 2
    assert f"{path}: flow: unknown key" in result.stderr
    assert "did you mean 'flows'?" in result.stderr
    missing = cli("names", env={"USER": "a"}, cwd=tmp_path / "sub" / "..")
    assert missing.code == 2 and "mfproj init" in missing.stderr


def test_init_writes_a_loadable_manifest_and_refuses_to_overwrite(cli: Cli, tmp_path: Path) -> None:
    workdir = tmp_path / "My Team-Proj"
    workdir.mkdir()
    first = cli("init", "--flow", "TrainFlow", cwd=workdir)
    assert first.code == 0, first.stderr
    assert (workdir / "flows" / "train_flow.asl.json").is_file()
    names = cli("names", "-o", "json", cwd=workdir, env={"USER": "alice"}).json()
    assert names["project"] == "my_team_proj"
    assert names["flows"][0]["flow"] == "TrainFlow"
    (workdir / "mfproj.toml").write_text((workdir / "mfproj.toml").read_text() + "\n# mine\n")
    second = cli("init", cwd=workdir)
    assert second.code == 2 and "--force" in second.stderr
    assert (workdir / "mfproj.toml").read_text().endswith("# mine\n")
    assert cli("init", "--force", "--project", "other", cwd=workdir).code == 0
    assert "other" in (workdir / "mfproj.toml").read_text()
    assert cli("init", "--project", "Bad-Name", "--force", cwd=workdir).code == 2
    # A new manifest beside someone's template: the template is kept, and that is said.
    (workdir / "mfproj.toml").unlink()
    template = workdir / "flows" / "train_flow.asl.json"
    template.write_text('{"StartAt": "mine", "States": {"mine": {"Type": "Succeed"}}}')
    third = cli("init", "--flow", "TrainFlow", cwd=workdir)
    assert third.code == 0, third.stderr
    assert "train_flow.asl.json (it exists; --force overwrites it" in third.stderr
    assert '"mine"' in template.read_text()


def test_no_color_and_noninteractive_output(cli: Cli, project: Path) -> None:
    result = cli("--no-color", "names", "--branch", "Bad", env={"USER": "a"})
    assert "\x1b[" not in result.stderr
    assert result.stderr.startswith("error:")


# --- the fast path gives the same answers as the Typer app ------------------------------------------

FAST_CASES = [
    ["names", "-o", "json"],
    ["names", "--output=json", "--branch", "foo"],
    ["names", "-ojson", "-b", "foo", "--production"],
    ["names", "HelloFlow", "-o", "json", "--production"],
    ["names"],
    ["--no-color", "names", "--branch=bar"],
    ["names", "--branch", "Bad-Branch", "-o", "json"],
    ["names", "NoSuchFlow"],
]


@pytest.mark.parametrize("args", FAST_CASES, ids=" ".join)
def test_fast_path_matches_typer(
    args: list[str], project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("USER", "alice")
    fast_code = fastpath.try_run(args)
    assert fast_code is not None, "the fast path should have handled this"
    fast = capsys.readouterr()
    slow_code = typer_app.run(args)
    slow = capsys.readouterr()
    assert (fast_code, fast.out, fast.err) == (slow_code, slow.out, slow.err)


@pytest.mark.parametrize("args", [["names", "--help"], ["names", "--bogus"], ["names", "-o", "yaml"], ["init"], []])
def test_fast_path_leaves_the_rest_to_typer(args: list[str]) -> None:
    assert fastpath.try_run(args) is None


def test_names_imports_neither_boto3_nor_kubernetes(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = (
        "import sys\n"
        "from mfproj.cli import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    code = e.code\n"
        "heavy = sorted(m for m in sys.modules\n"
        "               if m.split('.')[0] in ('boto3', 'botocore', 'kubernetes', 'typer', 'rich'))\n"
        "print('HEAVY', code, heavy, file=sys.stderr)\n"
    )
    monkeypatch.setenv("USER", "alice")
    for args in (["names", "-o", "json"], ["--no-color", "names", "-o", "json", "--strict"]):
        done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=60)
        line = done.stderr.strip().splitlines()[-1]
        assert line.startswith("HEAVY 0"), done.stderr
        assert line == "HEAVY 0 []", line
    # The Typer path (help) must still not pull the backends' libraries in.
    done = subprocess.run([sys.executable, "-c", script, "names", "--help"], capture_output=True, text=True, timeout=60)
    line = done.stderr.strip().splitlines()[-1]
    assert "boto3" not in line and "kubernetes" not in line and "botocore" not in line


def test_the_example_project_from_the_readme(cli: Cli) -> None:
    example = Path(__file__).resolve().parent.parent / "examples" / "example_project"
    result = cli("names", "-o", "json", env={"METAFLOW_USER": "alice"}, cwd=example)
    assert result.code == 0, result.stderr
    document = result.json()
    assert document["project"] == "example_project" and document["branch"] == "user.alice"
    assert [f["flow"] for f in document["flows"]] == ["ProjectFlow", "NightlyReportFlow"]
    assert document["flows"][0]["argo_workflows"]["workflow_template"] == "exampleproject.user.alice.projectflow"
    assert document["problems"] == []
    help_text = cli("--help").stdout
    for command in ("names", "init", "deploy", "delete", "trigger", "runs", "token", "completion"):
        assert command in help_text


def test_errors_are_a_json_object_under_output_json(cli: Cli, tmp_path: Path) -> None:
    missing = cli("names", "-o", "json", env={"METAFLOW_USER": "alice"})
    assert missing.code == 2 and missing.stdout == ""
    error = json.loads(missing.stderr)["error"]
    assert error["code"] == "manifest" and error["exit_code"] == 2
    assert "mfproj.toml" in error["message"] and "mfproj init" in error["hint"]
    usage = cli("deploy", "--nope", "-o", "json", env={"METAFLOW_USER": "alice"})
    assert usage.code == 2
    assert json.loads(usage.stderr)["error"]["code"] == "usage"
    plain = cli("names", env={"METAFLOW_USER": "alice"})
    assert plain.stderr.startswith("error:") and "\nhint:" in plain.stderr


def test_runs_show_is_a_subcommand_and_a_flow_named_show_can_be_listed(cli: Cli, tmp_path: Path) -> None:
    show_help = cli("runs", "show", "--help")
    assert show_help.code == 0 and "RUN_ID" in show_help.stdout and "--namespace" not in show_help.stdout
    list_help = cli("runs", "--help")
    assert list_help.code == 0 and "show" in list_help.stdout and "list" in list_help.stdout
    assert cli("runs", "show", env={"METAFLOW_USER": "alice"}).code == 2  # RUN_ID is required
    write_manifest(tmp_path, '[project]\nname = "p"\n[[flows]]\nname = "show"\nstep_functions = "a.json"\n')
    # `runs list show`: the flow named show; nothing is deployed, so: not found (not a usage error).
    listed = cli("runs", "list", "show", "--metaflow-local", env={"METAFLOW_USER": "alice"})
    assert listed.code == 4 and ".metaflow" in listed.stderr
