"""The Step Functions backend: one object per concern, composed, behind the one protocol.

`aws` (clients, errors, identity) is shared by the parts: `machines` (a flow's state machine and its
schedule), `inventory` (a project's state machines), `lock` (the write lock; Step Functions has no
compare-and-swap) and `executions` (runs). Finding a deployment costs a constant number of calls: the
state machine's ARN is built from the partition, region and account (one STS call per process) and
described; the reference instead pages through `list_state_machines`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from mfproj.backends.base import Backend, Desired, Existing, Inventory, LeftLock, Run, RunFilter, RunRequest
from mfproj.backends.step_functions.client import AwsClient
from mfproj.backends.step_functions.deploying import StateMachines
from mfproj.backends.step_functions.inventory import ProjectInventory
from mfproj.backends.step_functions.lock import StateMachineLock
from mfproj.backends.step_functions.names import state_machine
from mfproj.backends.step_functions.runs import Executions
from mfproj.backends.step_functions.settings import StepFunctionsSettings
from mfproj.history import HistoryEntry, HistoryStop
from mfproj.holder import Holder
from mfproj.naming import FlowNames
from mfproj.render import Context
from mfproj.transaction import UndoLog


class StepFunctionsBackend(Backend):
    name = "step_functions"
    locks = True

    def __init__(
        self, settings: StepFunctionsSettings, *, profile: str | None = None, env: Mapping[str, str] | None = None
    ) -> None:
        self.aws = AwsClient(settings, profile=profile, env=env)
        self.machines = StateMachines(self.aws)
        self.inventory = ProjectInventory(self.aws, self.machines)
        self.lock = StateMachineLock(self.aws)
        self.executions = Executions(self.aws)

    # who and where

    def endpoint(self) -> str:
        return self.aws.endpoint()

    def principal(self) -> str | None:
        return self.aws.principal()

    def caller_identity(self) -> dict[str, str]:
        return self.aws.caller_identity()

    def whereabouts(self) -> dict[str, str | None]:
        return self.aws.whereabouts()

    def check(self) -> dict[str, str | None]:
        return self.aws.check()

    # deploying

    def deployed_name(self, names: FlowNames) -> str:
        return state_machine(names)

    def gone(self, names: FlowNames) -> Existing:
        name = state_machine(names)
        return Existing(self.aws.name, name, self.aws.state_machine_arn(name), None, None)

    def render(self, template: Path, context: Context) -> Any:
        return self.machines.render(template, context)

    def read(self, names: FlowNames) -> Existing | None:
        return self.machines.read(names)

    def validate(self, desired: Desired) -> list[str]:
        return self.machines.validate(desired)

    def prefetch(self, names: list[FlowNames]) -> None:
        arns = [self.aws.state_machine_arn(state_machine(n)) for n in names]
        tags, complete = self.inventory.tags_of(arns)
        self.machines.prefetched(tags, listed=arns if complete else [])

    def read_listed(self, names: FlowNames) -> tuple[bool, Existing | None]:
        return self.machines.read_listed(names)

    def history(self, existing: Existing, *, enough: HistoryStop | None = None) -> list[HistoryEntry]:
        with self.aws.errors(f"reading the versions of {existing.name}"):
            return self.machines.versions.entries(existing, enough=enough)

    def prune_history(self, names: FlowNames, keep: int) -> int:
        name = state_machine(names)
        with self.aws.errors(f"pruning the versions of {name}"):
            return self.machines.versions.prune(self.aws.state_machine_arn(name), keep)

    def read_named(self, name: str) -> Existing | None:
        return self.machines.read_named(name)

    def changes(self, existing: Existing, desired: Desired) -> list[str]:
        return self.machines.changes(existing, desired)

    def pause_schedule(self, existing: Existing, *, paused: bool) -> bool:
        return self.machines.pause_schedule(existing, paused=paused)

    def apply(self, desired: Desired, existing: Existing | None, log: UndoLog, key: str) -> None:
        self.machines.apply(desired, existing, log, key)

    def fingerprint(self, existing: Existing | None) -> Any:
        return self.machines.fingerprint(existing)

    def delete(self, existing: Existing) -> None:
        self.machines.delete(existing)

    def find_deployments(self, project: str, *, include_metaflow: bool, full: bool = True) -> Inventory:
        return self.inventory.find_deployments(project, include_metaflow=include_metaflow, full=full)

    # locking

    def lock_name(self, state_machine: str) -> str:
        return self.lock.lock_name(state_machine)

    def lock_scope(self, names: FlowNames) -> str:
        return self.lock.scope(names)

    def acquire(self, names: FlowNames, *, holder: Holder, timeout: float, waiting: Callable[[str], None]) -> Any:
        return self.lock.acquire(names, holder=holder, timeout=timeout, waiting=waiting)

    def release(self, handle: Any) -> None:
        self.lock.release(handle)

    def unlock(self, names: FlowNames) -> str | None:
        return self.lock.unlock(names)

    def find_locks(self, project: str, branch: str) -> list[LeftLock]:
        return self.lock.find_locks(project, branch)

    def remove_lock(self, lock: LeftLock) -> None:
        self.lock.remove_lock(lock)

    # running

    def start(self, existing: Existing, request: RunRequest) -> Run:
        return self.executions.start(existing, request)

    def get_run(self, existing: Existing, run_id: str) -> Run | None:
        return self.executions.get_run(existing, run_id)

    def list_runs(self, existing: Existing, query: RunFilter) -> Iterator[Run]:
        return self.executions.list_runs(existing, query)

    def running(self, existing: Existing, *, limit: int = 1000) -> list[str]:
        return self.executions.running(existing, limit=limit)

    def stop_run(self, existing: Existing, run: Run, *, reason: str) -> None:
        self.executions.stop_run(existing, run, reason=reason)
