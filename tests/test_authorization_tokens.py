"""One branch, one token: an offered token is only ever compared with a deployed one, and a token (or a
share string) of another branch never becomes this branch's token, in a deployment, a definition or a
keyring file. Against moto's server, through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mfproj import naming, tokens
from mfproj.backends.step_functions.record import decode_record
from mfproj.keyring import Keyring
from tests.conftest import Cli, as_user
from tests.emulators import FaultProxy
from tests.testing.fixtures import Flow, make_project, pass_machine

ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:{}"
PROD = naming.token_prefix("myproj", "prod")
EXP = naming.token_prefix("myproj", "test.exp")
ALICE = naming.token_prefix("myproj", "user.alice")


@pytest.fixture
def proj(tmp_path: Path, aws: Any) -> Path:
    return make_project(tmp_path, Flow("HelloFlow", step_functions=pass_machine("${mfproj.namespace}"), file="hello"))


def _everything_written(sfn: Any, keyrings: list[Path]) -> str:
    """Every definition, every tag and every keyring file, as one text to search for a token."""
    texts = []
    for machine in sfn.list_state_machines()["stateMachines"]:
        described = sfn.describe_state_machine(stateMachineArn=machine["stateMachineArn"])
        texts.append(json.dumps(described["definition"]))
        texts.append(json.dumps(sfn.list_tags_for_resource(resourceArn=machine["stateMachineArn"])["tags"]))
    for home in keyrings:
        if home.is_dir():
            texts.extend(path.read_text() for path in home.iterdir() if path.is_file())
    return "\n".join(texts)


def _deployed_token(sfn: Any, name: str) -> str | None:
    tags = sfn.list_tags_for_resource(resourceArn=ARN.format(name))["tags"]
    record = decode_record({t["key"]: t["value"] for t in tags})
    return record.production_token if record else None


@pytest.fixture
def prod_token(cli: Cli, proj: Path, tmp_path: Path, secrets: set[str]) -> str:
    assert cli("deploy", "--production", env=as_user("ci", tmp_path)).code == 0
    token = Keyring(tmp_path / "keyring-ci").load_token(PROD)
    assert token
    secrets.add(token)
    return token


def test_production_token_in_the_environment_is_ignored_for_a_user_branch(
    cli: Cli, proj: Path, sfn: Any, tmp_path: Path, prod_token: str
) -> None:
    env = as_user("alice", tmp_path, MFPROJ_PRODUCTION_TOKEN=prod_token)
    result = cli("deploy", "-o", "json", env=env)
    assert result.code == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, result.stderr
    assert "MFPROJ_PRODUCTION_TOKEN" in warnings[0] and "myproj prod" in warnings[0] and "ignored" in warnings[0]
    token = _deployed_token(sfn, "myproj.user.alice.HelloFlow")
    assert token is not None and token.startswith(ALICE + "-0-")
    assert Keyring(tmp_path / "keyring-alice").load_token(ALICE) == token
    # The production token is in production's deployment only.
    written = _everything_written(sfn, [tmp_path / "keyring-alice"])
    assert written.count(prod_token) == _everything_written(sfn, []).count(prod_token) > 0
    assert prod_token not in json.dumps(
        sfn.describe_state_machine(stateMachineArn=ARN.format("myproj.user.alice.HelloFlow"))["definition"]
    )


@pytest.mark.parametrize("how", ["bare", "namespace", "hello", "share", "file", "file-share"])
def test_another_branchs_token_offered_explicitly_is_refused_before_any_request(
    cli: Cli, proj: Path, sfn: Any, aws: Any, tmp_path: Path, prod_token: str, how: str
) -> None:
    share = cli("token", "share", "--production", env=as_user("ci", tmp_path), reveal=True).stdout.strip()
    value = {"bare": prod_token, "namespace": f"production:{prod_token}", "hello": "hello"}.get(how, share)
    args = ["deploy", "--branch", "exp"]
    if how.startswith("file"):
        (tmp_path / "offer.txt").write_text((share if how == "file-share" else prod_token) + "\n")
        args += ["--authorize-file", str(tmp_path / "offer.txt")]
    else:
        args += ["--authorize", value]
    proxy = FaultProxy(aws.url)
    try:
        result = cli(*args, env=as_user("alice", tmp_path, AWS_ENDPOINT_URL=proxy.url))
    finally:
        proxy.stop()
    assert result.code == 2, result.stderr
    assert proxy.log == []  # refused before any request
    first = result.stderr.splitlines()[0]
    assert first.startswith("error: --authorize")
    if how == "hello":
        assert "not a project token" in first
    else:
        assert "myproj prod" in first, first  # names the branch it belongs to
    assert "hint:" in result.stderr
    assert prod_token not in result.stderr
    assert not (tmp_path / "keyring-alice" / EXP).exists()


def test_delete_refuses_another_branchs_token_too(
    cli: Cli, proj: Path, sfn: Any, tmp_path: Path, prod_token: str
) -> None:
    assert cli("deploy", "--branch", "exp", env=as_user("alice", tmp_path)).code == 0
    result = cli(
        "delete", "HelloFlow", "--branch", "exp", "--yes", "--authorize", prod_token, env=as_user("bob", tmp_path)
    )
    assert result.code == 2 and "myproj prod" in result.stderr
    assert _deployed_token(sfn, "myproj.test.exp.HelloFlow") is not None


def test_a_first_deploy_makes_a_fresh_token_whatever_is_offered(
    cli: Cli, proj: Path, sfn: Any, tmp_path: Path, secrets: set[str]
) -> None:
    offered = tokens.random_token(EXP, None)  # this branch's prefix, but nothing is deployed to compare it with
    secrets.add(offered)
    result = cli("deploy", "--branch", "exp", "--authorize", offered, env=as_user("alice", tmp_path))
    assert result.code == 0, result.stderr
    deployed = _deployed_token(sfn, "myproj.test.exp.HelloFlow")
    assert deployed is not None and deployed != offered and deployed.startswith(EXP + "-0-")
    assert offered not in _everything_written(sfn, [tmp_path / "keyring-alice"])


def test_a_keyring_file_holding_another_branchs_token_is_ignored(
    cli: Cli, proj: Path, sfn: Any, tmp_path: Path, prod_token: str
) -> None:
    # Written by an older tool (or by hand): the file of test.exp holds production's token.
    home = tmp_path / "keyring-alice"
    home.mkdir(mode=0o700)
    (home / EXP).write_text(json.dumps({"production_token": prod_token}))
    result = cli("deploy", "--branch", "exp", env=as_user("alice", tmp_path))
    assert result.code == 0, result.stderr
    assert "warning:" in result.stderr and "another branch" in result.stderr
    deployed = _deployed_token(sfn, "myproj.test.exp.HelloFlow")
    assert deployed is not None and deployed.startswith(EXP + "-0-")
    assert Keyring(home).load_token(EXP) == deployed


def test_this_branchs_share_string_authorizes_a_deploy(
    cli: Cli, proj: Path, sfn: Any, tmp_path: Path, prod_token: str
) -> None:
    share = cli("token", "share", "--production", env=as_user("ci", tmp_path), reveal=True).stdout.strip()
    result = cli("deploy", "--production", "--authorize", share, "-o", "json", env=as_user("bob", tmp_path))
    assert result.code == 0, result.stderr
    assert result.json()["deployments"][0]["authorization"] == "authorized by the token from --authorize"
    assert _deployed_token(sfn, "myproj.prod.HelloFlow") == prod_token
    assert share not in _everything_written(sfn, [tmp_path / "keyring-bob"])
