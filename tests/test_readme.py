"""README's pictures of output (as text) are what the tool prints now (issue #14): the offline ones
exactly, the ones that need a deployment by their header and the words in their columns; every command
has a section."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mfproj.cli.app import command
from mfproj.cli.completion import command_tree
from tests.conftest import Cli
from tests.terminal import in_terminal

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _block_after(first_line: str) -> list[str]:
    """The lines of the README's code block that contains `first_line`, from that line to the fence."""
    lines = README.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(first_line))
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("```"))
    return lines[start:end]


def test_the_names_picture_is_what_names_prints_at_80_columns(cli: Cli) -> None:
    block = _block_after("$ METAFLOW_USER=alice mfproj names")
    example = ROOT / "examples" / "example_project"
    result = cli("names", env={"METAFLOW_USER": "alice"}, cwd=example)
    assert result.code == 0, result.stderr
    assert block[1] == result.stderr.splitlines()[0]  # the header line (on stderr)
    shown = in_terminal(["names"], example, {"METAFLOW_USER": "alice"}, 80)
    assert block[2:] == [line.rstrip() for line in shown.splitlines() if line.strip()]


def _columns(header: str) -> list[str]:
    return re.split(r"\s{2,}", header.strip())


def test_the_deploy_summary_pictures_have_the_tables_columns_at_80_and_its_words() -> None:
    """Drawn from deployments that need a service: their columns are the summary's at 80 columns (the
    flow left out first), their actions and authorizations the summary's words."""
    from mfproj.cli.deploy import deploy_view
    from mfproj.usecases.report import Report

    view = deploy_view(Report(project="p", branch="b", token_prefix="t", namespace="n", dry_run=False, outcomes=[]))
    narrow = [c for c in view.columns if c not in view.optional]
    pictures = [i for i, line in enumerate(README.splitlines()) if line.startswith("backend  deployed as")]
    assert len(pictures) >= 2
    for index in pictures:
        block = _block_after(README.splitlines()[index])
        assert _columns(block[0]) == narrow
        for row in block[1:]:
            if row.startswith(("sfn ", "argo ")):
                assert row.split()[-1] in ("owner", "new") or "token from" in row or "authorized by" in row, row


def test_the_deployments_picture_has_the_tables_columns_at_80() -> None:
    from mfproj.cli.deployments import listing_view
    from mfproj.usecases.deployments import Listing

    block = _block_after("$ mfproj deployments")
    view = listing_view(Listing([], looked_for_metaflow=False))
    assert _columns(block[1]) == [c for c in view.columns if c not in view.optional]


def test_the_whoami_picture_has_the_lines_whoami_prints(cli: Cli, tmp_path: Path) -> None:
    block = _block_after("$ METAFLOW_USER=alice mfproj whoami")
    printed = cli("whoami", env={"METAFLOW_USER": "alice"}).stdout.splitlines()
    assert [line.split()[0] for line in block[1:]] == [line.split()[0] for line in printed if line.split()]


@pytest.mark.parametrize("path", [s.path for s in command_tree(command()) if s.path and " " not in s.path])
def test_every_command_has_a_section(path: str) -> None:
    assert f"### `mfproj {path}" in README or f"`mfproj {path}" in README, path
