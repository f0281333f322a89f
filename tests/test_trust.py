"""The promises under partial deploys, crashes and a hostile teammate (issue 18): one token per branch
whatever a run deploys, a keyring checked before the first write, share strings kept secret, settings
and template paths checked up front. Against moto's server and the Kubernetes emulator, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mfproj import naming
from mfproj.backends.step_functions.record import decode_record, encode_record
from mfproj.keyring import Keyring
from mfproj.share import Share, encode_share
from tests import names as names_for_tests
from tests.conftest import Cli, as_user, write_manifest
from tests.terminal import drain
from tests.testing.fixtures import ROLE, Flow, make_project

ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:{}"
SOLO = naming.token_prefix("myproj", "test.solo")
PASS = {"StartAt": "a", "States": {"a": {"Type": "Pass", "Result": "${mfproj.namespace}", "End": True}}}
WORKFLOW_TEMPLATE = """\
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata:
  name: replaced
spec:
  entrypoint: start
  templates:
    - name: start
      container:
        image: alpine:3.20
        args: ["${mfproj.namespace}"]
"""


def two_flow_project(root: Path, *, argo: bool = False, sfn: bool = True) -> Path:
    return make_project(
        root,
        *(
            Flow(
                flow,
                step_functions=PASS if sfn else None,
                argo_workflows=WORKFLOW_TEMPLATE if argo else None,
                file=f"flows/{flow}",
            )
            for flow in ("TrainFlow", "GuardFlow")
        ),
    )


def sfn_token(sfn: Any, name: str) -> str | None:
    tags = sfn.list_tags_for_resource(resourceArn=ARN.format(name))["tags"]
    record = decode_record({t["key"]: t["value"] for t in tags})
    return record.production_token if record else None


def argo_token(kube: Any, name: str) -> str | None:
    found = kube.objects.get(("workflowtemplates", "default", name))
    return found["metadata"]["annotations"]["metaflow/production_token"] if found else None


def sfn_name(flow: str, branch: str = "test.solo") -> str:
    return names_for_tests.flow_names("myproj", branch, flow).state_machine


def argo_name(flow: str, branch: str = "test.solo") -> str:
    return names_for_tests.flow_names("myproj", branch, flow).workflow_template


# --- 1. one branch, one token, whatever the run deploys -------------------------------------------


def test_deploying_flows_one_at_a_time_keeps_one_token(cli: Cli, tmp_path: Path, sfn: Any) -> None:
    two_flow_project(tmp_path)
    env = as_user("alice", tmp_path)
    assert cli("deploy", "TrainFlow", "--branch", "solo", env=env).code == 0
    second = cli("deploy", "GuardFlow", "--branch", "solo", "-o", "json", env=env)
    assert second.code == 0, second.stderr
    assert second.json()["deployments"][0]["authorization"] != "first deployment: new production token"
    first, other = sfn_token(sfn, sfn_name("TrainFlow")), sfn_token(sfn, sfn_name("GuardFlow"))
    assert first and first == other
    assert Keyring(tmp_path / "keyring-alice").load_token(SOLO) == first


def test_a_flow_deployed_on_argo_joins_the_token_on_step_functions(
    cli: Cli, tmp_path: Path, sfn: Any, kube: Any
) -> None:
    two_flow_project(tmp_path, argo=True)
    env = as_user("alice", tmp_path)
    assert cli("deploy", "TrainFlow", "--branch", "solo", "--backend", "step-functions", env=env).code == 0
    assert cli("deploy", "GuardFlow", "--branch", "solo", "--backend", "argo-workflows", env=env).code == 0
    assert argo_token(kube, argo_name("GuardFlow")) == sfn_token(sfn, sfn_name("TrainFlow"))


def test_a_teammate_authorized_for_one_flow_deploys_the_other(cli: Cli, tmp_path: Path, sfn: Any) -> None:
    two_flow_project(tmp_path)
    alice, bob = as_user("alice", tmp_path), as_user("bob", tmp_path)
    assert cli("deploy", "TrainFlow", "--branch", "solo", env=alice).code == 0
    assert cli("deploy", "GuardFlow", "--branch", "solo", env=alice).code == 0
    token = Keyring(tmp_path / "keyring-alice").load_token(SOLO)
    assert token
    result = cli("deploy", "--branch", "solo", "--authorize", token, env=bob)
    assert result.code == 0, result.stderr


def _split(sfn: Any, name: str, token: str) -> None:
    """What a kill -9 in the middle of --generate-new-token leaves: one deployment moved, the rest not."""
    arn = ARN.format(name)
    tags = {t["key"]: t["value"] for t in sfn.list_tags_for_resource(resourceArn=arn)["tags"]}
    record = decode_record(tags)
    assert record is not None
    from dataclasses import replace

    moved = encode_record(replace(record, production_token=token, deployed_at="2999-01-01T00:00:00+00:00"))
    sfn.tag_resource(resourceArn=arn, tags=[{"key": k, "value": v} for k, v in moved.items()])


def test_a_split_branch_is_said_and_converges_on_one_token(cli: Cli, tmp_path: Path, sfn: Any) -> None:
    two_flow_project(tmp_path)
    env = as_user("alice", tmp_path)
    assert cli("deploy", "--branch", "solo", env=env).code == 0
    other = f"{SOLO}-1-{'z' * 26}"
    _split(sfn, sfn_name("GuardFlow"), other)
    for command in (["deployments"], ["namespaces"], ["namespaces", "-o", "json"]):
        seen = cli(*command, env=env)
        assert seen.code == 0, seen.stderr
        assert "test.solo holds 2 production tokens" in seen.stderr
        assert "TrainFlow on Step Functions" in seen.stderr and "GuardFlow on Step Functions" in seen.stderr
    marks = {ns["fingerprint"] for ns in cli("namespaces", "-o", "json", env=env).json()}
    assert len(marks) == 2  # the two namespaces are told apart, not listed twice alike
    plan = cli("deploy", "--branch", "solo", "--dry-run", env=env)
    assert "holds more than one production token" in plan.stderr
    assert other not in plan.stderr + plan.stdout
    result = cli("deploy", "--branch", "solo", "-o", "json", env=env)
    assert result.code == 0, result.stderr
    assert "holds more than one production token" in result.stderr
    assert sfn_token(sfn, sfn_name("TrainFlow")) == sfn_token(sfn, sfn_name("GuardFlow"))
    again = cli("deploy", "--branch", "solo", "-o", "json", env=env)
    assert "more than one" not in again.stderr
    assert {d["action"] for d in again.json()["deployments"]} == {"unchanged"}


def test_generate_new_token_for_one_flow_moves_every_flow_of_the_branch(
    cli: Cli, tmp_path: Path, sfn: Any, kube: Any
) -> None:
    two_flow_project(tmp_path, argo=True)
    env = as_user("alice", tmp_path)
    assert cli("deploy", "--branch", "solo", env=env).code == 0
    before = sfn_token(sfn, sfn_name("TrainFlow"))
    result = cli(
        "deploy", "TrainFlow", "--branch", "solo", "--backend", "step-functions", "--generate-new-token", env=env
    )
    assert result.code == 0, result.stderr
    after = {
        sfn_token(sfn, sfn_name("TrainFlow")),
        sfn_token(sfn, sfn_name("GuardFlow")),
        argo_token(kube, argo_name("TrainFlow")),
        argo_token(kube, argo_name("GuardFlow")),
    }
    assert len(after) == 1 and before not in after
    assert Keyring(tmp_path / "keyring-alice").load_token(SOLO) in after


def test_a_split_argo_branch_converges_too(cli: Cli, tmp_path: Path, kube: Any) -> None:
    two_flow_project(tmp_path, argo=True, sfn=False)
    env = as_user("alice", tmp_path)
    assert cli("deploy", "--branch", "solo", env=env).code == 0
    found = kube.objects[("workflowtemplates", "default", argo_name("GuardFlow"))]
    found["metadata"]["annotations"]["metaflow/production_token"] = f"{SOLO}-1-{'y' * 26}"
    found["metadata"]["annotations"]["metaflow/deployment_timestamp"] = "2999-01-01T00:00:00+00:00"
    result = cli("deploy", "TrainFlow", "--branch", "solo", env=env)
    assert result.code == 0, result.stderr
    assert argo_token(kube, argo_name("TrainFlow")) == argo_token(kube, argo_name("GuardFlow"))


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


# --- 13. warnings ------------------------------------------------------------------------------------------


def test_warnings_from_threads_are_whole_lines_and_repeats_are_counted(capsys: pytest.CaptureFixture[str]) -> None:
    import threading

    from mfproj.cli import output

    output.flush_warnings()
    threads = [threading.Thread(target=output.warn, args=(f"cannot reach backend {i % 3}",)) for i in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    output.flush_warnings()
    lines = capsys.readouterr().err.splitlines()
    assert all(line.startswith("warning: cannot reach backend ") for line in lines), lines
    assert sorted(lines[:3]) == [f"warning: cannot reach backend {i}" for i in range(3)]
    assert sorted(lines[3:]) == [f"warning: cannot reach backend {i} (10 times in all)" for i in range(3)]


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


# --- 2. a record that cannot lie ----------------------------------------------------------------------------


def _retemplate(root: Path, flow: str, result: str) -> None:
    document = {"StartAt": "a", "States": {"a": {"Type": "Pass", "Result": result, "End": True}}}
    (root / "flows" / f"{flow}.asl.json").write_text(json.dumps(document))


def test_a_deploy_killed_between_definition_and_record_converges(tmp_path: Path, sfn: Any, aws: Any) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.emulators import FaultProxy

    two_flow_project(tmp_path)
    env = {**os.environ, **as_user("alice", tmp_path)}
    run = [sys.executable, "-m", "mfproj", "deploy", "TrainFlow"]
    assert subprocess.run(run, env=env, cwd=tmp_path, capture_output=True, timeout=60).returncode == 0
    name = sfn_name("TrainFlow", "user.alice")
    _retemplate(tmp_path, "TrainFlow", "v2")
    proxy = FaultProxy(aws.url)
    try:
        proxy.fail("TagResource", kind="hang", delay=30)
        process = subprocess.Popen(
            run,
            env={**env, "AWS_ENDPOINT_URL": proxy.url},
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while proxy.count("TagResource") == 0 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        assert proxy.count("UpdateStateMachine") == 1
        process.send_signal(signal.SIGKILL)  # after the definition was updated, before its tags were
        process.wait(timeout=10)
    finally:
        proxy.stop()
    assert "v2" in json.dumps(sfn.describe_state_machine(stateMachineArn=ARN.format(name))["definition"])
    from tests.conftest import run_in_process

    listing = run_in_process(("deployments", "-o", "json"), env, tmp_path, None)
    train = next(d for d in listing.json() if d["flow"] == "TrainFlow")
    assert train["state"] == "drift" and "record" in train["drift"]
    plan = run_in_process(("deploy", "TrainFlow", "-o", "json", "--dry-run"), env, tmp_path, None)
    assert plan.json()["deployments"][0]["action"] == "update"
    assert plan.json()["deployments"][0]["changes"] == ["record"]
    assert run_in_process(("deploy", "TrainFlow"), env, tmp_path, None).code == 0
    listing = run_in_process(("deployments", "-o", "json"), env, tmp_path, None)
    assert next(d for d in listing.json() if d["flow"] == "TrainFlow")["state"] == "in-sync"


# --- 6. one crafted record ------------------------------------------------------------------------------------


def _bounded_run(args: list[str], cwd: Path, env: dict[str, str]) -> Any:
    """mfproj in a process that may not use more than 1 GiB (a bomb would need many)."""
    import os
    import resource
    import subprocess
    import sys

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    return subprocess.run(
        [sys.executable, "-m", "mfproj", *args],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=limit,
    )


def test_a_bomb_record_is_one_unreadable_row_not_a_crash(cli: Cli, tmp_path: Path, sfn: Any) -> None:
    from mfproj.backends.step_functions import record as sfn_record

    two_flow_project(tmp_path)
    env = as_user("alice", tmp_path)
    assert cli("deploy", env=env).code == 0
    bomb = ARN.format(sfn_name("TrainFlow", "user.alice"))
    sfn.tag_resource(resourceArn=bomb, tags=[{"key": "mfproj:git_branch", "value": "chunks:99999999999"}])
    nested: dict[str, str] = {}
    sfn_record._put(nested, "tags", "[" * 2500)
    other = ARN.format(sfn_name("GuardFlow", "user.alice"))
    sfn.tag_resource(resourceArn=other, tags=[{"key": k, "value": v} for k, v in nested.items()])
    listings = (
        ["deployments"],
        ["deployments", "-o", "json"],
        ["runs", "-A"],
        ["namespaces"],
        ["teardown", "--dry-run", "--user", "alice"],
        ["gc", "--dry-run", "--older-than", "0d"],
    )
    for args in listings:
        done = _bounded_run(args, tmp_path, env)
        assert done.returncode == 0, (args, done.stderr)
        assert "unexpected" not in done.stderr
        assert "cannot be read" in done.stderr and "chunks" in done.stderr
    listing = _bounded_run(["deployments", "-o", "json"], tmp_path, env)
    assert {d["state"] for d in json.loads(listing.stdout)} == {"unreadable"}
    refused = cli("deploy", "TrainFlow", env=env)
    assert refused.code == 6 and "cannot be read" in refused.stderr


# --- 7. backend text is text ------------------------------------------------------------------------------------


def _on_terminal(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    """mfproj with stdout and stderr on one pseudo-terminal; its exit code and the raw bytes shown."""
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import sys
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "mfproj", *args],
        stdout=follower,
        stderr=follower,
        stdin=subprocess.DEVNULL,
        cwd=cwd,
        env={**os.environ, **env, "COLUMNS": "200", "TERM": "xterm"},
    )
    os.close(follower)
    shown = drain(leader, process)
    code = process.wait(timeout=30)
    os.close(leader)
    return code, shown.decode("utf-8", "replace")


HOSTILE = "eve[/bold]\x1b]0;pwned\x07\x1b[2J"


def test_markup_and_escape_codes_from_a_backend_are_printed_as_text(cli: Cli, tmp_path: Path, sfn: Any) -> None:
    from dataclasses import replace

    two_flow_project(tmp_path)
    env = as_user("alice", tmp_path)
    assert cli("deploy", "--branch", "solo", env=env).code == 0
    arn = ARN.format(sfn_name("TrainFlow"))
    tags = {t["key"]: t["value"] for t in sfn.list_tags_for_resource(resourceArn=arn)["tags"]}
    record = decode_record(tags)
    assert record is not None
    hostile = encode_record(replace(record, owner=HOSTILE, tags=("x[/y]",)))
    sfn.tag_resource(resourceArn=arn, tags=[{"key": k, "value": v} for k, v in hostile.items()])
    for args in (
        ["deployments"],
        ["teardown", "--dry-run", "--branch", "solo"],
        ["deploy", "TrainFlow", "--branch", "solo"],
    ):
        code, shown = _on_terminal(args, tmp_path, as_user("mallory", tmp_path) if args[0] == "deploy" else env)
        assert code == (3 if args[0] == "deploy" else 0), shown
        assert "\x1b]0;" not in shown and "\x1b[2J" not in shown, shown
        if args[0] != "teardown":  # its plan names no owner
            assert "\\x1b]0;pwned\\x07\\x1b[2J" in shown, shown
            assert "eve[/bold]" in shown


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


# --- 10. leftover locks have a way out ------------------------------------------------------------------------


def _leave_lock(flow: str, branch: str = "test.solo") -> None:
    """A lock as a deploy killed on another machine leaves it."""
    import os

    from mfproj.backends.step_functions.backend import StepFunctionsBackend
    from mfproj.backends.step_functions.settings import StepFunctionsSettings
    from mfproj.holder import Holder

    backend = StepFunctionsBackend(StepFunctionsSettings(region="us-east-1", role_arn=ROLE), env=os.environ)
    names = names_for_tests.flow_names("myproj", branch, flow)
    backend.acquire(names, holder=Holder("carol", "laptop-9", 4242, "1"), timeout=5, waiting=lambda m: None)


def _lock_count(sfn: Any) -> int:
    return sum(m["name"].startswith("mfproj-lock-") for m in sfn.list_state_machines()["stateMachines"])


def test_unlock_all_lists_and_removes_the_branchs_locks_with_authorization(cli: Cli, tmp_path: Path, sfn: Any) -> None:
    two_flow_project(tmp_path)
    alice = as_user("alice", tmp_path)
    assert cli("deploy", "--branch", "solo", env=alice).code == 0
    assert cli("deploy", "--branch", "other", env=alice).code == 0
    for flow in ("TrainFlow", "GuardFlow"):
        _leave_lock(flow)
    _leave_lock("TrainFlow", "test.other")
    refused = cli("unlock", "--all", "--branch", "solo", env=as_user("bob", tmp_path))
    assert refused.code == 3 and _lock_count(sfn) == 3  # nothing removed without the authorization
    done = cli("unlock", "--all", "--branch", "solo", "-o", "json", env=alice)
    assert done.code == 0, done.stderr
    removed = {(u["name"], u["held_by"].split(",")[0]) for u in done.json()["unlocked"]}
    assert removed == {(sfn_name(f), "carol (pid 4242 on laptop-9)") for f in ("TrainFlow", "GuardFlow")}
    assert _lock_count(sfn) == 1  # test.other's is not this branch's
    assert cli("unlock", "--all", "TrainFlow", env=alice).code == 2


def test_teardown_removes_the_branchs_locks_even_when_nothing_is_deployed(cli: Cli, tmp_path: Path, sfn: Any) -> None:
    two_flow_project(tmp_path)
    alice = as_user("alice", tmp_path)
    assert cli("deploy", "TrainFlow", "--branch", "solo", env=alice).code == 0
    _leave_lock("GuardFlow")  # a flow whose first deploy was killed: locked, never deployed
    assert cli("teardown", "--branch", "solo", "--yes", env=alice).code == 0
    assert _lock_count(sfn) == 0
    _leave_lock("TrainFlow")  # a teardown killed part-way left this one
    again = cli("teardown", "--branch", "solo", "--yes", env=alice)
    assert again.code == 0, again.stderr
    assert "removed the leftover lock on myproj.test.solo.TrainFlow" in again.stderr
    assert _lock_count(sfn) == 0
    assert cli("teardown", "--branch", "solo", "--yes", env=alice).code == 4


# --- 12. garbage from a backend ---------------------------------------------------------------------------------


@pytest.fixture
def captive_portal() -> Any:
    """A server on 127.0.0.1 that answers every request with an HTML page (a proxy's login page)."""
    import http.server
    import threading

    class Portal(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _page(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            page = b"<html><body>Please sign in to the guest network</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        do_GET = do_POST = do_PUT = do_DELETE = _page

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Portal)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_an_html_page_instead_of_aws_is_exit_5_naming_the_endpoint(
    cli: Cli, tmp_path: Path, aws: Any, captive_portal: str
) -> None:
    two_flow_project(tmp_path)
    result = cli("deploy", env={**as_user("alice", tmp_path), "AWS_ENDPOINT_URL": captive_portal})
    assert result.code == 5, result.stderr
    assert captive_portal in result.stderr and "unexpected" not in result.stderr


def test_an_html_page_instead_of_kubernetes_is_exit_5_naming_the_server(
    cli: Cli, tmp_path: Path, kube: Any, captive_portal: str
) -> None:
    from tests.k8s_emulator import kubeconfig_for

    two_flow_project(tmp_path, argo=True, sfn=False)
    (tmp_path / "portal-kubeconfig").write_text(kubeconfig_for(captive_portal))
    env = {**as_user("alice", tmp_path), "KUBECONFIG": str(tmp_path / "portal-kubeconfig")}
    result = cli("deploy", env=env)
    assert result.code == 5, result.stderr
    assert captive_portal in result.stderr and "unexpected" not in result.stderr


@pytest.mark.parametrize("raw", [b'{"stateMachineArn": "arn:aws:states', b"{}", b"<html>oops</html>"])
def test_a_cut_off_or_empty_answer_is_exit_5(cli: Cli, tmp_path: Path, aws: Any, raw: bytes) -> None:
    from tests.emulators import FaultProxy

    two_flow_project(tmp_path)
    env = as_user("alice", tmp_path)
    assert cli("deploy", env=env).code == 0
    proxy = FaultProxy(aws.url)
    try:
        proxy.fail("DescribeStateMachine", status=200, raw=raw)
        result = cli("deploy", env={**env, "AWS_ENDPOINT_URL": proxy.url})
    finally:
        proxy.stop()
    assert result.code == 5, result.stderr
    assert proxy.url in result.stderr and "unexpected" not in result.stderr


# --- 11. interrupts and rollbacks are always said -------------------------------------------------------------


@pytest.mark.parametrize(
    ("phase", "slow", "said"),
    [
        ("reading", "DescribeStateMachine", "interrupted while reading what is deployed: nothing was changed"),
        ("locking", "CreateStateMachine", "interrupted while taking the locks: nothing was changed"),
    ],
)
def test_ctrl_c_in_every_phase_is_said_on_a_terminal(
    cli: Cli, tmp_path: Path, aws: Any, phase: str, slow: str, said: str
) -> None:
    import fcntl
    import os
    import pty
    import signal
    import struct
    import subprocess
    import sys
    import termios
    import time

    from tests.emulators import FaultProxy

    two_flow_project(tmp_path)
    env = {**os.environ, **as_user("alice", tmp_path)}
    env.pop("CI", None)
    if phase == "locking":  # a change, so that locks are taken (their creates are slow)
        assert cli("deploy", env=as_user("alice", tmp_path)).code == 0
        _retemplate(tmp_path, "TrainFlow", "v2")
    proxy = FaultProxy(aws.url)
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    try:
        proxy.fail(slow, kind="slow", delay=2.0)
        process = subprocess.Popen(
            [sys.executable, "-m", "mfproj", "deploy"],
            cwd=tmp_path,
            env={**env, "AWS_ENDPOINT_URL": proxy.url, "TERM": "xterm"},
            stdin=follower,
            stdout=follower,
            stderr=follower,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        os.close(follower)
        deadline = time.monotonic() + 30
        while proxy.count(slow) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        process.send_signal(signal.SIGINT)
        shown = drain(leader, process)
        assert process.wait(timeout=30) == 130
    finally:
        os.close(leader)
        proxy.stop()
    assert said in shown.decode("utf-8", "replace")
    assert not [m for m in sfn_locks(aws) if m.startswith("mfproj-lock-")]


def sfn_locks(aws: Any) -> list[str]:
    import boto3

    client = boto3.client("stepfunctions", endpoint_url=aws.url, region_name="us-east-1")
    return [m["name"] for m in client.list_state_machines()["stateMachines"]]


def test_the_live_view_says_a_rollback_is_under_way_and_how_far() -> None:
    from mfproj.cli.progress import ProgressView
    from mfproj.usecases.apply import PUT_BACK, ROLLING_BACK

    view = ProgressView(enabled=False)
    for index in range(60):
        view.update(f"Flow{index:02d}", "step_functions", "updated" if index < 30 else "failed")
    for index in range(30):
        view.update(f"Flow{index:02d}", "step_functions", ROLLING_BACK)
    assert view.summary().startswith("rolling back after a failure: 0/30 put back or checked")
    for index in range(12):
        view.update(f"Flow{index:02d}", "step_functions", PUT_BACK)
    assert view.summary().startswith("rolling back after a failure: 12/30 put back or checked")
    assert "failed" not in view.summary()


def test_a_failed_deploy_reports_its_rollback_to_the_live_view(
    tmp_path: Path, sfn: Any, aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mfproj import manifest
    from mfproj.errors import MfprojError
    from mfproj.usecases import deploy, session
    from tests.emulators import FaultProxy

    two_flow_project(tmp_path)
    env = as_user("alice", tmp_path)
    opened = session.open_session(manifest.load(tmp_path), branch=None, production=None, env=env)
    deploy.deploy(opened)
    for flow in ("TrainFlow", "GuardFlow"):
        _retemplate(tmp_path, flow, "v2")
    proxy = FaultProxy(aws.url)
    seen: list[tuple[str, str]] = []
    try:
        refused = {"__type": "ValidationException", "message": "injected"}  # not retried
        proxy.fail("TagResource", body=refused, times=1)  # one flow's second write fails: all is undone
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)  # botocore reads the process's environment
        failing = session.open_session(
            manifest.load(tmp_path),
            branch=None,
            production=None,
            env=env,
            progress=lambda flow, backend, state: seen.append((flow, state)),
        )
        with pytest.raises(MfprojError):
            deploy.deploy(failing)
    finally:
        proxy.stop()
    states = [state for _, state in seen]
    assert "rolling back" in states and "put back" in states
    assert states.index("rolling back") < len(states) - 1


def test_a_kill_9_during_generate_new_token_leaves_a_branch_the_next_deploy_converges(
    cli: Cli, tmp_path: Path, sfn: Any, aws: Any
) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.emulators import FaultProxy

    two_flow_project(tmp_path)
    alice = as_user("alice", tmp_path)
    assert cli("deploy", "--branch", "solo", env=alice).code == 0
    before = sfn_token(sfn, sfn_name("TrainFlow"))
    proxy = FaultProxy(aws.url)
    try:
        proxy.fail("TagResource", kind="hang", delay=30, times=1)  # one flow's record never lands
        process = subprocess.Popen(
            [sys.executable, "-m", "mfproj", "deploy", "--branch", "solo", "--generate-new-token"],
            env={**os.environ, **alice, "AWS_ENDPOINT_URL": proxy.url},
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30

        def moved() -> int:  # deployments whose record already holds the new token
            found = {sfn_token(sfn, sfn_name("TrainFlow")), sfn_token(sfn, sfn_name("GuardFlow"))}
            return len(found - {before})

        while not moved() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)  # until one flow's record landed (the other's is held by the proxy)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        proxy.stop()
    split = {sfn_token(sfn, sfn_name("TrainFlow")), sfn_token(sfn, sfn_name("GuardFlow"))}
    assert len(split) == 2 and before in split  # what the kill left: one moved, one not
    result = cli("deploy", "--branch", "solo", env=alice)
    assert result.code == 0, result.stderr
    after = {sfn_token(sfn, sfn_name("TrainFlow")), sfn_token(sfn, sfn_name("GuardFlow"))}
    assert len(after) == 1
    assert Keyring(tmp_path / "keyring-alice").load_token(SOLO) in after
