"""Throttling paced instead of failing (mfproj/pacing.py): a proxy applies AWS's own token buckets in
front of moto, at 10% fill (an account whose other teams spent the rest) on a clock 10x faster than AWS's.
A deploy that meets it paces itself to success and says so; one throttled past its budget rolls back
and says why. The pace itself, unit by unit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mfproj import pacing
from tests.conftest import Cli, as_user
from tests.emulators import AWS_BUCKETS, FaultProxy
from tests.testing.fixtures import Flow, make_project, pass_machine, write_templates

FLOWS = [f"Flow{n:02d}" for n in range(8)]


def _flows(version: str) -> list[Flow]:
    return [Flow(name, step_functions=pass_machine(version)) for name in FLOWS]


def test_a_deploy_that_meets_throttling_paces_itself_to_success(
    cli: Cli, tmp_path: Path, aws_proxy: FaultProxy, sfn: Any
) -> None:
    make_project(tmp_path, *_flows("v1"))
    env = as_user("alice", tmp_path, AWS_ENDPOINT_URL=aws_proxy.url, MFPROJ_AWS_MAX_ATTEMPTS="3")
    buckets = aws_proxy.throttle(AWS_BUCKETS, fill=0.0, speed=3.0)  # drained, a faster clock
    result = cli("deploy", env=env)
    assert result.code == 0, result.stderr
    assert buckets.throttled.get("CreateStateMachine", 0) > 0  # it did meet throttling
    machines = {m["name"] for m in sfn.list_state_machines()["stateMachines"]}
    assert {f"myproj.user.alice.{name}" for name in FLOWS} <= machines
    write_templates(tmp_path, *_flows("v2"))
    changed = cli("deploy", env=env)
    assert changed.code == 0, changed.stderr


def test_a_deploy_throttled_past_its_budget_rolls_back_and_says_so(
    cli: Cli, tmp_path: Path, aws_proxy: FaultProxy, sfn: Any
) -> None:
    make_project(tmp_path, *_flows("v1"))
    env = as_user("alice", tmp_path, AWS_ENDPOINT_URL=aws_proxy.url, MFPROJ_AWS_MAX_ATTEMPTS="3")
    assert cli("deploy", env=env).code == 0
    write_templates(tmp_path, *_flows("v2"))
    # TagResource never refills (another team is spending it all): the change cannot complete.
    aws_proxy.throttle({"TagResource": (200, 0.0)}, fill=0.0, speed=1.0)
    # One attempt past the budget: the rollback's own throttled calls fail at once too, and are said.
    result = cli("deploy", env={**env, "MFPROJ_THROTTLE_BUDGET": "2", "MFPROJ_AWS_MAX_ATTEMPTS": "1"})
    assert result.code == 5, result.stderr
    assert "throttled past the budget (2 s, MFPROJ_THROTTLE_BUDGET)" in result.stderr
    assert "nothing was changed" in result.stderr
    for name in FLOWS:  # every definition put back: v1
        arn = f"arn:aws:states:us-east-1:123456789012:stateMachine:myproj.user.alice.{name}"
        assert '"v1"' in str(sfn.describe_state_machine(stateMachineArn=arn)["definition"]).replace("'", '"')


def test_the_pace_spaces_calls_after_a_throttle_and_eases_after_successes() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    throttling = pacing.Throttling(budget=5, clock=lambda: now[0], sleep=sleep)
    pace = throttling.pace("sfn.CreateStateMachine")
    assert pace.wait() == 0 and pace.wait() == 0  # unpaced until throttled
    delay = throttling.retry_after("sfn.CreateStateMachine")
    assert delay is not None and delay > 0
    pace.wait()
    pace.wait()
    assert slept and slept[-1] > 0  # spaced out now
    for _ in range(100):
        pace.succeeded()
    assert pace.interval == 0.0  # eased back to unpaced
    now[0] += 10
    assert throttling.retry_after("sfn.CreateStateMachine") is None  # past the budget: fail as any error
    assert throttling.said() == "throttled by Step Functions (2), pacing"


def test_the_live_view_says_it_is_throttled_and_pacing() -> None:
    from mfproj.cli.progress import ProgressView

    throttling = pacing.reset()
    view = ProgressView(enabled=False)
    view.update("Flow00", "step_functions", "deploying")
    for _ in range(3):
        throttling.retry_after("sfn.CreateStateMachine")
    assert "throttled by Step Functions (3), pacing" in view.summary()
    pacing.reset()


def test_kubernetes_429_is_waited_out_on_reads_and_compare_and_swap_writes(
    cli: Cli, tmp_path: Path, kube: Any, kube_proxy: FaultProxy
) -> None:
    from tests.testing.fixtures import workflow_template

    make_project(tmp_path, Flow("ArgoFlow", argo_workflows=workflow_template([{"name": "v1"}])))
    env = as_user("alice", tmp_path)
    assert cli("deploy", env=env).code == 0
    make_project(tmp_path, Flow("ArgoFlow", argo_workflows=workflow_template([{"name": "v2"}])))
    busy = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "TooManyRequests", "code": 429}
    path = "/apis/argoproj.io/v1alpha1/namespaces/default/workflowtemplates/myproj.user.alice.argoflow"
    kube_proxy.fail(f"GET {path}", status=429, body=busy, times=2)
    kube_proxy.fail(f"PUT {path}", status=429, body=busy, times=2)
    result = cli("deploy", env=env)
    assert result.code == 0, result.stderr
    assert kube.objects[("workflowtemplates", "default", "myproj.user.alice.argoflow")]["spec"]["templates"] == [
        {"name": "v2"}
    ]
    assert kube_proxy.count(f"PUT {path}") == 3  # twice too many requests, then taken
