"""Settings from the environment (mfproj/envsettings.py): a bad one is exit 2 naming it, before any request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, as_user
from tests.testing.branch import (
    two_flow_project,
)

# --- 12. settings from the environment -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MFPROJ_AWS_MAX_ATTEMPTS", "abc"),
        ("MFPROJ_AWS_MAX_ATTEMPTS", "0"),
        ("MFPROJ_AWS_CONNECT_TIMEOUT", "-1"),
        ("MFPROJ_K8S_READ_TIMEOUT", "nan"),
        ("AWS_ENDPOINT_URL", "not-a-url"),
        ("MFPROJ_LOCK_TIMEOUT", "abc"),
    ],
)
def test_a_bad_setting_is_exit_2_naming_it_before_any_request(
    cli: Cli, tmp_path: Path, aws: Any, variable: str, value: str
) -> None:
    two_flow_project(tmp_path)
    result = cli("deploy", "--dry-run", env={**as_user("alice", tmp_path), variable: value})
    assert result.code == 2, result.stderr
    assert f"error: {variable}={value!r}" in result.stderr
    assert "hint:" in result.stderr and "unexpected" not in result.stderr
