"""What each stage costs on AWS's throttled APIs (Step Functions quotas are per account, shared by every
team): the calls by operation, counted by a proxy in front of moto, for a 12-flow project. A regression in
calls fails here. An unchanged redeploy writes nothing and reads no tags resource by resource (one
tagging-API call for all, checked against each definition's digest)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import Cli, as_user
from tests.emulators import AWS_BUCKETS, FaultProxy
from tests.testing.fixtures import Flow, make_project, pass_machine, write_templates

FLOWS = [f"Flow{n:02d}" for n in range(12)]
WRITES = ("CreateStateMachine", "UpdateStateMachine", "DeleteStateMachine", "TagResource", "UntagResource")
WRITES += ("PublishStateMachineVersion", "DeleteStateMachineVersion")


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
    # Nothing listed: the lock first, then one read of each flow under it (the lock: taken and released)
    assert first.get("DescribeStateMachine") == len(FLOWS) + 2, first

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
    assert changed.get("ListTagsForResource", 0) == 0, changed  # under the locks too: the tagging API
    assert changed.get("GetResources") in (2, 4), changed  # once before the locks and once under them
    # The listing shows the change: the lock first, then each flow described once, under it (not twice).
    assert changed.get("DescribeStateMachine") == len(FLOWS) + 2, changed


N = len(FLOWS)
# The calls on AWS's throttled APIs (and STS) of each stage after a deploy and a change of the 12 flows.
OTHER_STAGES: list[tuple[list[str], dict[str, int]]] = [
    (
        ["rollback"],
        {
            "CreateStateMachine": 1,  # the branch's one lock
            "DeleteStateMachine": 1,
            "UpdateStateMachine": N,
            "TagResource": N,
            # each read twice (history, under the lock), the live version and the one before, the lock twice
            "DescribeStateMachine": 2 * N + 2 * N + 2,
            "ListStateMachineVersions": N,
            "GetCallerIdentity": 1,
        },
    ),
    (["deployments"], {"DescribeStateMachine": N}),
    (["namespaces"], {"DescribeStateMachine": N}),
    (
        ["trigger", "Flow00"],
        {"DescribeStateMachine": 1, "ListTagsForResource": 1, "StartExecution": 1, "GetCallerIdentity": 1},
    ),
    (["runs", "-A"], {"DescribeStateMachine": N, "ListExecutions": N, "DescribeExecution": 1}),
    (["history"], {"DescribeStateMachine": N + 3 * N, "ListStateMachineVersions": N, "GetCallerIdentity": 1}),
    (
        ["teardown", "--user", "alice", "--yes"],
        {
            "CreateStateMachine": 1,
            "DeleteStateMachine": N + 1,
            "DescribeStateMachine": 2 * N + 3,  # each read twice (plan, under the lock); the lock thrice
            "ListExecutions": N,  # the running runs of each, said before it goes
            "GetCallerIdentity": 1,
        },
    ),
]


def test_the_calls_of_rollback_listing_trigger_history_and_teardown(
    cli: Cli, tmp_path: Path, aws_proxy: FaultProxy, sfn: Any
) -> None:
    make_project(tmp_path, *_flows("v1"))
    env = as_user("alice", tmp_path, AWS_ENDPOINT_URL=aws_proxy.url)
    assert cli("deploy", env=env).code == 0
    write_templates(tmp_path, *_flows("v2"))
    assert cli("deploy", env=env).code == 0
    for stage, expected in OTHER_STAGES:
        aws_proxy.clear()
        done = cli(*stage, env=env)
        assert done.code == 0, (stage, done.stdout, done.stderr)
        counted = {
            op: n
            for op, n in _calls(aws_proxy).items()
            if op in AWS_BUCKETS or op in ("GetCallerIdentity", "ListStateMachineVersions")
        }
        assert counted == expected, stage


def test_a_change_the_records_say_is_refused_takes_no_lock(cli: Cli, tmp_path: Path, aws_proxy: FaultProxy) -> None:
    """Bob changes Alice's deployments without her token: the listed records already say it is refused, so
    no lock is taken (no write on the 1-a-second buckets) before the full read refuses it (exit 3)."""
    make_project(tmp_path, *_flows("v1"))
    assert cli("deploy", env=as_user("alice", tmp_path, AWS_ENDPOINT_URL=aws_proxy.url)).code == 0
    write_templates(tmp_path, *_flows("v2"))
    aws_proxy.clear()
    bob = as_user("bob", tmp_path, AWS_ENDPOINT_URL=aws_proxy.url, METAFLOW_OWNER="alice")
    refused = cli("deploy", env=bob)
    assert refused.code == 3, refused.stderr
    calls = _calls(aws_proxy)
    assert not any(calls.get(op) for op in WRITES), calls  # not even the lock
    assert calls.get("DescribeStateMachine") == len(FLOWS), calls  # the one full read that refuses it
