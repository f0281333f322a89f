"""Static completion scripts: up to date with the CLI, and they really complete in bash."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mfproj.cli.completion import FILES, generate
from tests.conftest import Cli, write_manifest

ROOT = Path(__file__).resolve().parent.parent

# Every top-level command, as both completers list them.
COMMANDS = [
    *("completion", "delete", "deploy", "deployments", "gc", "history", "init", "names", "namespaces"),
    *("promote", "rollback", "runs", "schedules", "teardown", "token", "trigger", "unlock", "whoami"),
]


@pytest.mark.parametrize("shell", sorted(FILES))
def test_committed_scripts_are_up_to_date(shell: str) -> None:
    committed = (ROOT / "completions" / FILES[shell]).read_text(encoding="utf-8")
    assert committed == generate(shell), "run: python scripts/gen_completions.py"


@pytest.mark.parametrize("shell", sorted(FILES))
def test_completion_command_prints_the_script(cli: Cli, shell: str) -> None:
    result = cli("completion", shell)
    assert result.code == 0
    assert result.stdout == generate(shell)


def _bash_complete(line: str, cwd: Path, path_dir: Path) -> list[str]:
    script = f"""
source {ROOT / "completions" / "mfproj.bash"}
COMP_WORDS=({line})
[[ "{line}" == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1))
_mfproj
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    env = {"PATH": f"{path_dir}:/usr/bin:/bin", "HOME": str(cwd)}
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=cwd, env=env, timeout=30)
    assert done.returncode == 0, done.stderr
    return [w for w in done.stdout.splitlines() if w]


@pytest.fixture
def fake_path(tmp_path: Path) -> Path:
    """A PATH directory whose `mfproj` runs this interpreter, and logs that it was called."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    launcher = bin_dir / "mfproj"
    launcher.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "calls.log"}\nexec {sys.executable} -m mfproj "$@"\n')
    launcher.chmod(0o755)
    return bin_dir


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_completes_commands_and_options_without_python(tmp_path: Path, fake_path: Path) -> None:
    assert _bash_complete("mfproj ", tmp_path, fake_path) == COMMANDS
    assert _bash_complete("mfproj token ", tmp_path, fake_path) == ["authorize", "forget", "list", "share", "show"]
    assert "--reveal" in _bash_complete("mfproj token show --", tmp_path, fake_path)
    assert _bash_complete("mfproj na", tmp_path, fake_path) == ["names", "namespaces"]
    assert "--branch" in _bash_complete("mfproj names --", tmp_path, fake_path)
    assert _bash_complete("mfproj names -o ", tmp_path, fake_path) == ["table", "wide", "json"]
    assert _bash_complete("mfproj --manifest x.toml names --out", tmp_path, fake_path) == ["--output"]
    assert _bash_complete("mfproj completion ", tmp_path, fake_path) == ["bash", "zsh", "fish"]
    assert not (tmp_path / "calls.log").exists(), "completing commands and options must not run mfproj"


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_completes_flow_names_from_the_manifest(tmp_path: Path, fake_path: Path) -> None:
    write_manifest(tmp_path, "[project]\nname = 'p'\n[[flows]]\nname = 'TrainFlow'\n[[flows]]\nname = 'ScoreFlow'\n")
    assert _bash_complete("mfproj names ", tmp_path, fake_path) == ["TrainFlow", "ScoreFlow"]
    assert _bash_complete("mfproj names --branch x Tr", tmp_path, fake_path) == ["TrainFlow"]
    assert (tmp_path / "calls.log").read_text().strip().splitlines() == ["__complete flows"] * 2


def test_flow_completion_is_silent_without_a_manifest(cli: Cli, tmp_path: Path) -> None:
    result = cli("__complete", "flows")
    assert (result.code, result.stdout, result.stderr) == (0, "", "")


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_zsh_script_parses() -> None:
    subprocess.run(["zsh", "-n", str(ROOT / "completions" / "_mfproj")], check=True, timeout=30)


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
def test_fish_script_parses() -> None:
    subprocess.run(["fish", "--no-execute", str(ROOT / "completions" / "mfproj.fish")], check=True, timeout=30)


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
def test_fish_completes_commands_and_choices() -> None:
    script = ROOT / "completions" / "mfproj.fish"

    def complete(line: str) -> list[str]:
        done = subprocess.run(
            ["fish", "--no-config", "-c", f"source {script}; complete -C '{line}'"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        return [row.split("\t")[0] for row in done.stdout.splitlines()]

    assert complete("mfproj ") == COMMANDS
    assert complete("mfproj token ") == ["authorize", "forget", "list", "share", "show"]
    assert complete("mfproj names -o ") == ["json", "table", "wide"]
