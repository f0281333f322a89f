"""Share strings are secrets: never printed back when given by mistake, and one whose token has another
branch's prefix is not stored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mfproj import naming
from mfproj.share import Share, encode_share
from tests.conftest import Cli, as_user
from tests.testing.branch import (
    two_flow_project,
)

# --- 8. share strings are secrets ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["deploy", "--production"],
        ["trigger", "--production"],
        ["delete", "--production", "--yes"],
        ["unlock", "--production"],
        ["runs", "show"],
        ["runs", "terminate"],
    ],
)
@pytest.mark.parametrize("fmt", ["table", "json"])
def test_a_share_string_given_by_mistake_is_never_printed(
    cli: Cli, tmp_path: Path, aws: Any, args: list[str], fmt: str
) -> None:
    two_flow_project(tmp_path)
    prefix = naming.token_prefix("myproj", "prod")
    share = encode_share(Share("myproj", "prod", prefix, f"{prefix}-0-{'s' * 26}"))
    result = cli(*args, share, "-o", fmt, env=as_user("alice", tmp_path))
    assert result.code != 0
    assert share not in result.stderr + result.stdout
    assert share.split(".")[1] not in result.stderr + result.stdout  # not even the payload alone
    assert f"{'s' * 26}" not in result.stderr + result.stdout


def test_a_share_string_whose_token_has_another_prefix_is_not_stored(cli: Cli, tmp_path: Path) -> None:
    two_flow_project(tmp_path)
    prefix = naming.token_prefix("myproj", "prod")
    other = naming.token_prefix("myproj", "test.x")
    share = encode_share(Share("myproj", "prod", prefix, f"{other}-0-{'q' * 26}"))
    result = cli("token", "authorize", "--production", "-", stdin=share, env=as_user("alice", tmp_path))
    assert result.code == 2
    assert "another prefix" in result.stderr
    assert not (tmp_path / "keyring-alice" / prefix).exists()
