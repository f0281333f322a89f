"""The keyring is checked before the first write: a keyring that cannot keep the token deploys nothing,
and one that fails after the deploy landed is exit 8 saying so."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, as_user
from tests.testing.branch import (
    two_flow_project,
)

# --- 3. a keyring that cannot keep the token --------------------------------------------------------


def test_an_unwritable_keyring_deploys_nothing(cli: Cli, tmp_path: Path, sfn: Any) -> None:
    two_flow_project(tmp_path)
    # /proc/self can be read but nothing can be made in it (as HOME=/proc/self would have it).
    result = cli("deploy", env={"METAFLOW_USER": "alice", "METAFLOW_TOKEN_HOME": "/proc/self/mfproj-tokens"})
    assert result.code == 2, result.stderr
    assert "nothing was deployed" in result.stderr
    assert sfn.list_state_machines()["stateMachines"] == []


def test_a_keyring_that_fails_after_the_deploy_landed_is_exit_8(
    tmp_path: Path, sfn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mfproj import keyring, manifest
    from mfproj.errors import PartiallyAppliedError
    from mfproj.usecases import deploy, session

    two_flow_project(tmp_path)

    def refuse(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise keyring.KeyringError("cannot write the token file: No space left on device")

    monkeypatch.setattr(keyring.Keyring, "store", refuse)  # the disk fills between the check and the write
    opened = session.open_session(manifest.load(tmp_path), branch=None, production=None, env=as_user("alice", tmp_path))
    with pytest.raises(PartiallyAppliedError) as caught:
        deploy.deploy(opened)
    assert "the deploy landed" in caught.value.message and "could not be stored" in caught.value.message
    assert "mfproj deploy" in caught.value.hint
    assert len(sfn.list_state_machines()["stateMachines"]) == 2
