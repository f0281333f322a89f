"""The use-cases called directly (no CLI), against both emulators through the real clients: deploy, trigger,
runs and delete, with the callbacks a front end gets (progress, warnings)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from mfproj import manifest, naming
from mfproj.backends.base import RunFilter
from mfproj.errors import AuthorizationError, NotFoundError
from mfproj.keyring import Keyring
from mfproj.usecases import delete, deploy, runs, session, trigger
from tests.conftest import write_manifest


@pytest.fixture
def loaded(tmp_path: Path, aws: Any, kube: Any) -> manifest.Manifest:
    (tmp_path / "a.asl.json").write_text(
        json.dumps({"StartAt": "a", "States": {"a": {"Type": "Pass", "Result": "${mfproj.namespace}", "End": True}}})
    )
    (tmp_path / "a.json").write_text(json.dumps({"spec": {"entrypoint": "a", "templates": [{"name": "a"}]}}))
    path = write_manifest(
        tmp_path,
        """
        [project]
        name = "myproj"
        [[flows]]
        name = "HelloFlow"
        step_functions = "a.asl.json"
        argo_workflows = "a.json"
        [step_functions]
        region = "us-east-1"
        role_arn = "arn:aws:iam::123456789012:role/r"
        """,
        templates=False,
    )
    return manifest.load_manifest(path)


def _session(loaded: manifest.Manifest, tmp_path: Path, user: str, **extra: Any) -> tuple[session.Session, list[str]]:
    env = {**os.environ, "METAFLOW_USER": user, "METAFLOW_TOKEN_HOME": str(tmp_path / f"kr-{user}")}
    env.update(extra.pop("env", {}))
    said: list[str] = []
    progress: list[tuple[str, str, str]] = []
    opened = session.open_session(
        loaded,
        branch=extra.pop("branch", None),
        production=extra.pop("production", None),
        env=env,
        progress=lambda *event: progress.append(event),
        notice=said.append,
    )
    return opened, said


def test_deploy_then_redeploy_unchanged(loaded: manifest.Manifest, tmp_path: Path) -> None:
    alice, _ = _session(loaded, tmp_path, "alice")
    report = deploy.deploy(alice)
    assert [(o.backend, o.action) for o in report.outcomes] == [
        ("step_functions", "create"),
        ("argo_workflows", "create"),
    ]
    token = Keyring(tmp_path / "kr-alice").load_token(naming.token_prefix("myproj", "user.alice"))
    assert token and report.namespace == f"production:{token.rsplit('-', 1)[0]}-****"
    again = deploy.deploy(_session(loaded, tmp_path, "alice")[0])
    assert [o.action for o in again.outcomes] == ["unchanged", "unchanged"]
    # Another user, on alice's user branch, without the token: refused before any write.
    bob, _ = _session(loaded, tmp_path, "bob", env={"METAFLOW_OWNER": "alice"})
    with pytest.raises(AuthorizationError):
        deploy.deploy(bob)


def test_another_branchs_token_in_the_environment_is_a_warning_through_the_callback(
    loaded: manifest.Manifest, tmp_path: Path
) -> None:
    prod, _ = _session(loaded, tmp_path, "ci", production=True)
    deploy.deploy(prod)
    prod_token = Keyring(tmp_path / "kr-ci").load_token(naming.token_prefix("myproj", "prod"))
    assert prod_token
    alice, said = _session(loaded, tmp_path, "alice", env={"MFPROJ_PRODUCTION_TOKEN": prod_token})
    deploy.deploy(alice, dry_run=True)
    assert len(said) == 1 and "myproj prod" in said[0] and prod_token not in said[0]


def test_trigger_runs_and_delete(loaded: manifest.Manifest, tmp_path: Path) -> None:
    alice, _ = _session(loaded, tmp_path, "alice")
    deploy.deploy(alice)
    started = [
        trigger.trigger(alice, flow="HelloFlow", backend_name=backend, tags=[f"try:{i}"], params={"x": str(i)})
        for i, backend in enumerate(["step_functions", "argo_workflows", "step_functions"])
    ]
    assert [s.run.run_id.split("-")[0] for s in started] == ["sfn", "argo", "sfn"]
    query = RunFilter(tags=("try:2",), limit=10)
    found = list(
        runs.deployment_runs(alice, flows=None, backends=None, namespace=None, all_namespaces=False, query=query)
    )
    assert [row.run.run_id for row in found] == [started[2].run.run_id]
    everything = list(
        runs.deployment_runs(
            alice, flows=None, backends=None, namespace=None, all_namespaces=False, query=RunFilter(limit=10)
        )
    )
    assert {row.run.run_id for row in everything} == {s.run.run_id for s in started}
    moments = [row.run.started_at for row in everything]
    assert moments == sorted(moments, reverse=True)  # newest first across both backends
    shown = runs.find_deployment_run(alice, started[1].run.run_id, flows=None, backends=None)
    assert shown.backend == "argo_workflows" and "try:1" in shown.run.tags and shown.run.parameters["x"] == "1"

    plans = delete.plan_delete(alice, flows=["HelloFlow"])
    delete.delete(alice, plans)
    with pytest.raises(NotFoundError):
        delete.plan_delete(alice, flows=["HelloFlow"])
