"""Backends by name. Each module is imported only when its backend is used (boto3 and kubernetes are heavy)."""

from __future__ import annotations

from collections.abc import Mapping

from mfproj.backends.base import Backend
from mfproj.errors import UsageError
from mfproj.manifest import BACKENDS, Manifest

CLI_NAMES = {"step-functions": "step_functions", "argo-workflows": "argo_workflows"}
LABELS = {"step_functions": "Step Functions", "argo_workflows": "Argo Workflows"}
# Backends this version can deploy to; by default a flow goes to each of these it has a template for.
AVAILABLE = ("step_functions", "argo_workflows")


def normalize(names: list[str] | None) -> list[str] | None:
    """`step-functions` (as typed) to `step_functions` (as in the manifest)."""
    if not names:
        return None
    result = []
    for name in names:
        key = CLI_NAMES.get(name, name)
        if key not in BACKENDS:
            raise UsageError(f"unknown backend {name!r}; choose step-functions or argo-workflows")
        result.append(key)
    return list(dict.fromkeys(result))


def create(
    name: str, manifest: Manifest, *, profile: str | None = None, env: Mapping[str, str] | None = None
) -> Backend:
    if name == "step_functions":
        from mfproj.backends.step_functions import StepFunctionsBackend

        return StepFunctionsBackend(manifest.step_functions, profile=profile, env=env)
    if name == "argo_workflows":
        from mfproj.backends.argo_workflows import ArgoWorkflowsBackend

        return ArgoWorkflowsBackend(manifest.argo_workflows, env=env)
    raise UsageError(f"unknown backend {name!r}")
