"""The names of a project branch: every flow's deployment names, their problems and collisions."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from mfproj import naming
from mfproj.identity import Target
from mfproj.manifest import BACKENDS, Flow, Manifest


@dataclass(frozen=True)
class FlowPlan:
    flow: Flow
    names: naming.FlowNames
    problems: tuple[naming.NameProblem, ...]

    @property
    def backends(self) -> tuple[str, ...]:
        # A flow without templates cannot be deployed, but its names are still checked for both.
        return self.flow.backends or BACKENDS


def plan_names(manifest: Manifest, target: Target, flows: list[Flow], *, sfn_prefix: str | None) -> list[FlowPlan]:
    """Names of the selected flows; raises NameCollisionError when two flows share a backend name."""
    plans = []
    for listed in flows:
        # The flow as this branch gets it: without its schedule off production with `schedules = "production"`.
        flow = replace(listed, schedule=manifest.schedule_of(listed, is_production=target.is_production))
        names = naming.flow_names(manifest.project, target.branch, flow.name, state_machine_prefix=sfn_prefix)
        problems = flow_problems(manifest, flow, names, branch=target.branch, backends=flow.backends or BACKENDS)
        plans.append(FlowPlan(flow, names, tuple(problems)))
    check_collisions(manifest, target, sfn_prefix=sfn_prefix)
    return plans


def flow_problems(
    manifest: Manifest, flow: Flow, names: naming.FlowNames, *, branch: str, backends: tuple[str, ...] | list[str]
) -> list[naming.NameProblem]:
    """What a backend would refuse, found without a request: names that break its rules, and settings
    that deploying needs (the same list for `names`, `deploy --dry-run` and `deploy`)."""
    problems = naming.name_problems(names, branch=branch, backends=backends, scheduled=flow.schedule is not None)
    for backend in backends:
        if backend not in flow.backends:
            continue  # names are checked for every backend; settings only where the flow will deploy
        for key, rule, hint in manifest.settings_for(backend).problems():
            problems.append(naming.NameProblem(backend, "setting", f"{backend}.{key}", rule, hint))
    return problems


def check_collisions(manifest: Manifest, target: Target, *, sfn_prefix: str | None) -> None:
    """Checks every flow of the manifest (not only the selected ones): they share the branch's namespace."""
    finder = naming.CollisionFinder()
    for flow in manifest.flows:
        names = naming.flow_names(manifest.project, target.branch, flow.name, state_machine_prefix=sfn_prefix)
        owner = f"flow {flow.name!r}"
        backends = flow.backends or BACKENDS
        if "step_functions" in backends:
            finder.add("state_machine", names.state_machine, owner)
            if flow.schedule:
                finder.add("eventbridge_rule", names.eventbridge_rule, owner)
        if "argo_workflows" in backends:
            finder.add("workflow_template", names.workflow_template, owner)
    finder.raise_if_any()


def names_document(
    manifest: Manifest, target: Target, plans: list[FlowPlan], *, metaflow_tokens: list[str] | None = None
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
                "flow": plan.flow.name,
                "project_flow_name": plan.names.project_flow_name,
                "backends": list(plan.flow.backends),
                "schedule": plan.flow.schedule,
                "step_functions": {
                    "state_machine": plan.names.state_machine,
                    "eventbridge_rule": plan.names.eventbridge_rule if plan.flow.schedule else None,
                },
                "argo_workflows": {"workflow_template": plan.names.workflow_template},
            }
            for plan in plans
        ],
        "problems": [
            {
                "flow": plan.flow.name,
                "backend": problem.backend,
                "kind": problem.kind,
                "name": problem.name,
                "rule": problem.rule,
                "hint": problem.hint,
            }
            for plan in plans
            for problem in plan.problems
        ],
    }
    if metaflow_tokens is not None:
        document["metaflow_scheme_tokens"] = metaflow_tokens
    return document
