"""A flow's deployed names on Argo Workflows, and their rules (stdlib only: `mfproj names` and the
offline checks read them without importing kubernetes). The WorkflowTemplate's name is Metaflow's (v2
rule, in `mfproj.naming`); its CronWorkflow has the same name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mfproj import naming

BACKEND = "argo_workflows"
KINDS = {"workflow_template": "argo workflow template"}  # kind -> column of `names`
SHORT_KINDS = {"workflow_template": "argo template"}  # as `names` says them one per line, at 80 columns
DEPLOYED = "workflow_template"
SCHEDULED: frozenset[str] = frozenset()


def deployed_names(
    project: str, branch: str, flow: str, settings: Any, env: Mapping[str, str] | None
) -> dict[str, str]:
    return {"workflow_template": naming.argo_workflow_template_name(project, branch, flow)}


def problems(names: Mapping[str, str], *, scheduled: bool) -> list[tuple[str, str, str]]:
    template = names["workflow_template"]
    found = [("workflow_template", template, r) for r in naming.kubernetes_name_problems(template)]
    if scheduled:  # the CronWorkflow shares the name, within a shorter limit
        for rule in naming.kubernetes_name_problems(template, max_length=naming.ARGO_CRON_WORKFLOW_MAX):
            if not rule.startswith("must be a DNS"):  # already reported for the template
                found.append(("cron_workflow", template, rule))
    return found


def template_name(names: naming.FlowNames) -> str:
    """The WorkflowTemplate's name, which is its CronWorkflow's too."""
    return names.of(BACKEND)["workflow_template"]
