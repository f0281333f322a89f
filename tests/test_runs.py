"""`mfproj runs`: namespaces, tags (AND), newest first, limits, on both emulators and local Metaflow data."""

from __future__ import annotations

import datetime as _dt
import json
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from mfproj import naming, tokens
from mfproj.backends.argo_workflows.labels import tag_label_key
from mfproj.backends.argo_workflows.record import ANNOTATION_RUN_TAGS
from mfproj.keyring import Keyring
from mfproj.usecases import runs
from tests.conftest import Cli
from tests.conftest import as_user as _as
from tests.testing.fixtures import Flow, make_project

TEMPLATE_ASL = {"StartAt": "a", "States": {"a": {"Type": "Pass", "Result": "${mfproj.namespace}", "End": True}}}
TEMPLATE_ARGO = {"spec": {"entrypoint": "a", "templates": [{"name": "a", "container": {"image": "alpine"}}]}}


@pytest.fixture
def proj(tmp_path: Path, aws: Any, kube: Any) -> Path:
    failing = {"StartAt": "x", "States": {"x": {"Type": "Fail"}}}
    return make_project(
        tmp_path,
        Flow("HelloFlow", step_functions=TEMPLATE_ASL, argo_workflows=TEMPLATE_ARGO, tags=["team:ml"], file="hello"),
        Flow("FailFlow", step_functions=failing, file="fail"),
    )


def _trigger(cli: Any, env: dict[str, str], flow: str, *args: str) -> str:
    result = cli("trigger", flow, "--wait", "-o", "json", *args, env=env)
    assert result.code in (0, 7), result.stderr
    time.sleep(0.01)  # distinct start times, so "newest first" is well defined
    return str(result.json()["run_id"])


def _ids(cli: Any, env: dict[str, str], *args: str) -> list[str]:
    result = cli("runs", "-o", "json", *args, env=env)
    assert result.code == 0, result.stderr
    return [row["run_id"] for row in result.json()]


def test_namespaces_and_tags_on_step_functions(cli: Cli, proj: Path, tmp_path: Path) -> None:
    alice, sfn = _as("alice", tmp_path), ("--backend", "step-functions")
    assert cli("deploy", *sfn, env=alice).code == 0
    assert cli("deploy", *sfn, "--branch", "exp", env=alice).code == 0
    token = Keyring(tmp_path / "keyring-alice").load_token(naming.token_prefix("myproj", "test.exp"))
    bob = _as("bob", tmp_path, MFPROJ_PRODUCTION_TOKEN=token or "")

    a = _trigger(cli, alice, "HelloFlow", *sfn, "--tag", "a")
    ab = _trigger(cli, alice, "HelloFlow", *sfn, "--tag", "a", "--tag", "b")
    b = _trigger(cli, alice, "HelloFlow", *sfn, "--tag", "b")
    failed = _trigger(cli, alice, "FailFlow", *sfn, "--tag", "a")
    exp_a = _trigger(cli, alice, "HelloFlow", *sfn, "--branch", "exp", "--tag", "a")
    exp_bob = _trigger(cli, bob, "HelloFlow", *sfn, "--branch", "exp", "--tag", "c")

    assert _ids(cli, alice, *sfn) == [failed, b, ab, a]
    assert _ids(cli, alice, "HelloFlow", *sfn) == [b, ab, a]
    assert _ids(cli, alice, *sfn, "--tag", "a") == [failed, ab, a]
    assert _ids(cli, alice, *sfn, "--tag", "a", "--tag", "b") == [ab]
    assert _ids(cli, alice, *sfn, "--tag", "nope") == []
    assert _ids(cli, alice, *sfn, "--tag", "team:ml") == [b, ab, a]  # the flow's manifest tags
    assert _ids(cli, alice, *sfn, "--status", "failed") == [failed]
    assert _ids(cli, alice, *sfn, "--limit", "2") == [failed, b]
    assert _ids(cli, alice, *sfn, "--latest", "--tag", "b") == [b]
    assert _ids(cli, alice, *sfn, "--branch", "exp") == [exp_bob, exp_a]
    assert _ids(cli, alice, *sfn, "--branch", "exp", "--namespace", "user:bob") == [exp_bob]
    assert _ids(cli, alice, *sfn, "--branch", "exp", "--namespace", "user:alice", "--tag", "a") == [exp_a]
    assert _ids(cli, alice, *sfn, "--branch", "exp", "--tag", "a", "--tag", "c") == []
    assert _ids(cli, alice, *sfn, "--since", "1h") == [failed, b, ab, a]
    future = (_dt.datetime.now(_dt.timezone.utc) + _dt.timedelta(hours=1)).isoformat()
    assert _ids(cli, alice, *sfn, "--since", future) == []

    # A new token is a new namespace: old runs leave the default namespace but can still be named.
    old = Keyring(tmp_path / "keyring-alice").load_token(naming.token_prefix("myproj", "user.alice"))
    assert cli("deploy", *sfn, "--generate-new-token", env=alice).code == 0
    newer = _trigger(cli, alice, "HelloFlow", *sfn)
    assert _ids(cli, alice, *sfn) == [newer]
    assert _ids(cli, alice, *sfn, "--namespace", f"production:{old}") == [failed, b, ab, a]
    # -A is every branch; --no-production (or --branch, --production) narrows it to one.
    assert _ids(cli, alice, *sfn, "--all-namespaces", "--no-production") == [newer, failed, b, ab, a]

    rows = cli("runs", *sfn, "--tag", "b", "--namespace", f"production:{old}", "-o", "json", env=alice).json()
    assert set(rows[0]) >= {"run_id", "flow", "branch", "backend", "status", "started_at", "finished_at", "tags"}
    assert rows[0]["backend"] == "step_functions" and rows[0]["branch"] == "user.alice"
    assert rows[0]["status"] == "SUCCEEDED"
    assert f"production:{tokens.mask(old)}" in rows[0]["tags"]


