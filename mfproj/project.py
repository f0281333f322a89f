"""The names of a project branch: every flow's deployment names, their problems and collisions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from mfproj import naming
from mfproj.backends import registry
from mfproj.identity import Target
from mfproj.manifest import BACKENDS, Flow, Manifest


@dataclass(frozen=True)
class FlowNaming:
    flow: Flow
    names: naming.FlowNames
    problems: tuple[naming.NameProblem, ...]

    @property
    def backends(self) -> tuple[str, ...]:
        # A flow without templates cannot be deployed, but its names are still checked for both.
        return self.flow.backends or BACKENDS


def flow_namings(
    manifest: Manifest, target: Target, flows: list[Flow], *, env: Mapping[str, str] | None = None
) -> list[FlowNaming]:
    """Names of the selected flows; raises NameCollisionError when two flows share a backend name."""
    namings = []
    for listed in flows:
        # The flow as this branch gets it: without its schedule off production with `schedules = "production"`.
        flow = replace(listed, schedule=manifest.schedule_of(listed, is_production=target.is_production))
        names = manifest.flow_names(target.branch, flow.name, env)
        problems = flow_problems(manifest, flow, names, branch=target.branch, backends=flow.backends or BACKENDS)
        namings.append(FlowNaming(flow, names, tuple(problems)))
    check_collisions(manifest, target, env=env)
    return namings


def name_problems(
    names: naming.FlowNames, *, branch: str, backends: Iterable[str], scheduled: bool
) -> list[naming.NameProblem]:
    """Every way the computed names break the rules of the backends they are meant for (each backend's
    `names.problems`)."""
    hint = naming.hint_for(branch)
    return [
        naming.NameProblem(backend, kind, name, rule, hint)
        for backend in backends
        for kind, name, rule in registry.spec(backend).names_module().problems(names.of(backend), scheduled=scheduled)
    ]


def flow_problems(
    manifest: Manifest, flow: Flow, names: naming.FlowNames, *, branch: str, backends: tuple[str, ...] | list[str]
) -> list[naming.NameProblem]:
    """What a backend would refuse, found without a request: names that break its rules, and settings
    that deploying needs (the same list for `names`, `deploy --dry-run` and `deploy`)."""
    problems = name_problems(names, branch=branch, backends=backends, scheduled=flow.schedule is not None)
    for backend in backends:
        if backend not in flow.backends:
            continue  # names are checked for every backend; settings only where the flow will deploy
        for key, rule, hint in manifest.settings_for(backend).problems():
            problems.append(naming.NameProblem(backend, "setting", f"{backend}.{key}", rule, hint))
    return problems


def check_collisions(manifest: Manifest, target: Target, *, env: Mapping[str, str] | None = None) -> None:
    """Checks every flow of the manifest (not only the selected ones): they share the branch's namespace."""
    finder = naming.CollisionFinder()
    for flow in manifest.flows:
        names = manifest.flow_names(target.branch, flow.name, env)
        owner = f"flow {flow.name!r}"
        for backend in flow.backends or BACKENDS:
            for kind, name in _present(backend, names, scheduled=flow.schedule is not None).items():
                finder.add(kind, name, owner)
    finder.raise_if_any()


def _present(backend: str, names: naming.FlowNames, *, scheduled: bool) -> dict[str, str]:
    """The names a flow's deployment has on `backend` (those of its schedule only when it has one)."""
    module = registry.spec(backend).names_module()
    return {kind: name for kind, name in names.of(backend).items() if scheduled or kind not in module.SCHEDULED}


def names_document(
    manifest: Manifest, target: Target, namings: list[FlowNaming], *, metaflow_tokens: list[str] | None = None
) -> dict[str, Any]:
    """The stable JSON of `mfproj names -o json` (documented in the README)."""
    document: dict[str, Any] = {
        "project": manifest.project,
        "user": target.user,
        "branch": target.branch,
        "is_user_branch": target.is_user_branch,
        "is_production": target.is_production,
        "token_prefix": target.token_prefix,
        "token_scheme": manifest.token_scheme,
        "manifest": str(manifest.path),
        "flows": [
            {
                "flow": flow_naming.flow.name,
                "project_flow_name": flow_naming.names.project_flow_name,
                "backends": list(flow_naming.flow.backends),
                "schedule": flow_naming.flow.schedule,
                **{
                    backend: {
                        kind: present.get(kind)
                        for present in [
                            _present(backend, flow_naming.names, scheduled=flow_naming.flow.schedule is not None)
                        ]
                        for kind in flow_naming.names.of(backend)
                    }
                    for backend in registry.NAMES
                },
            }
            for flow_naming in namings
        ],
        "problems": [
            {
                "flow": flow_naming.flow.name,
                "backend": problem.backend,
                "kind": problem.kind,
                "name": problem.name,
                "rule": problem.rule,
                "hint": problem.hint,
            }
            for flow_naming in namings
            for problem in flow_naming.problems
        ],
    }
    if metaflow_tokens is not None:
        document["metaflow_scheme_tokens"] = metaflow_tokens
    return document
