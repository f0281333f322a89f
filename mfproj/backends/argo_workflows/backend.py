"""The Argo Workflows backend: one object per concern, composed, behind the one protocol.

`kube` (the API client, errors, who the caller is) is shared by the parts: `templates` (a flow's
WorkflowTemplate and CronWorkflow), `inventory` (a project's templates) and `workflows` (runs). Its
writes are compare-and-swap (resourceVersion), so it takes no lock.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from mfproj.backends.argo_workflows.client import KubeClient
from mfproj.backends.argo_workflows.deploying import Templates
from mfproj.backends.argo_workflows.inventory import ProjectInventory
from mfproj.backends.argo_workflows.names import template_name
from mfproj.backends.argo_workflows.runs import Workflows
from mfproj.backends.argo_workflows.settings import ArgoWorkflowsSettings
from mfproj.backends.base import Backend, Desired, Existing, Inventory, Run, RunFilter, RunRequest
from mfproj.history import HistoryEntry, HistoryStop
from mfproj.naming import FlowNames
from mfproj.render import Context
from mfproj.transaction import UndoLog


class ArgoWorkflowsBackend(Backend):
    name = "argo_workflows"

    def __init__(
        self, settings: ArgoWorkflowsSettings, *, profile: str | None = None, env: Mapping[str, str] | None = None
    ) -> None:
        self.kube = KubeClient(settings, profile=profile, env=env)
        self.templates = Templates(self.kube)
        self.inventory = ProjectInventory(self.kube, self.templates)
        self.workflows = Workflows(self.kube)

    # who and where

    def endpoint(self) -> str:
        return self.kube.endpoint()

    def principal(self) -> str | None:
        return self.kube.principal()

    def whereabouts(self) -> dict[str, str | None]:
        return self.kube.whereabouts()

    def check(self) -> dict[str, str | None]:
        return self.kube.check()

    # deploying

    def deployed_name(self, names: FlowNames) -> str:
        return template_name(names)

    def render(self, template: Path, context: Context) -> Any:
        return self.templates.render(template, context)

    def read(self, names: FlowNames) -> Existing | None:
        return self.templates.read(names)

    def history(self, existing: Existing, *, enough: HistoryStop | None = None) -> list[HistoryEntry]:
        with self.kube.errors(f"reading the history of {existing.name}"):
            return self.templates.history.entries(existing.name)  # one ConfigMap holds it all: one call

    def changes(self, existing: Existing, desired: Desired) -> list[str]:
        return self.templates.changes(existing, desired)

    def pause_schedule(self, existing: Existing, *, paused: bool) -> bool:
        return self.templates.pause_schedule(existing, paused=paused)

    def apply(self, desired: Desired, existing: Existing | None, log: UndoLog, key: str) -> None:
        self.templates.apply(desired, existing, log, key)

    def fingerprint(self, existing: Existing | None) -> Any:
        return self.templates.fingerprint(existing)

    def delete(self, existing: Existing) -> None:
        self.templates.delete(existing)

    def find_deployments(self, project: str, *, include_metaflow: bool, full: bool = True) -> Inventory:
        return self.inventory.find_deployments(project, include_metaflow=include_metaflow, full=full)

    def document(self, desired: Desired) -> Any:
        return self.templates.document(desired)

    def deployed_document(self, existing: Existing) -> Any:
        return self.templates.deployed_document(existing)

    def desired_document(self, desired: Desired) -> Any:
        return self.templates.desired_document(desired)

    # running

    def start(self, existing: Existing, request: RunRequest) -> Run:
        return self.workflows.start(existing, request)

    def get_run(self, existing: Existing, run_id: str) -> Run | None:
        return self.workflows.get_run(existing, run_id)

    def list_runs(self, existing: Existing, query: RunFilter) -> Iterator[Run]:
        return self.workflows.list_runs(existing, query)

    def running(self, existing: Existing, *, limit: int = 1000) -> list[str]:
        return self.workflows.running(existing, limit=limit)

    def stop_run(self, existing: Existing, run: Run, *, reason: str) -> None:
        self.workflows.stop_run(existing, run, reason=reason)