def test_runs_show(cli: Cli, proj: Path, tmp_path: Path) -> None:
    alice = _as("alice", tmp_path)
    assert cli("deploy", "--backend", "step-functions", env=alice).code == 0
    run_id = _trigger(cli, alice, "HelloFlow", "--backend", "step-functions", "--tag", "x", "--param", "alpha=1")
    shown = cli("runs", "show", run_id, "-o", "json", env=alice)
    assert shown.code == 0, shown.stderr
    document = shown.json()
    assert document["run_id"] == run_id and document["flow"] == "HelloFlow" and document["status"] == "SUCCEEDED"
    assert document["parameters"] == {"alpha": "1"}
    assert "x" in document["tags"] and "user:alice" in document["tags"]
    table = cli("runs", "show", run_id, env=alice)
    assert "alpha = 1" in table.stdout
    assert cli("runs", "show", "sfn-nope", env=alice).code == 4
    assert cli("runs", "show", "bogus", env=alice).code == 2


def test_argo_runs_are_selected_by_labels_on_the_server(cli: Cli, proj: Path, tmp_path: Path, kube: Any) -> None:
    alice, argo = _as("alice", tmp_path), ("--backend", "argo-workflows")
    assert cli("deploy", *argo, env=alice).code == 0
    started = []
    for tags in (["a"], ["a", "b"], ["b"]):
        result = cli("trigger", "HelloFlow", *argo, *[f"--tag={t}" for t in tags], "-o", "json", env=alice)
        started.append(result.json()["run_id"])
        time.sleep(1.05)  # creation times have one-second resolution
    kube.set_phase("default", started[0][5:], "Succeeded")
    kube.set_phase("default", started[1][5:], "Failed")
    a, ab, b = started
    assert _ids(cli, alice, *argo) == [b, ab, a]
    kube.requests.clear()
    assert _ids(cli, alice, *argo, "--tag", "a") == [ab, a]
    selectors = [
        urllib.parse.parse_qs(query).get("labelSelector", [""])[0]
        for method, path, query in kube.requests
        if method == "GET" and path.endswith("/workflows")
    ]
    assert selectors and tag_label_key("a") in selectors[0]
    assert _ids(cli, alice, *argo, "--tag", "a", "--tag", "b") == [ab]
    assert _ids(cli, alice, *argo, "--status", "succeeded") == [a]
    assert _ids(cli, alice, *argo, "--status", "pending") == [b]
    assert _ids(cli, alice, *argo, "--latest") == [b]
    assert _ids(cli, alice, *argo, "--namespace", "user:bob") == []
    # A second branch: its own deployment, namespace and runs.
    assert cli("deploy", *argo, "--branch", "exp", env=alice).code == 0
    token = Keyring(tmp_path / "keyring-alice").load_token(naming.token_prefix("myproj", "test.exp"))
    bob = _as("bob", tmp_path, MFPROJ_PRODUCTION_TOKEN=token or "")
    exp_a = cli("trigger", "HelloFlow", *argo, "--branch", "exp", "--tag", "a", "-o", "json", env=alice).json()[
        "run_id"
    ]
    time.sleep(1.05)
    exp_bob = cli("trigger", "HelloFlow", *argo, "--branch", "exp", "--tag", "c", "-o", "json", env=bob).json()[
        "run_id"
    ]
    assert _ids(cli, alice, *argo, "--branch", "exp") == [exp_bob, exp_a]
    assert _ids(cli, alice, *argo, "--branch", "exp", "--tag", "a") == [exp_a]
    assert _ids(cli, alice, *argo, "--branch", "exp", "--namespace", "user:bob") == [exp_bob]
    assert _ids(cli, alice, *argo, "--tag", "a") == [ab, a]  # the user branch is unchanged
    # Both backends at once, merged newest first.
    assert cli("deploy", "--backend", "step-functions", env=alice).code == 0
    sfn_run = _trigger(cli, alice, "HelloFlow", "--backend", "step-functions", "--tag", "a")
    assert _ids(cli, alice, "HelloFlow", "--tag", "a") == [sfn_run, ab, a]


