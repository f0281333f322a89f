"""What each stage costs on AWS's throttled APIs (Step Functions quotas are per account, shared by every
team): the calls by operation, counted by a proxy in front of moto, for a 12-flow project. A regression in
calls fails here. An unchanged redeploy writes nothing and reads no tags resource by resource (one
tagging-API call for all, checked against each definition's digest)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import Cli, as_user
from tests.emulators import FaultProxy
from tests.testing.fixtures import Flow, make_project, pass_machine, write_templates

FLOWS = [f"Flow{n:02d}" for n in range(12)]
WRITES = ("CreateStateMachine", "UpdateStateMachine", "DeleteStateMachine", "TagResource", "UntagResource")


def _flows(version: str) -> list[Flow]:
    return [Flow(name, step_functions=pass_machine(version)) for name in FLOWS]


def _calls(proxy: FaultProxy) -> dict[str, int]:
    counted: dict[str, int] = {}
    for entry in proxy.log:
        operation = entry.rsplit(".", 1)[-1]
        counted[operation] = counted.get(operation, 0) + 1
    return counted


def test_the_calls_of_a_first_deploy_an_unchanged_redeploy_and_a_change(
    cli: Cli, tmp_path: Path, aws_proxy: FaultProxy, sfn: Any
) -> None:
    make_project(tmp_path, *_flows("v1"))
    env = as_user("alice", tmp_path, AWS_ENDPOINT_URL=aws_proxy.url)
    assert cli("deploy", env=env).code == 0
    first = _calls(aws_proxy)
    assert first.get("CreateStateMachine") == len(FLOWS) + 1  # each flow, and the branch's one lock
    assert first.get("DeleteStateMachine") == 1  # the lock

    aws_proxy.clear()
    assert cli("deploy", env=env).code == 0
    unchanged = _calls(aws_proxy)
    assert not any(unchanged.get(op) for op in WRITES), unchanged  # no write
    assert unchanged.get("ListTagsForResource", 0) == 0, unchanged  # no tag read resource by resource
    assert unchanged.get("GetResources") in (1, 2), unchanged  # one for all twelve (moto pages them by ten)
    assert unchanged.get("DescribeStateMachine") == len(FLOWS)  # on its 20-a-second bucket

    write_templates(tmp_path, *_flows("v2"))
    aws_proxy.clear()
    assert cli("deploy", env=env).code == 0
    changed = _calls(aws_proxy)
    assert changed.get("UpdateStateMachine") == len(FLOWS)
    assert changed.get("CreateStateMachine") == 1 and changed.get("DeleteStateMachine") == 1  # the one lock
    assert changed.get("TagResource") == len(FLOWS)  # the record (a new digest), once each
    assert changed.get("ListTagsForResource") == len(FLOWS)  # under the locks: each read on its own
