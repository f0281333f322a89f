"""Faults on the wire: a proxy between the real clients and the emulators throttles, fails, slows and drops.

Retries are bounded; a deploy that finally fails leaves the previous deployment and the keyring as
they were; every failure ends with exit code 5 and one line that names the endpoint and what to do.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mfproj import naming
from tests.conftest import Cli
from tests.emulators import SERVER_ERROR, THROTTLED, FaultProxy
from tests.testing.fixtures import Flow, make_project, pass_machine, workflow_template, write_templates

ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:myproj.user.alice.HelloFlow"
TEMPLATE = "myproj.user.alice.helloflow"
PREFIX = naming.token_prefix("myproj", "user.alice")


def _hello(version: str) -> Flow:
    return Flow(
        "HelloFlow",
        step_functions=pass_machine(version),
        argo_workflows=workflow_template([{"name": version}]),
        file="hello",
    )


def _write(root: Path, version: str) -> None:
    write_templates(root, _hello(version))


@pytest.fixture
def proj(tmp_path: Path, aws: Any, kube: Any) -> Path:
    return make_project(tmp_path, _hello("v1"))


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "METAFLOW_USER": "alice",
        "METAFLOW_TOKEN_HOME": str(tmp_path / "keyring"),
        "MFPROJ_AWS_MAX_ATTEMPTS": "3",
        "MFPROJ_THROTTLE_BUDGET": "1",  # throttling is paced and retried until the budget: a short one here
        **extra,
    }


def _snapshot(sfn: Any, kube: Any, tmp_path: Path) -> tuple[Any, ...]:
    described = sfn.describe_state_machine(stateMachineArn=ARN)
    tags = sorted((t["key"], t["value"]) for t in sfn.list_tags_for_resource(resourceArn=ARN)["tags"])
    template = json.loads(json.dumps(kube.objects[("workflowtemplates", "default", TEMPLATE)]))
    for volatile in ("resourceVersion", "generation"):  # a rollback is a write of its own
        template["metadata"].pop(volatile)
    keyring = (tmp_path / "keyring" / PREFIX).read_text()
    return (str(described["definition"]), tags, json.dumps(template, sort_keys=True), keyring)


def _assert_one_line_failure(result: Any, endpoint: str) -> None:
    assert result.code == 5, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[0].startswith("error:") and endpoint in lines[0]
    assert sum(1 for line in lines if line.startswith("error:")) == 1
    assert any(line.startswith("hint:") for line in lines)
    assert "Traceback" not in result.stderr


def test_throttling_is_retried_until_the_budget_then_fails_in_one_line(
    cli: Cli, proj: Path, tmp_path: Path, aws_proxy: FaultProxy
) -> None:
    env = _env(tmp_path, AWS_ENDPOINT_URL=aws_proxy.url)
    aws_proxy.fail("AWSStepFunctions.DescribeStateMachine", status=400, body=THROTTLED, times=2)
    result = cli("deploy", "--backend", "step-functions", env=env)
    assert result.code == 0, result.stderr
    assert aws_proxy.count("AWSStepFunctions.DescribeStateMachine") >= 3  # two throttled, then answered

    aws_proxy.clear()
    aws_proxy.fail("AWSStepFunctions.DescribeStateMachine", status=400, body=THROTTLED)
    # 3 s: room for more attempts than the fixed ones even on a loaded machine
    result = cli("deploy", "--backend", "step-functions", env={**env, "MFPROJ_THROTTLE_BUDGET": "3"})
    _assert_one_line_failure(result, aws_proxy.url)
    assert "throttled past the budget (3 s, MFPROJ_THROTTLE_BUDGET)" in result.stderr
    # More than the fixed attempts (paced retries within the budget), and then the deploy stopped: bounded.
    assert 3 < aws_proxy.count("AWSStepFunctions.DescribeStateMachine") < 100, aws_proxy.log


@pytest.mark.parametrize(
    ("action", "fault"),
    [
        ("AWSStepFunctions.UpdateStateMachine", {"status": 400, "body": THROTTLED}),
        ("AWSStepFunctions.TagResource", {"status": 500, "body": SERVER_ERROR}),
        ("AWSStepFunctions.UpdateStateMachine", {"kind": "drop"}),
        ("AWSStepFunctions.TagResource", {"kind": "hang", "delay": 2.0}),
    ],
    ids=["throttled", "server-error", "dropped", "hanging"],
)
def test_a_deploy_that_finally_fails_changes_nothing(
    cli: Cli, proj: Path, tmp_path: Path, sfn: Any, kube: Any, aws_proxy: FaultProxy, action: str, fault: dict[str, Any]
) -> None:
    env = _env(tmp_path, AWS_ENDPOINT_URL=aws_proxy.url, MFPROJ_AWS_READ_TIMEOUT="1")
    assert cli("deploy", env=env).code == 0
    before = _snapshot(sfn, kube, tmp_path)
    _write(proj, "v2")
    aws_proxy.clear()
    aws_proxy.fail(action, **fault)
    result = cli("deploy", "--generate-new-token", env=env)
    _assert_one_line_failure(result, aws_proxy.url)
    assert "nothing was changed" in result.stderr
    assert _snapshot(sfn, kube, tmp_path) == before  # both backends rolled back, keyring untouched
    # Throttles: paced, budgeted. Else 3 attempts, and, for a write that got no answer (the service may have
    # taken it), 3 of putting it back.
    assert aws_proxy.count(action) <= (100 if fault.get("body") == THROTTLED else 6)
    locks = [m["name"] for m in sfn.list_state_machines()["stateMachines"] if m["name"].startswith("mfproj-lock")]
    assert locks == []


def test_slow_answers_within_the_timeout_are_waited_for(
    cli: Cli, proj: Path, tmp_path: Path, aws_proxy: FaultProxy
) -> None:
    aws_proxy.fail("AWSStepFunctions.DescribeStateMachine", kind="slow", delay=0.5)
    env = _env(tmp_path, AWS_ENDPOINT_URL=aws_proxy.url, MFPROJ_AWS_READ_TIMEOUT="5")
    result = cli("deploy", "--backend", "step-functions", env=env)
    assert result.code == 0, result.stderr


def test_unreachable_sts_names_the_endpoint(cli: Cli, proj: Path, tmp_path: Path, aws_proxy: FaultProxy) -> None:
    aws_proxy.fail("GetCallerIdentity", kind="drop")
    result = cli("deploy", "--backend", "step-functions", env=_env(tmp_path, AWS_ENDPOINT_URL=aws_proxy.url))
    _assert_one_line_failure(result, aws_proxy.url)
    assert not (tmp_path / "keyring" / PREFIX).exists()


@pytest.mark.parametrize(
    ("request_line", "fault"),
    [
        (r"PUT /apis/argoproj\.io/v1alpha1/namespaces/default/workflowtemplates/.*", {"status": 500, "body": {}}),
        (r"PUT /apis/argoproj\.io/v1alpha1/namespaces/default/workflowtemplates/.*", {"kind": "drop"}),
        (r"GET /apis/argoproj\.io/v1alpha1/namespaces/default/workflowtemplates/.*", {"status": 503, "body": {}}),
    ],
    ids=["server-error", "dropped", "unavailable"],
)
def test_kubernetes_faults(
    cli: Cli,
    proj: Path,
    tmp_path: Path,
    sfn: Any,
    kube: Any,
    kube_proxy: FaultProxy,
    request_line: str,
    fault: dict[str, Any],
) -> None:
    env = _env(tmp_path)
    assert cli("deploy", env=env).code == 0
    before = _snapshot(sfn, kube, tmp_path)
    _write(proj, "v2")
    kube_proxy.clear()
    kube_proxy.fail(request_line, **fault)
    result = cli("deploy", env=env)
    _assert_one_line_failure(result, kube_proxy.url)
    assert _snapshot(sfn, kube, tmp_path) == before
    assert kube_proxy.count(request_line) <= 4, kube_proxy.log  # reads are retried three times at most, writes never


def test_kubernetes_throttling_then_success(
    cli: Cli, proj: Path, tmp_path: Path, kube: Any, kube_proxy: FaultProxy
) -> None:
    read = r"GET /apis/argoproj\.io/v1alpha1/namespaces/default/workflowtemplates/.*"
    kube_proxy.fail(read, status=429, body={"kind": "Status", "code": 429, "reason": "TooManyRequests"}, times=2)
    result = cli("deploy", "--backend", "argo-workflows", env=_env(tmp_path))
    assert result.code == 0, result.stderr
    assert kube_proxy.count(read) >= 3
    assert ("workflowtemplates", "default", TEMPLATE) in kube.objects