def test_reserved_tags_cannot_be_put_on_runs(cli: Cli, proj: Path, tmp_path: Path) -> None:
    alice = _as("alice", tmp_path)
    assert cli("deploy", "--backend", "step-functions", env=alice).code == 0
    for bad in ("production:mfprj-x-0-abcd", "user:bob", "runtime:dev", "project:other"):
        result = cli("trigger", "HelloFlow", "--backend", "step-functions", "--tag", bad, env=alice)
        assert result.code == 2 and "tags are set by the system" in result.stderr
    assert cli("trigger", "HelloFlow", "--backend", "step-functions", "--tag", "", env=alice).code == 2
    assert cli("runs", "--tag", "", env=alice).code == 2
    assert cli("runs", "--since", "yesterday", env=alice).code == 2
    assert cli("runs", "--status", "done", env=alice).code == 2
    assert cli("runs", "--namespace", "bob", env=alice).code == 2


def test_nothing_deployed_is_not_found(cli: Cli, proj: Path, tmp_path: Path) -> None:
    result = cli("runs", "--backend", "step-functions", "--production", env=_as("alice", tmp_path))
    assert result.code == 4 and "nothing is deployed in prod" in result.stderr


# --- local Metaflow metadata ---------------------------------------------------------------------


def _local_run(root: Path, flow: str, run: str, *, ts: int, tags: list[str], system: list[str], success: bool) -> None:
    meta = root / flow / run / "_meta"
    meta.mkdir(parents=True)
    (meta / "_self.json").write_text(
        json.dumps(
            {"run_number": run, "flow_id": flow, "user_name": "x", "tags": tags, "system_tags": system, "ts_epoch": ts}
        )
    )
    if success:
        task = root / flow / run / "end" / "7" / "_meta"
        task.mkdir(parents=True)
        (task / "0_artifact__success.json").write_text("{}")


