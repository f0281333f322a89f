"""deploy, delete and trigger on Argo Workflows, against the Kubernetes API emulator, through the real CLI."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from mfproj import naming
from mfproj.backends.argo_workflows.labels import tag_label_key
from mfproj.keyring import Keyring
from tests.conftest import Cli
from tests.conftest import as_user as _as
from tests.testing.fixtures import Flow, make_project, pass_machine

NS = "default"
USER_TEMPLATE = "myproj.user.alice.helloflow"
PROD_TEMPLATE = "myproj.prod.helloflow"
PROD = naming.token_prefix("myproj", "prod")

ARGO_TEMPLATE = """\
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata:
  name: replaced-by-mfproj
  labels:
    team: ml
spec:
  entrypoint: start
  templates:
    - name: start
      container:
        image: alpine:3.20
        command: [echo]
        args: ["${mfproj.project_flow_name} {{workflow.name}} ${mfproj.namespace}", "VERSION"]
"""


def _write_project(root: Path, *, schedule: str | None = None, version: str = "v1", sfn: bool = False) -> None:
    make_project(
        root,
        Flow(
            "HelloFlow",
            step_functions=pass_machine("${mfproj.namespace}") if sfn else None,
            argo_workflows=ARGO_TEMPLATE.replace("VERSION", version),
            schedule=schedule,
            tags=["team:ml"],
            file="flows/hello",
        ),
    )


@pytest.fixture
def proj(tmp_path: Path, kube: Any) -> Path:
    _write_project(tmp_path)
    return tmp_path


def _object(kube: Any, plural: str, name: str) -> dict[str, Any] | None:
    return kube.objects.get((plural, NS, name))


def test_first_deploy_writes_the_reference_annotations_and_labels(
    cli: Cli, proj: Path, kube: Any, tmp_path: Path
) -> None:
    result = cli("deploy", "--production", "--tag", "release:1", "-o", "json", env=_as("alice", tmp_path))
    assert result.code == 0, result.stderr
    [deployment] = result.json()["deployments"]
    assert (deployment["backend"], deployment["name"], deployment["action"]) == (
        "argo_workflows",
        PROD_TEMPLATE,
        "create",
    )
    template = _object(kube, "workflowtemplates", PROD_TEMPLATE)
    assert template is not None
    annotations, labels = template["metadata"]["annotations"], template["metadata"]["labels"]
    token = Keyring(tmp_path / "keyring-alice").load_token(PROD)
    assert token and token.startswith(f"{PROD}-0-")
    assert annotations["metaflow/owner"] == "alice"
    assert annotations["metaflow/production_token"] == token
    assert annotations["metaflow/flow_name"] == "HelloFlow"
    assert annotations["metaflow/project_name"] == "myproj"
    assert annotations["metaflow/branch_name"] == "prod"
    assert annotations["metaflow/project_flow_name"] == "myproj.prod.HelloFlow"
    assert json.loads(annotations["metaflow/tags"]) == ["team:ml", "release:1"]
    assert annotations["metaflow/deployment_timestamp"]
    assert labels["app.kubernetes.io/managed-by"] == "mfproj"
    assert (labels["mfproj.io/project"], labels["mfproj.io/branch"], labels["mfproj.io/flow"]) == (
        "myproj",
        "prod",
        "HelloFlow",
    )
    assert labels["team"] == "ml"  # the template's own labels stay
    # Every Workflow started from the template carries the namespace and the tags.
    run_meta = template["spec"]["workflowMetadata"]
    assert run_meta["annotations"]["metaflow/production_token"] == token
    run_tags = json.loads(run_meta["annotations"]["mfproj.io/run-tags"])
    assert {
        "project:myproj",
        "project_branch:prod",
        f"production:{token}",
        "runtime:argo-workflows",
        "team:ml",
        "release:1",
    } <= set(run_tags)
    assert tag_label_key("release:1") in run_meta["labels"]
    assert token not in json.dumps(run_meta["labels"]), "labels must never carry the token"
    args = template["spec"]["templates"][0]["container"]["args"]
    assert args[0] == f"myproj.prod.HelloFlow {{{{workflow.name}}}} production:{token}"


def test_owner_redeploy_unchanged_then_update(cli: Cli, proj: Path, kube: Any, tmp_path: Path) -> None:
    env = _as("alice", tmp_path)
    assert cli("deploy", env=env).code == 0
    version = _object(kube, "workflowtemplates", USER_TEMPLATE)["metadata"]["resourceVersion"]  # type: ignore[index]
    again = cli("deploy", "-o", "json", env=env).json()
    assert again["deployments"][0]["action"] == "unchanged"
    assert _object(kube, "workflowtemplates", USER_TEMPLATE)["metadata"]["resourceVersion"] == version  # type: ignore[index]
    _write_project(proj, version="v2")
    changed = cli("deploy", "-o", "json", env=env).json()
    assert changed["deployments"][0]["action"] == "update" and changed["deployments"][0]["changes"] == ["definition"]
    assert _object(kube, "workflowtemplates", USER_TEMPLATE)["spec"]["templates"][0]["container"]["args"][1] == "v2"  # type: ignore[index]


def test_refused_without_the_token_and_nothing_changes(cli: Cli, proj: Path, kube: Any, tmp_path: Path) -> None:
    assert cli("deploy", "--production", env=_as("alice", tmp_path)).code == 0
    before = json.dumps(_object(kube, "workflowtemplates", PROD_TEMPLATE), sort_keys=True)
    _write_project(proj, version="v2")
    refused = cli("deploy", "--production", env=_as("bob", tmp_path))
    assert refused.code == 3
    assert "was deployed by alice" in refused.stderr and "mfproj token authorize --production -" in refused.stderr
    assert json.dumps(_object(kube, "workflowtemplates", PROD_TEMPLATE), sort_keys=True) == before
    token = Keyring(tmp_path / "keyring-alice").load_token(PROD)
    allowed = cli("deploy", "--production", env=_as("bob", tmp_path, MFPROJ_PRODUCTION_TOKEN=token or ""))
    assert allowed.code == 0, allowed.stderr
    assert _object(kube, "workflowtemplates", PROD_TEMPLATE)["metadata"]["annotations"]["metaflow/owner"] == "bob"  # type: ignore[index]


def test_generate_new_token(cli: Cli, proj: Path, kube: Any, tmp_path: Path) -> None:
    env = _as("alice", tmp_path)
    assert cli("deploy", "--production", env=env).code == 0
    assert cli("deploy", "--production", "--generate-new-token", env=env).code == 0
    token = _object(kube, "workflowtemplates", PROD_TEMPLATE)["metadata"]["annotations"]["metaflow/production_token"]  # type: ignore[index]
    assert token.startswith(f"{PROD}-1-")
    assert Keyring(tmp_path / "keyring-alice").load_token(PROD) == token


def test_reference_deployed_template_is_guarded(cli: Cli, proj: Path, kube: Any, tmp_path: Path) -> None:
    # As Metaflow deploys it: annotations only, no mfproj labels.
    kube.handle(
        "POST",
        f"/apis/argoproj.io/v1alpha1/namespaces/{NS}/workflowtemplates",
        {},
        {
            "metadata": {
                "name": PROD_TEMPLATE,
                "annotations": {
                    "metaflow/owner": "carol",
                    "metaflow/production_token": "mfprj-wirqh2gc3chugnvb-0-olpw",
                    "metaflow/flow_name": "HelloFlow",
                    "metaflow/project_name": "myproj",
                    "metaflow/branch_name": "prod",
                },
            },
            "spec": {"entrypoint": "start", "templates": []},
        },
        "application/json",
    )
    refused = cli("deploy", "--production", env=_as("bob", tmp_path))
    assert refused.code == 3 and "was deployed by carol" in refused.stderr
    allowed = cli(
        "deploy", "--production", "--authorize", "production:mfprj-wirqh2gc3chugnvb-0-olpw", env=_as("bob", tmp_path)
    )
    assert allowed.code == 0, allowed.stderr


def test_foreign_template_needs_adopt_and_other_projects_collide(
    cli: Cli, proj: Path, kube: Any, tmp_path: Path
) -> None:
    create = f"/apis/argoproj.io/v1alpha1/namespaces/{NS}/workflowtemplates"
    kube.handle(
        "POST", create, {}, {"metadata": {"name": USER_TEMPLATE}, "spec": {"templates": []}}, "application/json"
    )
    refused = cli("deploy", env=_as("alice", tmp_path))
    assert refused.code == 6 and "--adopt" in refused.stderr
    assert cli("deploy", "--adopt", env=_as("alice", tmp_path)).code == 0

    # `my_proj` and `myproj` share every Argo name: the second is refused, naming both.
    kube.reset()
    kube.handle(
        "POST",
        create,
        {},
        {
            "metadata": {
                "name": USER_TEMPLATE,
                "annotations": {
                    "metaflow/owner": "alice",
                    "metaflow/production_token": "t-0-x",
                    "metaflow/flow_name": "HelloFlow",
                    "metaflow/project_name": "my_proj",
                    "metaflow/branch_name": "user.alice",
                },
            },
            "spec": {"templates": []},
        },
        "application/json",
    )
    collision = cli("deploy", env=_as("alice", tmp_path))
    assert collision.code == 6
    assert "belongs to my_proj.user.alice.HelloFlow, not myproj.user.alice.HelloFlow" in collision.stderr


def test_dry_run_changes_nothing(cli: Cli, proj: Path, kube: Any, tmp_path: Path) -> None:
    env = _as("alice", tmp_path)
    plan = cli("deploy", "--dry-run", "-o", "json", env=env)
    assert plan.code == 0 and plan.json()["deployments"][0]["action"] == "create"
    assert kube.objects == {}
    assert cli("deploy", env=env).code == 0
    _write_project(proj, version="v2")
    before = json.dumps(kube.objects[("workflowtemplates", NS, USER_TEMPLATE)], sort_keys=True)
    diff = cli("deploy", "--dry-run", env=env)
    assert re.search(r'^- +"v1"$', diff.stderr, re.M) and re.search(r'^\+ +"v2"$', diff.stderr, re.M)
    assert json.dumps(kube.objects[("workflowtemplates", NS, USER_TEMPLATE)], sort_keys=True) == before


def test_schedule_makes_and_removes_a_cron_workflow(cli: Cli, proj: Path, kube: Any, tmp_path: Path) -> None:
    env = _as("alice", tmp_path)
    _write_project(proj, schedule="0 3 * * *")
    assert cli("deploy", env=env).code == 0
    cron = _object(kube, "cronworkflows", USER_TEMPLATE)
    assert cron is not None
    assert cron["spec"]["schedule"] == "0 3 * * *" and cron["spec"]["timezone"] == "Etc/UTC"
    assert cron["spec"]["workflowSpec"] == {"workflowTemplateRef": {"name": USER_TEMPLATE}}
    assert "mfproj.io/run-tags" in cron["spec"]["workflowMetadata"]["annotations"]
    assert cli("deploy", "-o", "json", env=env).json()["deployments"][0]["action"] == "unchanged"
    _write_project(proj, schedule=None)
    removed = cli("deploy", "-o", "json", env=env).json()
    assert "schedule" in removed["deployments"][0]["changes"]
    assert _object(kube, "cronworkflows", USER_TEMPLATE) is None


def test_concurrent_change_is_a_conflict_not_an_overwrite(cli: Cli, proj: Path, kube: Any, tmp_path: Path) -> None:
    env = _as("alice", tmp_path)
    assert cli("deploy", env=env).code == 0
    _write_project(proj, version="v2")
    original = kube.handle

    def someone_else_writes_first(method: str, path: str, *rest: Any) -> Any:
        if method == "PUT" and path.endswith(f"/workflowtemplates/{USER_TEMPLATE}"):
            with kube._lock:
                current = kube.objects[("workflowtemplates", NS, USER_TEMPLATE)]
                current["metadata"]["annotations"]["edited-by"] = "someone else"
                current["metadata"]["resourceVersion"] = kube._next_revision()
        return original(method, path, *rest)

    kube.handle = someone_else_writes_first
    try:
        result = cli("deploy", env=env)
    finally:
        kube.handle = original
    assert result.code == 6, result.stderr
    assert "someone changed it since mfproj read it" in result.stderr
    stored = kube.objects[("workflowtemplates", NS, USER_TEMPLATE)]
    assert stored["metadata"]["annotations"]["edited-by"] == "someone else"
    assert stored["spec"]["templates"][0]["container"]["args"][1] == "v1"


def test_invalid_template_metadata_is_reported_from_the_server(cli: Cli, proj: Path, kube: Any, tmp_path: Path) -> None:
    (proj / "flows" / "hello.yaml").write_text(ARGO_TEMPLATE.replace("team: ml", "team: 'not valid!'"))
    result = cli("deploy", env=_as("alice", tmp_path))
    assert result.code == 2
    assert "rejected" in result.stderr and "a valid label must be" in result.stderr


def test_delete_and_trigger(cli: Cli, proj: Path, kube: Any, tmp_path: Path) -> None:
    env = _as("alice", tmp_path)
    _write_project(proj, schedule="0 3 * * *")
    assert cli("deploy", env=env).code == 0
    started = cli("trigger", "HelloFlow", "--tag", "run:1", "--param", "alpha=0.5", "-o", "json", env=env)
    assert started.code == 0, started.stderr
    run = started.json()
    assert run["run_id"].startswith(f"argo-{USER_TEMPLATE}-") and run["backend"] == "argo_workflows"
    workflow = _object(kube, "workflows", run["run_id"][5:])
    assert workflow is not None
    assert workflow["spec"]["workflowTemplateRef"] == {"name": USER_TEMPLATE}
    assert {"name": "alpha", "value": "0.5"} in workflow["spec"]["arguments"]["parameters"]
    assert tag_label_key("run:1") in workflow["metadata"]["labels"]
    assert tag_label_key("user:alice") in workflow["metadata"]["labels"]
    assert json.loads(workflow["metadata"]["annotations"]["metaflow/triggered_by_user"]) == {
        "type": "user",
        "name": "alice",
    }

    deleted = cli("delete", "HelloFlow", "--yes", env=env)
    assert deleted.code == 0, deleted.stderr
    assert "1 execution(s) still running" in deleted.stderr
    assert _object(kube, "workflowtemplates", USER_TEMPLATE) is None
    assert _object(kube, "cronworkflows", USER_TEMPLATE) is None


def test_trigger_wait_follows_the_workflow(cli: Cli, proj: Path, kube: Any, tmp_path: Path) -> None:
    env = _as("alice", tmp_path)
    assert cli("deploy", env=env).code == 0

    def controller(phase: str) -> None:
        # What Argo's controller would do: run the workflow, then finish it.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            names = [n for (plural, _, n) in list(kube.objects) if plural == "workflows"]
            if names:
                time.sleep(0.3)
                kube.set_phase(NS, names[0], "Running")
                time.sleep(0.3)
                kube.set_phase(NS, names[0], phase)
                return
            time.sleep(0.05)

    for phase, code in (("Succeeded", 0), ("Failed", 7)):
        kube.objects = {k: v for k, v in kube.objects.items() if k[0] != "workflows"}
        thread = threading.Thread(target=controller, args=(phase,), daemon=True)
        thread.start()
        result = cli("trigger", "HelloFlow", "--wait", "--timeout", "60", "-o", "json", env=env)
        thread.join(timeout=30)
        assert result.code == code, result.stderr
        assert result.json()["status"] == ("SUCCEEDED" if code == 0 else "FAILED")


def test_both_backends_in_one_command_share_one_token(cli: Cli, tmp_path: Path, kube: Any, aws: Any) -> None:
    _write_project(tmp_path, sfn=True)
    result = cli("deploy", "--production", "-o", "json", env=_as("alice", tmp_path))
    assert result.code == 0, result.stderr
    deployments = result.json()["deployments"]
    assert sorted(d["backend"] for d in deployments) == ["argo_workflows", "step_functions"]
    import boto3

    sfn = boto3.client("stepfunctions", endpoint_url=aws.url, region_name="us-east-1")
    arn = "arn:aws:states:us-east-1:123456789012:stateMachine:myproj.prod.HelloFlow"
    sfn_tags = {t["key"]: t["value"] for t in sfn.list_tags_for_resource(resourceArn=arn)["tags"]}
    argo_token = _object(kube, "workflowtemplates", PROD_TEMPLATE)["metadata"]["annotations"][
        "metaflow/production_token"
    ]  # type: ignore[index]
    assert sfn_tags["mfproj:production_token"] == argo_token
    only_argo = cli("deploy", "--production", "--backend", "argo-workflows", "-o", "json", env=_as("alice", tmp_path))
    assert [d["backend"] for d in only_argo.json()["deployments"]] == ["argo_workflows"]


def test_unreachable_api_server_exits_5(cli: Cli, proj: Path, tmp_path: Path) -> None:
    from tests.emulators import free_port
    from tests.k8s_emulator import kubeconfig_for

    url = f"http://127.0.0.1:{free_port()}"
    (tmp_path / "dead-kubeconfig").write_text(kubeconfig_for(url))
    result = cli(
        "deploy",
        env=_as("alice", tmp_path, KUBECONFIG=str(tmp_path / "dead-kubeconfig"), MFPROJ_K8S_CONNECT_TIMEOUT="1"),
    )
    assert result.code == 5
    assert url in result.stderr and "Traceback" not in result.stderr


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_reads_what_mfproj_created(cli: Cli, proj: Path, kube: Any, tmp_path: Path) -> None:
    assert cli("deploy", "--production", env=_as("alice", tmp_path)).code == 0
    env = {**os.environ, "KUBECONFIG": os.environ["KUBECONFIG"]}
    listed = subprocess.run(
        ["kubectl", "get", "workflowtemplates.argoproj.io", "-n", NS, "-o", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    assert [i["metadata"]["name"] for i in json.loads(listed.stdout)["items"]] == [PROD_TEMPLATE]
    selected = subprocess.run(
        [
            "kubectl",
            "get",
            "workflowtemplates.argoproj.io",
            "-n",
            NS,
            "-l",
            "mfproj.io/branch=prod",
            "-o",
            "jsonpath={.items[0].metadata.annotations.metaflow/owner}",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert selected.returncode == 0, selected.stderr
    assert selected.stdout == "alice"
