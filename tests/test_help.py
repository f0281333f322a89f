"""Help and completion as people expect them, for every command of the tree (issue #14):

- help: its own for every command; flags show no value, values a short upper-case name or their choices
  `[a|b]` once; no Python types (`<list[str]>`, `<bool>`), no empty `()`, no `{ARG}` usage;
- completion: every option with fixed choices completes them in bash, zsh and fish; `runs show` completes
  the run ids this user listed lately (no network), not flow names.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mfproj.cli.app import command
from mfproj.cli.completion import command_tree
from tests.conftest import Cli, write_manifest

ROOT = Path(__file__).resolve().parent.parent
SPECS = command_tree(command())
PATHS = [spec.path for spec in SPECS]
CHOICE_OPTIONS = [
    (spec.path, option.names[0], option.choices) for spec in SPECS for option in spec.options if option.choices
]


def _params(path: str) -> list[Any]:
    node: Any = command()
    for word in path.split():
        node = node.commands[word]
    return [p for p in node.params if not getattr(p, "hidden", False)]


_PYTHON_TYPE = re.compile(r"<(bool|str|int|float|path|file|dir|list\[[^>]*\]|[a-z-]+\|[a-z|-]+)>")
_VALUE_NAME = re.compile(r"^([A-Z][A-Z0-9_=]*|\[[a-z0-9_|-]+\])\Z")


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p or "mfproj")
def test_every_command_has_conventional_help(cli: Cli, path: str) -> None:
    result = cli(*path.split(), "--help")
    assert result.code == 0, result.stderr
    text = result.stdout
    usage = text.splitlines()[0]
    assert usage.startswith(f"Usage: mfproj {path} ".replace("  ", " ")), usage  # its own help
    assert "{" not in usage and "}" not in usage, usage
    assert not _PYTHON_TYPE.search(text), _PYTHON_TYPE.search(text)
    assert "()" not in text
    assert "╭" not in text, "panels do not copy into an issue or a terminal log"
    for param in _params(path):
        if param.param_type_name != "option":
            continue
        name = max(param.opts, key=len)
        line = next(row for row in text.splitlines() if re.search(rf"(^|\s|, ){re.escape(name)}(\s|$)", row))
        label = re.split(r"\s{2,}", line.strip())[0]
        after = label[label.index(name) + len(name) :].strip()
        if param.secondary_opts:
            after = after.replace("/ " + ", ".join(param.secondary_opts), "").strip()
        takes_value = not getattr(param, "is_flag", False)
        if takes_value:
            assert _VALUE_NAME.match(after), f"{path} {name}: value shown as {after!r}"
        else:
            assert after == "", f"{path} {name} is a flag but shows {after!r}"
    for _, option, choices in [c for c in CHOICE_OPTIONS if c[0] == path]:
        assert text.count("|".join(choices)) == 1, f"{path} {option}: choices listed once"


def test_each_subcommand_help_is_its_own(cli: Cli) -> None:
    assert cli("runs", "show", "--help").stdout != cli("runs", "--help").stdout
    assert "RUN_ID" in cli("runs", "show", "--help").stdout.splitlines()[0]


def test_command_summaries_are_not_cut(cli: Cli) -> None:
    assert "..." not in cli("--help").stdout.split("Commands:")[1]


# --- completion ---


@pytest.fixture
def shell_env(tmp_path: Path) -> dict[str, str]:
    """PATH with an `mfproj` that runs this interpreter (for the fast-path calls) and an own HOME."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    launcher = bin_dir / "mfproj"
    launcher.write_text(f'#!/bin/sh\nexec {sys.executable} -m mfproj "$@"\n')
    launcher.chmod(0o755)
    return {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path / "home")}


def _bash(line: str, cwd: Path, env: dict[str, str]) -> list[str]:
    script = f"""
source {ROOT / "completions" / "mfproj.bash"}
COMP_WORDS=({line})
[[ "{line}" == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1))
_mfproj
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=cwd, env=env, timeout=30)
    assert done.returncode == 0, done.stderr
    return [w for w in done.stdout.splitlines() if w]


def _zsh(line: str, cwd: Path, env: dict[str, str]) -> list[str]:
    # zsh's completion system is stood in for by its two entry points the script uses: `compadd` prints
    # the candidates, `_files` says it would complete file names.
    script = f"""
