"""A flow's deployed names on Step Functions, and their rules (stdlib only: `mfproj names` and the
offline checks read them without importing boto3). The name rules themselves are Metaflow's, in
`mfproj.naming`; this module says which of them make up a deployment here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mfproj import naming

BACKEND = "step_functions"
KINDS = {"state_machine": "state machine", "eventbridge_rule": "eventbridge rule"}  # kind -> column of `names`
SHORT_KINDS = {"state_machine": "state machine", "eventbridge_rule": "rule"}  # one per line, at 80 columns
DEPLOYED = "state_machine"  # the kind `deployed_name` returns
SCHEDULED = frozenset({"eventbridge_rule"})  # kinds that exist only with a schedule


SHORT_RUN_ID = 12  # characters of an execution name's random part a narrow table shows (60 bits, as git's short ids)


def short_run_id(run_id: str) -> str:
    """`sfn-<26 random>.<Bloom filter of the tags>` (72 characters) as a narrow table shows it:
    `sfn-<12 random>`, which `runs show` and `runs terminate` take. Others (the reference's) stay whole."""
    head, dot, _ = run_id.removeprefix("sfn-").partition(".")
    return f"sfn-{head[:SHORT_RUN_ID]}" if run_id.startswith("sfn-") and dot and len(head) > SHORT_RUN_ID else run_id


def deployed_names(
    project: str, branch: str, flow: str, settings: Any, env: Mapping[str, str] | None
) -> dict[str, str]:
    machine = naming.state_machine_name(naming.project_flow_name(project, branch, flow), settings.name_prefix(env))
    return {"state_machine": machine, "eventbridge_rule": naming.eventbridge_rule_name(machine)}


def problems(names: Mapping[str, str], *, scheduled: bool) -> list[tuple[str, str, str]]:
    """(kind, name, rule) for every rule a name breaks."""
    found = [
        ("state_machine", names["state_machine"], r) for r in naming.state_machine_problems(names["state_machine"])
    ]
    if scheduled:
        rule_name = names["eventbridge_rule"]
        found += [("eventbridge_rule", rule_name, r) for r in naming.eventbridge_rule_problems(rule_name)]
    return found


def state_machine(names: naming.FlowNames) -> str:
    return names.of(BACKEND)["state_machine"]


def eventbridge_rule(names: naming.FlowNames) -> str:
    return names.of(BACKEND)["eventbridge_rule"]
