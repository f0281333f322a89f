"""Every WorkflowTemplate of a project: mfproj's selected on the server by the project label; the
reference's (no mfproj labels) by their `metaflow/project_name` annotation, in a paged listing of the
namespace's templates, only when asked for."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mfproj.backends.argo_workflows.client import TEMPLATES, KubeClient
from mfproj.backends.argo_workflows.deploying import Templates
from mfproj.backends.argo_workflows.labels import LABEL_PROJECT, MANAGED_BY, label_value
from mfproj.backends.base import Inventory

PAGE = 200
MAX_PAGES = 10_000


class ProjectInventory:
    """Every WorkflowTemplate of a project, by label selector (the reference's by annotation)."""

    def __init__(self, kube: KubeClient, templates: Templates) -> None:
        self.kube, self.templates = kube, templates

    def find_deployments(self, project: str, *, include_metaflow: bool, full: bool = True) -> Inventory:
        with self.kube.errors(f"finding the deployments of {project}"):
            templates = list(self._templates(f"{LABEL_PROJECT}={label_value(project)}"))
            if include_metaflow:
                templates += [
                    t
                    for t in self._templates(f"{MANAGED_BY}!=mfproj")
                    if ((t.get("metadata") or {}).get("annotations") or {}).get("metaflow/project_name") == project
                ]
        deployments = [self.templates.existing_of(t, with_schedule=full) for t in templates]
        return Inventory([e for e in deployments if e.record is not None], looked_for_metaflow=include_metaflow)

    def _templates(self, selector: str) -> Iterator[dict[str, Any]]:
        return self.kube.paged(TEMPLATES, selector, page_size=PAGE, max_pages=MAX_PAGES)
