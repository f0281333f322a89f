"""The surface people touch: bad input ends in one `error:` line, a `hint:` line and the documented exit
code, never a traceback; a reader that goes away ends the command quietly. (Issue #14, first part.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import write_manifest

BAD_INPUT = [
    (["runs", "--since", "99999999d"], 2, "reaches back before the year 1"),
    (["trigger", "F", "--wait", "--timeout", "-5"], 2, "--timeout -5 is not a number of seconds"),
    (["trigger", "F", "--wait", "--timeout", "nan"], 2, "--timeout nan is not a number of seconds"),
    (["trigger", "F", "--timeout", "5"], 2, "--timeout applies to --wait"),
]


@pytest.mark.parametrize(
    ("args", "code", "message"), BAD_INPUT, ids=lambda v: " ".join(v) if isinstance(v, list) else ""
)
def test_bad_input_is_one_error_and_a_hint(cli, tmp_path: Path, args: list[str], code: int, message: str) -> None:  # type: ignore[no-untyped-def]
    result = cli(*args, env={"METAFLOW_USER": "alice"})
    assert result.code == code, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error:") and message in lines[0], result.stderr
    assert any(line.startswith("hint:") for line in lines[1:])
    assert "Traceback" not in result.stderr


def test_a_manifest_with_a_byte_order_mark_loads(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = write_manifest(tmp_path, '[project]\nname = "p"\n[[flows]]\nname = "F"\nargo_workflows = "f.json"\n')
    path.write_text("\ufeff" + path.read_text(), encoding="utf-8")
    result = cli("names", "-o", "json", env={"METAFLOW_USER": "alice"})
    assert result.code == 0, result.stderr
    assert result.json()["project"] == "p"


def test_init_writes_files_to_be_shared(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    previous = os.umask(0o022)
    try:
        assert cli("init", "--project", "p", "--flow", "F", "--dir", str(tmp_path / "new")).code == 0
    finally:
        os.umask(previous)
    for path in (tmp_path / "new").rglob("*"):
        if path.is_file():
            assert path.stat().st_mode & 0o777 == 0o644, path


@pytest.mark.parametrize("fmt", ["json", "table"])
def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path: Path, fmt: str) -> None:
    write_manifest(tmp_path, '[project]\nname = "p"\n[[flows]]\nname = "F"\nargo_workflows = "f.json"\n')
    # `true` exits at once, before mfproj writes: every write meets a closed pipe.
    command = f"{sys.executable} -m mfproj names -o {fmt} | true; echo $" + "{PIPESTATUS[0]}"
    done = subprocess.run(
        ["bash", "-c", command],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "METAFLOW_USER": "alice"},
    )
    assert "Traceback" not in done.stderr and "Exception" not in done.stderr, done.stderr
    assert done.stdout.strip() == "141"  # ended by the closed pipe (128 + SIGPIPE), as other tools end
