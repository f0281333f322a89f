"""Every backend, described once. The manifest's keys, the CLI's choices, the labels, the runtime tags,
the run-id forms and `create()` all derive from this table.

Adding a backend: a package under `mfproj/backends/` (its settings, record codec and backend class)
and one `BackendSpec` here. This module is stdlib only: `names` and completion read it without
importing boto3 or kubernetes; a backend's module is imported only when the backend is used.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mfproj.errors import UsageError
from mfproj.naming import FlowNames, project_flow_name

if TYPE_CHECKING:
    from mfproj.backends.base import Backend
    from mfproj.manifest import Manifest


@dataclass(frozen=True)
class BackendSpec:
    name: str  # manifest key and internal id: [[flows]] step_functions = "…", [step_functions]
    cli_name: str  # as typed: --backend step-functions
    label: str  # as shown: Step Functions
    runtime: str  # the run tag runtime:<runtime>, as the reference writes it
    run_id_prefix: str  # run ids are <prefix><name>, as the reference forms them
    settings: str  # "module:Class" of its [<name>] table (stdlib only)
    factory: str  # "module:Class" of its Backend
    names: str  # the module of its deployed names and their rules (stdlib only): KINDS, DEPLOYED, SCHEDULED,
    #             deployed_names(project, branch, flow, settings, env), problems(names, scheduled=)

    def settings_class(self) -> Any:
        return _load(self.settings)

    def names_module(self) -> Any:
        return importlib.import_module(self.names)


SPECS: tuple[BackendSpec, ...] = (
    BackendSpec(
        name="step_functions",
        cli_name="step-functions",
        label="Step Functions",
        runtime="step-functions",
        run_id_prefix="sfn-",
        settings="mfproj.backends.step_functions.settings:StepFunctionsSettings",
        factory="mfproj.backends.step_functions.backend:StepFunctionsBackend",
        names="mfproj.backends.step_functions.names",
    ),
    BackendSpec(
        name="argo_workflows",
        cli_name="argo-workflows",
        label="Argo Workflows",
        runtime="argo-workflows",
        run_id_prefix="argo-",
        settings="mfproj.backends.argo_workflows.settings:ArgoWorkflowsSettings",
        factory="mfproj.backends.argo_workflows.backend:ArgoWorkflowsBackend",
        names="mfproj.backends.argo_workflows.names",
    ),
)

NAMES: tuple[str, ...] = tuple(spec.name for spec in SPECS)
CLI_NAMES: tuple[str, ...] = tuple(spec.cli_name for spec in SPECS)
LABELS: Mapping[str, str] = {spec.name: spec.label for spec in SPECS}
# The statuses every backend maps its runs to (here, not in the use-cases, so that the CLI's --status
# choices cost no import at start-up).
RUN_STATUSES: tuple[str, ...] = ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING", "UNKNOWN")


def _load(path: str) -> Any:
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


def spec(name: str) -> BackendSpec:
    for candidate in SPECS:
        if name in (candidate.name, candidate.cli_name):
            return candidate
    raise UsageError(f"unknown backend {name!r}; choose {' or '.join(CLI_NAMES)}")


def label(name: str) -> str:
    return spec(name).label


# Backend labels as a narrow table shows them: sfn, argo (the run ids' prefixes).
SHORT_LABELS: Mapping[str, str] = {spec.label: spec.run_id_prefix.rstrip("-") for spec in SPECS}


def short_run_id(run_id: str) -> str:
    """A run id in the shorter form its backend accepts back (the id itself where it has none)."""
    found = for_run_id(run_id)
    shorten = getattr(found.names_module(), "short_run_id", None) if found else None
    return str(shorten(run_id)) if shorten else run_id


def for_run_id(run_id: str) -> BackendSpec | None:
    """The backend whose run ids look like `run_id` (sfn-…, argo-…), if any."""
    return next((s for s in SPECS if run_id.startswith(s.run_id_prefix)), None)


def normalize(names: list[str] | None) -> list[str] | None:
    """`step-functions` (as typed) to `step_functions` (as in the manifest), without duplicates."""
    if not names:
        return None
    return list(dict.fromkeys(spec(name).name for name in names))


def flow_names(
    project: str,
    branch: str,
    flow: str,
    settings: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> FlowNames:
    """A flow's names on every backend, each computed by the backend's own `names` module with its
    settings (a backend without settings in `settings`: its defaults)."""
    deployed = {}
    for candidate in SPECS:
        own = (settings or {}).get(candidate.name) or candidate.settings_class()()
        deployed[candidate.name] = candidate.names_module().deployed_names(project, branch, flow, own, env)
    return FlowNames(flow, project_flow_name(project, branch, flow), deployed)


def create(
    name: str, manifest: Manifest | None, *, profile: str | None = None, env: Mapping[str, str] | None = None
) -> Backend:
    """The backend, with the manifest's settings for it (without a manifest: the defaults)."""
    backend_class = _load(spec(name).factory)
    settings = manifest.settings_for(name) if manifest is not None else spec(name).settings_class()()
    backend: Backend = backend_class(settings, profile=profile, env=env)
    return backend
