"""The Kubernetes API emulator answers the real kubernetes client as a real apiserver would."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

G, V, NS = "argoproj.io", "v1alpha1", "default"


@pytest.fixture
def api(kube: Any) -> Any:
    from kubernetes import client, config

    # Explicitly: the client reads KUBECONFIG once, when it is first imported.
    return client.CustomObjectsApi(config.new_client_from_config(config_file=os.environ["KUBECONFIG"]))


def _template(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": f"{G}/{V}",
        "kind": "WorkflowTemplate",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"entrypoint": "a", "templates": []},
    }


def _error(call: Any) -> tuple[int, dict[str, Any]]:
    from kubernetes.client.exceptions import ApiException

    with pytest.raises(ApiException) as caught:
        call()
    return caught.value.status, json.loads(caught.value.body)


def test_create_get_conflict_and_not_found(api: Any) -> None:
    data, code, _ = api.create_namespaced_custom_object_with_http_info(G, V, NS, "workflowtemplates", _template("a.b"))
    assert code == 201
    assert data["metadata"]["uid"] and data["metadata"]["resourceVersion"] and data["metadata"]["namespace"] == NS
    assert api.get_namespaced_custom_object(G, V, NS, "workflowtemplates", "a.b")["spec"]["entrypoint"] == "a"
    code, body = _error(lambda: api.create_namespaced_custom_object(G, V, NS, "workflowtemplates", _template("a.b")))
    assert code == 409
    assert body["kind"] == "Status" and body["status"] == "Failure" and body["reason"] == "AlreadyExists"
    assert body["details"] == {"name": "a.b", "group": G, "kind": "workflowtemplates"} and body["code"] == 409
    code, body = _error(lambda: api.get_namespaced_custom_object(G, V, NS, "workflowtemplates", "nope"))
    assert code == 404 and body["reason"] == "NotFound" and body["message"] == f'workflowtemplates.{G} "nope" not found'


def test_replace_needs_the_current_resource_version(api: Any) -> None:
    created = api.create_namespaced_custom_object(G, V, NS, "workflowtemplates", _template("x"))
    without = _template("x")
    code, body = _error(lambda: api.replace_namespaced_custom_object(G, V, NS, "workflowtemplates", "x", without))
    assert code == 422 and body["reason"] == "Invalid"
    created["spec"]["entrypoint"] = "b"
    replaced = api.replace_namespaced_custom_object(G, V, NS, "workflowtemplates", "x", created)
    assert replaced["metadata"]["resourceVersion"] != created["metadata"]["resourceVersion"]
    assert replaced["metadata"]["generation"] == 2
    code, body = _error(lambda: api.replace_namespaced_custom_object(G, V, NS, "workflowtemplates", "x", created))
    assert code == 409 and body["reason"] == "Conflict" and "the object has been modified" in body["message"]


def test_merge_patch_and_delete(api: Any) -> None:
    api.create_namespaced_custom_object(G, V, NS, "workflowtemplates", _template("p", {"a": "1", "b": "2"}))
    patched = api.patch_namespaced_custom_object(
        G, V, NS, "workflowtemplates", "p", {"metadata": {"labels": {"a": None, "c": "3"}}}
    )
    assert patched["metadata"]["labels"] == {"b": "2", "c": "3"}
    deleted = api.delete_namespaced_custom_object(G, V, NS, "workflowtemplates", "p")
    assert deleted["kind"] == "Status" and deleted["status"] == "Success"
    code, _ = _error(lambda: api.delete_namespaced_custom_object(G, V, NS, "workflowtemplates", "p"))
    assert code == 404


@pytest.mark.parametrize(
    ("name", "labels", "message"),
    [
        ("Bad_Name", {}, "a lowercase RFC 1123 subdomain"),
        ("ok", {"bad key!": "v"}, "name part must consist of"),
        ("ok", {"k": "v" * 64}, "a valid label must be"),
        ("ok", {"k": "-starts-with-dash"}, "a valid label must be"),
    ],
)
def test_invalid_names_and_labels_are_422(api: Any, name: str, labels: dict[str, str], message: str) -> None:
    code, body = _error(
        lambda: api.create_namespaced_custom_object(G, V, NS, "workflowtemplates", _template(name, labels))
    )
    assert code == 422 and body["reason"] == "Invalid" and message in body["message"]
    assert body["details"]["causes"]


def test_list_with_selectors_and_pagination(api: Any) -> None:
    for index in range(7):
        labels = {"team": "ml" if index % 2 else "data", "n": str(index)}
        if index < 3:
            labels["tier"] = "gold"
        api.create_namespaced_custom_object(G, V, NS, "workflowtemplates", _template(f"t{index}", labels))

    def names(selector: str = "", **kwargs: Any) -> list[str]:
        found = api.list_namespaced_custom_object(G, V, NS, "workflowtemplates", label_selector=selector, **kwargs)
        return [item["metadata"]["name"] for item in found["items"]]

    assert names("team=ml") == ["t1", "t3", "t5"]
    assert names("team!=ml") == ["t0", "t2", "t4", "t6"]
    assert names("n in (1,2,9)") == ["t1", "t2"]
    assert names("n notin (0,1,2,3)") == ["t4", "t5", "t6"]
    assert names("tier") == ["t0", "t1", "t2"]
    assert names("!tier,team=data") == ["t4", "t6"]
    pages, token = [], None
    for _ in range(10):
        page = api.list_namespaced_custom_object(G, V, NS, "workflowtemplates", limit=3, _continue=token)
        pages.append([i["metadata"]["name"] for i in page["items"]])
        token = page["metadata"].get("continue")
        if not token:
            break
    assert pages == [["t0", "t1", "t2"], ["t3", "t4", "t5"], ["t6"]]
    from kubernetes.client.exceptions import ApiException

    with pytest.raises(ApiException) as caught:
        names("bad key!=x")
    assert caught.value.status == 400


def test_the_controller_moves_a_workflow_to_the_end_and_a_stopped_one_to_failed() -> None:
    """The dev server's controller (for `make demo` and trying Argo by hand): Pending, Running, Succeeded,
    or Failed once `spec.shutdown` asks; bounded waits."""
    import time

    from tests.k8s_emulator import KubernetesEmulator, WorkflowController

    emulator = KubernetesEmulator()
    controller = WorkflowController(emulator, start=0.1, run=0.3).start()
    try:
        for name in ("done", "stopped"):
            emulator.objects[("workflows", "default", name)] = {
                "metadata": {"name": name, "creationTimestamp": "2026-12-01T00:00:00Z", "resourceVersion": "1"},
                "spec": {"shutdown": "Terminate"} if name == "stopped" else {},
            }
        deadline = time.monotonic() + 10
        phases: dict[str, str | None] = {}
        while time.monotonic() < deadline:
            phases = {
                n: (emulator.objects[("workflows", "default", n)].get("status") or {}).get("phase")
                for n in ("done", "stopped")
            }
            if phases == {"done": "Succeeded", "stopped": "Failed"}:
                break
            time.sleep(0.05)
        assert phases == {"done": "Succeeded", "stopped": "Failed"}
    finally:
        controller.stop()
        emulator.stop()
