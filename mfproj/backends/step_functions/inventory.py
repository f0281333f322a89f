"""Every state machine of a project: mfproj's found by their project tag through the Resource Groups
Tagging API (calls grow with the project's deployments, not the account's state machines); the
reference's, which carry no tags, by name prefix in one paged listing, only when asked for."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from mfproj.backends.base import Existing, Inventory
from mfproj.backends.step_functions.client import AwsClient
from mfproj.backends.step_functions.deploying import StateMachines
from mfproj.backends.step_functions.record import TAG_PREFIX, decode_record, reference_flow
from mfproj.naming import attach_state_machine_prefix

READS_AT_ONCE = 8
_BRANCH = re.compile(r"prod|(prod|test|user)\.[!-~]{1,200}")  # as the reference names branches


class ProjectInventory:
    """Every state machine of a project (mfproj's by tag, the reference's by name)."""

    def __init__(self, aws: AwsClient, machines: StateMachines) -> None:
        self.aws, self.machines = aws, machines

    def find_deployments(self, project: str, *, include_metaflow: bool, full: bool = True) -> Inventory:
        tagging = self.aws.client("resourcegroupstaggingapi")
        found: dict[str, dict[str, str]] = {}
        with self.aws.errors(f"finding the deployments of {project}"):
            pages = tagging.get_paginator("get_resources").paginate(
                TagFilters=[{"Key": TAG_PREFIX + "project", "Values": [project]}],
                ResourceTypeFilters=["states:stateMachine"],
            )
            for page in pages:
                for mapping in page.get("ResourceTagMappingList", []):
                    found[mapping["ResourceARN"]] = {t["Key"]: t["Value"] for t in mapping.get("Tags", [])}
        if not full and not include_metaflow:  # the tags hold the record: no describe needed
            light = [self.listed(arn, tags) for arn, tags in found.items()]
            return Inventory([e for e in light if e.record is not None], looked_for_metaflow=False)
        candidates: list[tuple[str, dict[str, str] | None]] = list(found.items())
        if include_metaflow:
            candidates += [(arn, None) for arn in self._reference_candidates(project, set(found))]

        def read(candidate: tuple[str, dict[str, str] | None]) -> Existing | None:
            arn, tags = candidate
            return self.machines.read_arn(arn, arn.rsplit(":", 1)[1], tags)

        with ThreadPoolExecutor(max_workers=READS_AT_ONCE) as pool:
            read_back = list(pool.map(read, candidates))
        start = attach_state_machine_prefix(f"{project}.", self.aws.settings.name_prefix(self.aws.env))
        deployments = [_named(e, project, start) for e in read_back if e is not None and e.record is not None]
        return Inventory(deployments, looked_for_metaflow=include_metaflow)

    def tags_of(self, arns: list[str]) -> tuple[dict[str, dict[str, str]], bool]:
        """The tags of many state machines in one tagging-API call per 100 (instead of one call each on a
        1-a-second bucket), and whether every batch was answered (then an ARN not found is not listed).
        Quiet and partial where the endpoint has no tagging API (LocalStack): each read then asks its
        state machine."""
        import botocore.exceptions as bx

        tagging = self.aws.client("resourcegroupstaggingapi", single_attempt=True)
        found: dict[str, dict[str, str]] = {}
        for start in range(0, len(arns), 100):
            token = ""
            for _ in range(100):  # pages of one batch of 100 ARNs: bounded
                try:
                    page = tagging.get_resources(
                        ResourceARNList=arns[start : start + 100], **({"PaginationToken": token} if token else {})
                    )
                except (bx.ClientError, bx.BotoCoreError):
                    return found, False
                for mapping in page.get("ResourceTagMappingList", []):
                    found[mapping["ResourceARN"]] = {t["Key"]: t["Value"] for t in mapping.get("Tags", [])}
                token = page.get("PaginationToken") or ""
                if not token:
                    break
        return found, True

    def listed(self, arn: str, tags: dict[str, str]) -> Existing:
        """A state machine as the tagging API lists it: its ARN and mfproj's record (no definition)."""
        return Existing(self.aws.name, arn.rsplit(":", 1)[1], arn, None, decode_record(tags), details={"tags": tags})

    def _reference_candidates(self, project: str, known: set[str]) -> list[str]:
        """State machines named like the project's (`<prefix><project>.…`) that carry no mfproj record."""
        sfn = self.aws.client("stepfunctions")
        start = attach_state_machine_prefix(f"{project}.", self.aws.settings.name_prefix(self.aws.env))
        arns: list[str] = []
        with self.aws.errors(f"listing state machines named {start}…"):
            page: Any
            for page in sfn.get_paginator("list_state_machines").paginate(PaginationConfig={"PageSize": 1000}):
                arns += [
                    m["stateMachineArn"]
                    for m in page.get("stateMachines", [])
                    if m["name"].startswith(start) and m["stateMachineArn"] not in known
                ]
        return arns


def _named(existing: Existing, project: str, start: str) -> Existing:
    """A reference-made deployment names its flow in its definition (`metaflow.flow_name`) and nothing
    else: its project and branch are read from its name, `<prefix><project>.<branch>.<flow>`, only when
    the name ends with that flow (a name the reference shortened with a hash says nothing more)."""
    record = existing.record
    if record is None or record.managed_by != "metaflow" or (record.flow and record.branch):
        return existing
    flow = record.flow or reference_flow(existing.definition)
    branch = None
    if flow and existing.name.startswith(start) and existing.name.endswith("." + flow):
        middle = existing.name[len(start) : -len(flow) - 1]
        branch = middle if _BRANCH.fullmatch(middle) else None
    if not flow:
        return existing
    found = replace(
        record, flow=flow, branch=record.branch or branch, project=record.project or (project if branch else None)
    )
    return replace(existing, record=found)
