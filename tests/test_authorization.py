"""Owners are who they authenticate as (mfproj/authorization.py): a principal, not a name; the name rule as
a manifest choice; records without a principal; the Argo owner from the API server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mfproj.backends.step_functions.record import decode_record
from tests.conftest import Cli, as_user
from tests.testing.branch import (
    ARN,
    PASS,
    argo_name,
    sfn_name,
    two_flow_project,
)

# --- 4. owners are who they authenticate as -----------------------------------------------------------------


def _iam_user(aws: Any, name: str) -> dict[str, str]:
    """A distinct IAM user on moto with its own access key: STS tells it from any other."""
    import boto3

    iam = boto3.client("iam", endpoint_url=aws.url, region_name="us-east-1")
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}


def test_a_teammate_with_his_own_credentials_is_not_the_owner_by_name(
    cli: Cli, tmp_path: Path, sfn: Any, aws: Any
) -> None:
    two_flow_project(tmp_path)
    alice_keys, bob_keys = _iam_user(aws, "alice"), _iam_user(aws, "bob")
    assert cli("deploy", "--production", env={**as_user("alice", tmp_path), **alice_keys}).code == 0
    # bob calls himself alice: the name matches, his credentials do not
    posing = cli("deploy", "--production", env={**as_user("alice", tmp_path / "bob"), **bob_keys})
    assert posing.code == 3, posing.stderr
    assert "user/alice" in posing.stderr and "user/bob" in posing.stderr
    # the same through a .metaflow/config.json planted in a parent directory
    planted = tmp_path / ".metaflow"
    planted.mkdir()
    (planted / "config.json").write_text(json.dumps({"METAFLOW_USER": "alice"}))
    env = {"METAFLOW_TOKEN_HOME": str(tmp_path / "bob-keyring"), **bob_keys}
    assert cli("deploy", "--production", env=env).code == 3
    # alice herself, from a fresh HOME with no keyring, is the owner
    fresh = {**as_user("alice", tmp_path / "fresh"), **alice_keys}
    assert cli("deploy", "--production", env=fresh).code == 0


def test_the_owner_rule_by_name_is_a_manifest_choice(cli: Cli, tmp_path: Path, sfn: Any, aws: Any) -> None:
    two_flow_project(tmp_path)
    manifest = tmp_path / "mfproj.toml"
    manifest.write_text(manifest.read_text().replace('name = "myproj"', 'name = "myproj"\nowner = "name"', 1))
    alice_keys, bob_keys = _iam_user(aws, "alice"), _iam_user(aws, "bob")
    assert cli("deploy", "--production", env={**as_user("alice", tmp_path), **alice_keys}).code == 0
    assert cli("deploy", "--production", env={**as_user("alice", tmp_path / "bob"), **bob_keys}).code == 0


def test_an_owner_recorded_without_a_principal_keeps_the_name_rule_with_a_warning(
    cli: Cli, tmp_path: Path, sfn: Any
) -> None:
    from dataclasses import replace

    two_flow_project(tmp_path)
    env = as_user("alice", tmp_path)
    assert cli("deploy", "--branch", "solo", env=env).code == 0
    for flow in ("TrainFlow", "GuardFlow"):
        arn = ARN.format(sfn_name(flow))
        record = decode_record({t["key"]: t["value"] for t in sfn.list_tags_for_resource(resourceArn=arn)["tags"]})
        assert record is not None
        sfn.untag_resource(resourceArn=arn, tagKeys=["mfproj:principal"])
        assert replace(record, principal=None) != record
    Path(tmp_path / "flows" / "TrainFlow.asl.json").write_text(json.dumps({**PASS, "Comment": "v2"}))
    result = cli("deploy", "--branch", "solo", env=env)
    assert result.code == 0, result.stderr
    assert result.stderr.count("by name only") == 1  # one line, however many deployments


def test_the_owner_on_argo_is_the_user_the_api_server_reports(cli: Cli, tmp_path: Path, kube: Any) -> None:
    two_flow_project(tmp_path, argo=True, sfn=False)
    alice_config, bob_config = tmp_path / "alice-kubeconfig", tmp_path / "bob-kubeconfig"
    alice_config.write_text(kube.kubeconfig(token="user:alice"))
    bob_config.write_text(kube.kubeconfig(token="user:bob"))  # his kubeconfig names its user "tester" too
    alice = {**as_user("alice", tmp_path), "KUBECONFIG": str(alice_config)}
    assert cli("deploy", "--production", env=alice).code == 0
    found = kube.objects[("workflowtemplates", "default", argo_name("TrainFlow", "prod"))]
    assert found["metadata"]["annotations"]["mfproj.io/principal"] == "alice"
    posing = cli("deploy", "--production", env={**as_user("alice", tmp_path / "b"), "KUBECONFIG": str(bob_config)})
    assert posing.code == 3 and "bob" in posing.stderr
    who = cli("whoami", "--check", "-o", "json", env=alice)
    assert "alice" in who.stdout
