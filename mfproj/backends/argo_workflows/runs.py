"""Runs of a WorkflowTemplate: Workflows created from it, labelled with one label per run tag so that
`mfproj runs --tag` selects them on the server; run ids are `argo-<workflow name>` (the reference's)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from mfproj.backends.argo_workflows.client import GROUP, VERSION, WORKFLOWS, KubeClient
from mfproj.backends.argo_workflows.labels import LABEL_TEMPLATE, MANAGED_BY, label_value, tag_label_key, tag_labels
from mfproj.backends.argo_workflows.record import ANNOTATION_RUN_TAGS
from mfproj.backends.base import Existing, Run, RunFilter, RunRequest
from mfproj.ordering import newest_first
from mfproj.text import Unreadable, bounded_json, printable

RUN_ID_PREFIX = "argo-"
MAX_TAGS_TEXT = 64 * 1024  # an annotation is at most 256 KiB in all; the run tags get a quarter
_PHASES = {"Pending": "PENDING", "Running": "RUNNING", "Succeeded": "SUCCEEDED", "Failed": "FAILED", "Error": "FAILED"}


class Workflows:
    """A deployment's runs: Workflows submitted from its template, followed, listed and shut down."""

    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube

    def running(self, existing: Existing, *, limit: int = 1000) -> list[str]:
        selector = f"{LABEL_TEMPLATE}={label_value(existing.name)},workflows.argoproj.io/completed!=true"
        found: list[str] = []
        with self.kube.errors(f"counting the running workflows of {existing.name}"):
            for item in self._workflows(selector, page_size=100, max_pages=limit // 100 + 1):
                if (item.get("status") or {}).get("phase") not in ("Succeeded", "Failed", "Error"):
                    found.append(RUN_ID_PREFIX + printable((item.get("metadata") or {}).get("name", ""), limit=253))
                    if len(found) >= limit:
                        break
        return found

    def start(self, existing: Existing, request: RunRequest) -> Run:
        """A Workflow from the template: `--param`s and the keys of `--input-file` as its arguments, the
        run's tags as labels (for selection) and as an annotation (exact)."""
        arguments: dict[str, Any] = {**request.parameters, **request.extra_input}
        template_meta = existing.details["template"].get("metadata") or {}
        labels = {k: v for k, v in (template_meta.get("labels") or {}).items() if k.startswith("mfproj.io/")}
        labels.update({MANAGED_BY: "mfproj", "app.kubernetes.io/name": "metaflow-run"})
        labels.update(tag_labels(request.tags))
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Workflow",
            "metadata": {
                "generateName": f"{existing.name}-",
                "namespace": self.kube.namespace,
                "labels": labels,
                "annotations": {
                    "metaflow/triggered_by_user": json.dumps(
                        {"type": request.triggered_by.get("type", "user"), "name": request.triggered_by.get("name")}
                    ),
                    "metaflow/flow_name": request.flow,
                    "metaflow/project_name": request.project,
                    "metaflow/branch_name": request.branch,
                    ANNOTATION_RUN_TAGS: json.dumps(list(request.tags), ensure_ascii=False),
                },
            },
            "spec": {
                "workflowTemplateRef": {"name": existing.name},
                "arguments": {
                    "parameters": [
                        {"name": key, "value": value if isinstance(value, str) else json.dumps(value)}
                        for key, value in arguments.items()
                    ]
                },
            },
        }
        with self.kube.errors(f"starting {existing.name}"):
            created = self.kube.create(WORKFLOWS, body)
        return Run(
            run_id=RUN_ID_PREFIX + created["metadata"]["name"],
            status="PENDING",
            started_at=_timestamp(created["metadata"].get("creationTimestamp")),
            tags=request.tags,
            parameters=dict(request.parameters),
            deployment=existing.name,
        )

    def list_runs(self, existing: Existing, query: RunFilter) -> Iterator[Run]:
        """Selected on the server by labels (template and one label per wanted tag), page by page; the
        newest `limit` are kept in a bounded heap, since the API lists by name, not by time."""
        selector = ",".join(
            [f"{LABEL_TEMPLATE}={label_value(existing.name)}"] + [tag_label_key(tag) for tag in query.required_tags()]
        )
        with self.kube.errors(f"listing the runs of {existing.name}"):
            matching = (
                run
                for run in (
                    run_of(item, existing.name)
                    for item in self._workflows(selector, page_size=200, max_pages=100_000)  # 20 million at most
                )
                if query.matches(run)
            )
            newest = newest_first(matching, query.limit, lambda run: run.started_at)
        yield from newest

    def _workflows(self, selector: str, *, page_size: int, max_pages: int) -> Iterator[dict[str, Any]]:
        return self.kube.paged(WORKFLOWS, selector, page_size=page_size, max_pages=max_pages)

    def stop_run(self, existing: Existing, run: Run, *, reason: str) -> None:
        """Argo's own stop: `spec.shutdown: Terminate` (its pods are stopped, exit handlers skipped)."""
        name = run.run_id[len(RUN_ID_PREFIX) :]
        body = {"spec": {"shutdown": "Terminate"}, "metadata": {"annotations": {"mfproj.io/terminated": reason}}}
        with self.kube.errors(f"stopping the run {run.run_id}"):
            self.kube.api().patch_namespaced_custom_object(
                GROUP, VERSION, self.kube.namespace, WORKFLOWS, name, body, _request_timeout=self.kube.timeout()
            )

    def get_run(self, existing: Existing, run_id: str) -> Run | None:
        if not run_id.startswith(RUN_ID_PREFIX):
            return None
        with self.kube.errors(f"reading the run {run_id}"):
            workflow = self.kube.get(WORKFLOWS, run_id[len(RUN_ID_PREFIX) :])
        if workflow is None or (workflow.get("spec") or {}).get("workflowTemplateRef", {}).get("name") != existing.name:
            return None
        return run_of(workflow, existing.name)


def _timestamp(text: str | None) -> datetime | None:
    if not text:
        return None
    with contextlib.suppress(ValueError):
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    return None


def run_of(workflow: Mapping[str, Any], deployment: str) -> Run:
    metadata = workflow.get("metadata") or {}
    state = workflow.get("status") or {}
    try:  # written by whoever could label the workflow: decoded with limits, shown as text
        text = str((metadata.get("annotations") or {}).get(ANNOTATION_RUN_TAGS) or "[]")[:MAX_TAGS_TEXT]
        tags = bounded_json(text, where=f"the run tags of {metadata.get('name')}", depth=2)
    except Unreadable:
        tags = []
    status = _PHASES.get(state.get("phase") or "Pending", "RUNNING")
    if status == "FAILED" and (workflow.get("spec") or {}).get("shutdown"):
        status = "ABORTED"  # stopped on purpose (`runs terminate`, teardown): as Step Functions says it
    parameters: dict[str, Any] = {
        str(p.get("name")): p.get("value")
        for p in ((workflow.get("spec") or {}).get("arguments") or {}).get("parameters") or []
        if isinstance(p, dict)
    }
    return Run(
        run_id=f"{RUN_ID_PREFIX}{metadata.get('name')}",
        status=status,
        started_at=_timestamp(state.get("startedAt")) or _timestamp(metadata.get("creationTimestamp")),
        finished_at=_timestamp(state.get("finishedAt")),
        tags=tuple(printable(t, limit=256) for t in tags[:100]) if isinstance(tags, list) else (),
        parameters=parameters,
        deployment=deployment,
        error=state.get("message"),
    )
