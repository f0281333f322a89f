"""Names of a flow as tests ask for them: `registry.flow_names` (each backend's own names module) with
the backends' names as attributes, for asserting on them."""

from __future__ import annotations

from mfproj import project
from mfproj.backends import registry
from mfproj.backends.step_functions.settings import StepFunctionsSettings
from mfproj.naming import FlowNames, NameProblem


class Names(FlowNames):
    @property
    def state_machine(self) -> str:
        return self.of("step_functions")["state_machine"]

    @property
    def eventbridge_rule(self) -> str:
        return self.of("step_functions")["eventbridge_rule"]

    @property
    def workflow_template(self) -> str:
        return self.of("argo_workflows")["workflow_template"]

    cron_workflow = workflow_template


def flow_names(project_name: str, branch: str, flow: str, *, state_machine_prefix: str | None = None) -> Names:
    settings = {"step_functions": StepFunctionsSettings(state_machine_prefix=state_machine_prefix)}
    found = registry.flow_names(project_name, branch, flow, settings, env={})
    return Names(found.flow, found.project_flow_name, found.deployed)


def name_problems(names: FlowNames, *, branch: str, backends: list[str], scheduled: bool) -> list[NameProblem]:
    return project.name_problems(names, branch=branch, backends=backends, scheduled=scheduled)
