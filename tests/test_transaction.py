"""All or nothing, or the exact truth: a deploy whose rollback is cut off reports exactly the deployments
that are not back, in the state the emulator holds them, exits 8, and the keyring follows what is live."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from mfproj import naming
from mfproj.backends.step_functions.record import decode_record
from mfproj.keyring import Keyring
from tests.conftest import Cli, as_user
from tests.emulators import THROTTLED, FaultProxy
from tests.testing.fixtures import Flow, make_project, pass_machine, write_templates

ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:myproj.user.alice.{}"
PREFIX = naming.token_prefix("myproj", "user.alice")
FLOWS = ("AFlow", "BFlow", "CFlow")
REPORTED = re.compile(r"(\w+) on Step Functions \(([^)]+)\): (new definition|old definition|unknown)")


def _flows(version: str) -> list[Flow]:
    nightly = {"CFlow": "0 3 * * *"}
    return [Flow(flow, step_functions=pass_machine(version), schedule=nightly.get(flow)) for flow in FLOWS]


def _write(root: Path, version: str) -> None:
    write_templates(root, *_flows(version))


@pytest.fixture
def proj(tmp_path: Path, aws: Any) -> Path:
    return make_project(tmp_path, *_flows("v1"))


def _state(sfn: Any, flow: str) -> tuple[str, dict[str, str]]:
    described = sfn.describe_state_machine(stateMachineArn=ARN.format(flow))
    definition = described["definition"]
    definition = json.loads(definition) if isinstance(definition, str) else definition
    tags = {t["key"]: t["value"] for t in sfn.list_tags_for_resource(resourceArn=ARN.format(flow))["tags"]}
    return definition["States"]["a"]["Result"], tags


def _run(
    cli: Cli, proj: Path, tmp_path: Path, aws_proxy: FaultProxy, sfn: Any, faults: list[dict[str, Any]]
) -> tuple[Any, Any, Any]:
    env = as_user("alice", tmp_path, MFPROJ_AWS_MAX_ATTEMPTS="1", MFPROJ_THROTTLE_BUDGET="0")
    assert cli("deploy", env=env).code == 0
    before = {flow: _state(sfn, flow) for flow in FLOWS}
    keyring_before = Keyring(tmp_path / "keyring-alice").load_token(PREFIX)
    _write(proj, "v2")
    aws_proxy.fail("AWSEvents.PutTargets", status=400, body=THROTTLED, times=1)  # the change fails here
    for fault in faults:
        aws_proxy.fail(**fault)
    result = cli("deploy", "--generate-new-token", env={**env, "AWS_ENDPOINT_URL": aws_proxy.url})
    return result, before, keyring_before


@pytest.mark.parametrize(
    "faults",
    [
        # The connection is cut under the first update the rollback makes; the rest of it goes through.
        [
            {
                "action": "AWSStepFunctions.UpdateStateMachine",
                "kind": "drop",
                "times": 1,
                "after": "AWSEvents.PutTargets",
            }
        ],
        # Throttled to the end: no definition and no tag can be put back.
        [
            {"action": a, "status": 400, "body": THROTTLED, "after": "AWSEvents.PutTargets"}
            for a in ("AWSStepFunctions.UpdateStateMachine", "AWSStepFunctions.TagResource")
        ],
    ],
    ids=["cut-once", "throttled-to-the-end"],
)
def test_a_rollback_cut_off_reports_exactly_what_is_not_back(
    cli: Cli, proj: Path, tmp_path: Path, aws_proxy: FaultProxy, sfn: Any, faults: list[dict[str, Any]]
) -> None:
    result, before, keyring_before = _run(cli, proj, tmp_path, aws_proxy, sfn, faults)
    assert result.code == 8, result.stderr
    assert "nothing was changed" not in result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error:") and "the rollback could not put everything back" in lines[0]
    assert lines[1].startswith("hint:") and "mfproj deploy" in lines[1]
    reported = {flow: state for flow, _, state in REPORTED.findall(lines[0])}
    assert reported, lines[0]
    after = {flow: _state(sfn, flow) for flow in FLOWS}
    for flow in FLOWS:
        version, tags = after[flow]
        if flow not in reported:
            assert after[flow] == before[flow], flow  # not named: really back as it was
        elif reported[flow] == "new definition":
            assert version == "v2", flow
        elif reported[flow] == "old definition":
            assert version == "v1" and tags != before[flow][1], flow
    # The keyring follows what is live: the new token is stored exactly when a deployment carries it.
    live = {decode_record(after[flow][1]).production_token for flow in FLOWS}  # type: ignore[union-attr]
    stored = Keyring(tmp_path / "keyring-alice").load_token(PREFIX)
    assert stored in live
    if live == {keyring_before}:
        assert stored == keyring_before


def test_a_rollback_that_succeeds_says_nothing_was_changed_only_after_reading_back(
    cli: Cli, proj: Path, tmp_path: Path, aws_proxy: FaultProxy, sfn: Any
) -> None:
    result, before, keyring_before = _run(cli, proj, tmp_path, aws_proxy, sfn, [])
    assert result.code == 5, result.stderr
    assert "nothing was changed" in result.stderr
    assert {flow: _state(sfn, flow) for flow in FLOWS} == before
    assert Keyring(tmp_path / "keyring-alice").load_token(PREFIX) == keyring_before
    # Read back after the rollback: every deployment was described again.
    assert aws_proxy.count("AWSStepFunctions.DescribeStateMachine") >= 2 * len(FLOWS)


def test_a_delete_cut_off_part_way_says_what_is_gone_and_what_is_left(
    cli: Cli, proj: Path, tmp_path: Path, aws_proxy: FaultProxy, sfn: Any
) -> None:
    from tests.emulators import SERVER_ERROR

    env = as_user("alice", tmp_path, MFPROJ_AWS_MAX_ATTEMPTS="1", MFPROJ_THROTTLE_BUDGET="0")
    assert cli("deploy", env=env).code == 0
    # The first deletion goes through; the next ones fail.
    aws_proxy.fail("AWSStepFunctions.DeleteStateMachine", kind="slow", delay=0.0, times=1)
    aws_proxy.fail(
        "AWSStepFunctions.DeleteStateMachine",
        status=500,
        body=SERVER_ERROR,
        after="AWSStepFunctions.DeleteStateMachine",
    )
    result = cli("delete", "AFlow", "BFlow", "--yes", env={**env, "AWS_ENDPOINT_URL": aws_proxy.url})
    assert result.code == 8, result.stderr
    assert "deleted AFlow on Step Functions, but not BFlow on Step Functions" in result.stderr
    assert "mfproj delete BFlow --yes" in result.stderr
    left = {m["name"] for m in sfn.list_state_machines()["stateMachines"] if not m["name"].startswith("mfproj-lock")}
    assert left == {"myproj.user.alice.BFlow", "myproj.user.alice.CFlow"}
    # The service refused to delete the locks too: said, not hidden; and the next run breaks them at once.
    assert "warning: Step Functions at" in result.stderr and "releasing the lock" in result.stderr
    aws_proxy.clear()
    assert cli("delete", "BFlow", "--yes", env=env).code == 0


@pytest.mark.parametrize("action", ["CreateStateMachine", "UpdateStateMachine"])
def test_a_write_whose_answer_is_lost_is_put_back_too(
    cli: Cli, proj: Path, tmp_path: Path, aws_proxy: FaultProxy, sfn: Any, action: str
) -> None:
    """The service took the write, the client never heard: the deploy fails, and what may have landed is
    put back as if it had (never `nothing was changed` over a definition left behind)."""
    env = as_user("alice", tmp_path, MFPROJ_AWS_MAX_ATTEMPTS="1", AWS_ENDPOINT_URL=aws_proxy.url)
    if action == "UpdateStateMachine":
        assert cli("deploy", env=env).code == 0
        _write(proj, "v2")
    target = f"AWSStepFunctions.{action}"
    if action == "CreateStateMachine":  # the lock's create goes through; a flow's is the one lost
        aws_proxy.fail(target, kind="slow", delay=0.0, times=1)
    aws_proxy.fail(target, kind="lost", times=1, after=target if action == "CreateStateMachine" else None)
    result = cli("deploy", env=env)
    assert result.code == 5, result.stderr
    assert "nothing was changed" in result.stderr, result.stderr
    names = {m["name"] for m in sfn.list_state_machines()["stateMachines"]}
    if action == "CreateStateMachine":
        assert not any(name.startswith(("myproj.user.alice.", "mfproj-lock-")) for name in names), names
    else:
        assert {flow: _state(sfn, flow)[0] for flow in FLOWS} == dict.fromkeys(FLOWS, "v1")