compdef() {{ : }}
compadd() {{ while [[ $1 != -- ]]; do shift; done; shift; print -l -- "$@" }}
_files() {{ print -- __files__ }}
source {ROOT / "completions" / "_mfproj"}
words=({line})
[[ "{line}" == *" " ]] && words+=("")
CURRENT=${{#words}}
_mfproj
"""
    done = subprocess.run(["zsh", "-f", "-c", script], capture_output=True, text=True, cwd=cwd, env=env, timeout=30)
    assert done.returncode == 0, done.stderr
    return [w for w in done.stdout.splitlines() if w]


def _fish(line: str, cwd: Path, env: dict[str, str]) -> list[str]:
    script = ROOT / "completions" / "mfproj.fish"
    done = subprocess.run(
        ["fish", "--no-config", "-c", f"source {script}; complete -C '{line}'"],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=30,
    )
    return [row.split("\t")[0] for row in done.stdout.splitlines()]


SHELLS = {"bash": _bash, "zsh": _zsh, "fish": _fish}


def _complete(shell: str, line: str, cwd: Path, env: dict[str, str]) -> list[str]:
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed (.ci/run installs it)")
    return SHELLS[shell](line, cwd, env)


def test_every_choice_option_is_listed() -> None:
    found = {(path, option) for path, option, _ in CHOICE_OPTIONS}
    for wanted in [("deploy", "--backend"), ("runs", "--status"), ("runs list", "--status"), ("names", "--output")]:
        assert wanted in found, wanted
    assert len(CHOICE_OPTIONS) > 30


@pytest.mark.parametrize("shell", sorted(SHELLS))
def test_every_fixed_choice_completes(shell: str, tmp_path: Path, shell_env: dict[str, str]) -> None:
    missing = []
    for path, option, choices in CHOICE_OPTIONS:
        line = " ".join(["mfproj", *path.split(), option, ""])
        got = _complete(shell, line, tmp_path, shell_env)
        if sorted(got) != sorted(choices):
            missing.append(f"{line!r}: {got} != {choices}")
    assert not missing, "\n".join(missing)


@pytest.mark.parametrize("shell", sorted(SHELLS))
def test_arguments_complete_flows_and_run_ids(shell: str, tmp_path: Path, shell_env: dict[str, str]) -> None:
    write_manifest(tmp_path, "[project]\nname = 'p'\n[[flows]]\nname = 'TrainFlow'\n")
    cache = tmp_path / "home" / ".cache" / "mfproj"
    cache.mkdir(parents=True)
    (cache / "recent-run-ids").write_text("sfn-abc\nargo-p-user-alice-trainflow-x1\n")
    run_ids = _complete(shell, "mfproj runs show ", tmp_path, shell_env)
    assert sorted(run_ids) == ["argo-p-user-alice-trainflow-x1", "sfn-abc"]  # not flow names
    assert "TrainFlow" in _complete(shell, "mfproj deploy ", tmp_path, shell_env)
    runs = _complete(shell, "mfproj runs ", tmp_path, shell_env)  # `runs` is `runs list` by default
    assert {"list", "show", "terminate", "TrainFlow"} <= set(runs), runs
    assert sorted(_complete(shell, "mfproj completion ", tmp_path, shell_env)) == ["bash", "fish", "zsh"]


def test_listing_runs_remembers_their_ids_for_completion(tmp_path: Path) -> None:
    from mfproj import recent

    env = {"HOME": str(tmp_path)}
    recent.remember(["a", "b"], env)
    recent.remember(["c", "a"], env)
    assert recent.run_ids(env) == ["c", "a", "b"]
    recent.remember([f"id{i}" for i in range(500)], env)
    assert len(recent.run_ids(env)) == recent.KEEP
    (tmp_path / ".cache" / "mfproj").chmod(0o500)
    try:
        recent.remember(["x"], env)  # a cache that cannot be written never fails the command
    finally:
        (tmp_path / ".cache" / "mfproj").chmod(0o700)
