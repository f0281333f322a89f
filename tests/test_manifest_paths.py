"""Template paths stay inside the repository: outside is a manifest error, elsewhere inside is fine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Cli, as_user, write_manifest
from tests.testing.branch import (
    PASS,
)
from tests.testing.fixtures import ROLE

# --- 14. template paths stay in the repository ----------------------------------------------------------


@pytest.mark.parametrize("path", ["/etc/hostname", "../outside.json", "flows/../../outside.json"])
def test_a_template_outside_the_repository_is_a_manifest_error(cli: Cli, tmp_path: Path, path: str) -> None:
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    (root / "flows").mkdir()
    (tmp_path / "outside.json").write_text(json.dumps(PASS))
    write_manifest(
        root,
        f'[project]\nname = "myproj"\n[[flows]]\nname = "F"\nstep_functions = "{path}"\n',
        templates=False,
    )
    result = cli("names", cwd=root, env=as_user("alice", tmp_path))
    assert result.code == 2
    assert "flows[0].step_functions" in result.stderr and "outside the repository" in result.stderr


def test_a_template_elsewhere_in_the_repository_is_fine(cli: Cli, tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    (root / "shared").mkdir()
    (root / "shared" / "f.asl.json").write_text(json.dumps(PASS))
    write_manifest(
        root / "project",
        f'[project]\nname = "myproj"\n[[flows]]\nname = "F"\nstep_functions = "../shared/f.asl.json"\n'
        f'[step_functions]\nrole_arn = "{ROLE}"\n',
        templates=False,
    )
    assert cli("names", cwd=root / "project", env=as_user("alice", tmp_path)).code == 0