def test_local_metaflow_runs(cli: Cli, tmp_path: Path) -> None:
    root = tmp_path / "work" / ".metaflow"
    (root / "HelloFlow" / "_meta").mkdir(parents=True)
    (root / "HelloFlow" / "_meta" / "_self.json").write_text('{"flow_id": "HelloFlow", "ts_epoch": 1}')
    system = ["metaflow_version:2.19.39", "runtime:dev", "python_version:3.11.7", "project:myproj"]
    _local_run(
        root,
        "HelloFlow",
        "1001",
        ts=1_795_304_173_000,
        tags=["a b", "mytag"],
        system=[*system, "user:alice", "project_branch:user.alice"],
        success=True,
    )
    _local_run(
        root,
        "HelloFlow",
        "1002",
        ts=1_795_304_174_000,
        tags=["mytag"],
        system=[*system, "user:bob", "project_branch:user.bob"],
        success=False,
    )
    _local_run(
        root,
        "HelloFlow",
        "1003",
        ts=1_795_304_175_000,
        tags=["刺身 means sashimi"],
        system=[*system, "user:alice", "project_branch:user.alice"],
        success=True,
    )
    _local_run(
        root, "OtherFlow", "2001", ts=1_795_304_176_000, tags=["mytag"], system=[*system, "user:alice"], success=True
    )
    env = {"METAFLOW_USER": "alice"}
    local = ["runs", "--metaflow-root", str(tmp_path / "work"), "-o", "json"]

    def ids(*args: str, cwd: Path | None = None) -> list[str]:
        result = cli(*local, *args, env=env, cwd=cwd)
        assert result.code == 0, result.stderr
        return [row["run_id"] for row in result.json()]

    assert ids() == ["2001", "1003", "1001"]  # the default namespace: user:alice
    assert ids("HelloFlow") == ["1003", "1001"]
    assert ids("--tag", "mytag") == ["2001", "1001"]
    assert ids("--tag", "mytag", "--tag", "a b") == ["1001"]
    assert ids("--tag", "刺身 means sashimi") == ["1003"]
    assert ids("--namespace", "user:bob") == ["1002"]
    assert ids("--namespace", "project_branch:user.alice", "HelloFlow") == ["1003", "1001"]
    assert ids("--all-namespaces", "--tag", "mytag") == ["2001", "1002", "1001"]
    assert ids("--all-namespaces", "--status", "unknown") == ["1002"]
    assert ids("--latest", "HelloFlow") == ["1003"]
    rows = cli(*local, "HelloFlow", "--latest", env=env).json()
    assert rows[0]["flow"] == "HelloFlow" and rows[0]["branch"] == "user.alice" and rows[0]["status"] == "SUCCEEDED"
    assert rows[0]["backend"] == "metaflow_local"
    # Found by walking up from the working directory, with no mfproj manifest anywhere.
    deep = tmp_path / "work" / "src" / "pkg"
    deep.mkdir(parents=True)
    result = cli("runs", "--metaflow-local", "-o", "json", env=env, cwd=deep)
    assert result.code == 0, result.stderr
    assert [r["run_id"] for r in result.json()] == ["2001", "1003", "1001"]


def test_parse_since() -> None:
    now = _dt.datetime(2026, 11, 22, tzinfo=_dt.timezone.utc)
    assert runs.parse_since("7d", now=now) == now - _dt.timedelta(days=7)
    assert runs.parse_since("90s", now=now) == now - _dt.timedelta(seconds=90)
    assert runs.parse_since("2026-11-01", now=now) == _dt.datetime(2026, 11, 1, tzinfo=_dt.timezone.utc)
    assert runs.parse_since(None) is None


def test_a_short_run_id_stands_for_one_run_or_is_refused_as_ambiguous(
    cli: Cli, proj: Path, tmp_path: Path, sfn: Any
) -> None:
    alice = _as("alice", tmp_path)
    assert cli("deploy", "--backend", "step-functions", env=alice).code == 0
    arn = "arn:aws:states:us-east-1:123456789012:stateMachine:myproj.user.alice.HelloFlow"
    for name in ("abcdefghijkl" + "a" * 14 + ".x", "abcdefghijkl" + "b" * 14 + ".x", "mnopqrstuvwx" + "c" * 14 + ".x"):
        sfn.start_execution(stateMachineArn=arn, name=name, input="{}")
    one = cli("runs", "show", "sfn-mnopqrstuvwx", "-o", "json", env=alice)
    assert one.code == 0 and one.json()["run_id"] == "sfn-mnopqrstuvwx" + "c" * 14 + ".x", one.stderr
    both = cli("runs", "show", "sfn-abcdefghijkl", env=alice)
    assert both.code == 2 and "stands for 2 runs: give the whole run id" in both.stderr, both.stderr
    assert cli("runs", "show", "sfn-zzzzzzzzzzzz", env=alice).code == 4


def test_an_argo_runs_tags_written_by_someone_else_are_decoded_with_limits(
    cli: Cli, proj: Path, tmp_path: Path, kube: Any
) -> None:
    """The run-tags annotation is anyone's to write: nested past any reason, it is no crash and no tags."""
    alice = _as("alice", tmp_path)
    assert cli("deploy", "--backend", "argo-workflows", env=alice).code == 0
    run_id = cli("trigger", "HelloFlow", "--backend", "argo-workflows", env=alice).stdout.strip()
    workflow = kube.objects[("workflows", "default", run_id[len("argo-") :])]
    annotations = workflow["metadata"]["annotations"]
    annotations[ANNOTATION_RUN_TAGS] = "[" * 50_000 + "]" * 50_000
    shown = cli("runs", "show", run_id, "-o", "json", env=alice)
    assert shown.code == 0, shown.stderr
    assert shown.json()["tags"] == []
