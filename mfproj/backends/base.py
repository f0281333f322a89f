"""The protocol every backend implements, and the records that cross it.

A backend turns a rendered deployment into API calls. It never decides *whether* a change is
allowed (deploy.py does, with the authorization rules) and never imports the CLI.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from mfproj.holder import Holder
from mfproj.naming import FlowNames
from mfproj.render import Context
from mfproj.transaction import UndoLog

T = TypeVar("T")


@dataclass(frozen=True)
class DeploymentRecord:
    """What a deployment says about itself: who deployed it, under which token, for what."""

    owner: str | None
    production_token: str | None
    project: str | None = None
    branch: str | None = None
    flow: str | None = None
    project_flow_name: str | None = None
    deployed_at: str | None = None
    mfproj_version: str | None = None
    principal: str | None = None
    tags: tuple[str, ...] = ()
    managed_by: str = "mfproj"  # "metaflow" for deployments made by the reference

    def identity(self) -> tuple[str, str, str] | None:
        if self.project and self.branch and self.flow:
            return (self.project, self.branch, self.flow)
        return None

    def comparable(self) -> DeploymentRecord:
        """Without the fields that change on every deploy, to tell "unchanged" from "update"."""
        return replace(self, deployed_at=None, principal=None, mfproj_version=None)


@dataclass(frozen=True)
class Existing:
    """A deployment as read from the backend."""

    backend: str
    name: str
    identifier: str  # ARN on Step Functions, object name on Argo
    definition: Any
    record: DeploymentRecord | None  # None: the object carries no owner or token (not ours)
    schedule: str | None = None  # backend form, as deployed
    details: dict[str, Any] = field(default_factory=dict)  # backend-specific, for updates and rollback


@dataclass(frozen=True)
class Desired:
    """A deployment as it should be after this run."""

    flow: str
    names: FlowNames
    definition: Any
    record: DeploymentRecord
    schedule: str | None  # 5-field cron, or None
    run_metadata: dict[str, Any]  # what scheduled runs carry in their input


@dataclass(frozen=True)
class Run:
    run_id: str  # the reference's form: sfn-<execution name>, argo-<workflow name>
    status: str  # RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED, PENDING
    identifier: str
    started_at: str | None = None
    finished_at: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.status not in ("RUNNING", "PENDING")


@dataclass(frozen=True)
class RunFilter:
    """What `mfproj runs` asks for. `namespace` None is the global namespace."""

    namespace: str | None = None
    tags: tuple[str, ...] = ()
    statuses: frozenset[str] | None = None
    since: datetime | None = None
    limit: int = 20

    def required_tags(self) -> tuple[str, ...]:
        return (self.namespace, *self.tags) if self.namespace else self.tags

    def matches(self, run: RunDetails) -> bool:
        """The reference's rule: a run is in namespace N when N is among its tags; tags combine with AND."""
        present = set(run.tags)
        if not all(tag in present for tag in self.required_tags()):
            return False
        if self.statuses and run.status not in self.statuses:
            return False
        return not (self.since and run.started_at and run.started_at < self.since)


@dataclass(frozen=True)
class RunDetails:
    run_id: str
    status: str
    started_at: datetime | None
    finished_at: datetime | None
    tags: tuple[str, ...]
    parameters: dict[str, Any] = field(default_factory=dict)
    deployment: str = ""


def newest_first(runs: Iterable[T], limit: int, started: Callable[[T], datetime | None]) -> list[T]:
    """The newest `limit` of `runs`, newest first, keeping at most `limit` in memory (a bounded heap)."""
    import heapq

    kept: list[tuple[float, int, T]] = []
    for order, run in enumerate(runs):
        moment = started(run)
        entry = (moment.timestamp() if moment else 0.0, -order, run)
        if len(kept) < limit:
            heapq.heappush(kept, entry)
        elif entry[:2] > kept[0][:2]:
            heapq.heapreplace(kept, entry)
    return [run for _, _, run in sorted(kept, key=lambda e: e[:2], reverse=True)]


class Backend(abc.ABC):
    """One workflow service. Implementations: step_functions.py, argo_workflows.py."""

    name: str  # "step_functions"
    label: str  # "Step Functions"
    runtime: str  # the run tag: runtime:<runtime>

    @abc.abstractmethod
    def endpoint(self) -> str:
        """Where requests go, for error messages."""

    @abc.abstractmethod
    def deployed_name(self, names: FlowNames) -> str: ...

    @abc.abstractmethod
    def render(self, template: Path, context: Context) -> Any:
        """The backend's document for one flow, placeholders filled in."""

    def acquire(self, names: FlowNames, *, holder: Holder, timeout: float, waiting: Callable[[str], None]) -> Any:
        """Takes the deployment's write lock, waiting up to `timeout` seconds for another holder (and
        saying so through `waiting`), or raises ConflictError naming who holds it.

        Returns a handle for `release`. The default takes nothing: a backend whose writes are
        compare-and-swap (Argo's resourceVersion) needs no lock.
        """
        return None

    def release(self, handle: Any) -> None:  # noqa: B027 - deliberately a no-op by default
        """Gives back a lock taken by `acquire`; never one that someone else holds."""

    def unlock(self, names: FlowNames) -> str | None:
        """Removes the deployment's lock whoever holds it; returns who held it, None if there was none."""
        return None

    def document(self, desired: Desired) -> Any:
        """The whole document that deploying `desired` writes (for dry-run diffs)."""
        return desired.definition

    def deployed_document(self, existing: Existing) -> Any:
        """The deployed counterpart of `document`."""
        return existing.definition

    @abc.abstractmethod
    def read(self, names: FlowNames) -> Existing | None:
        """The deployment under these names, in a constant number of calls; None if there is none."""

    @abc.abstractmethod
    def changes(self, existing: Existing, desired: Desired) -> list[str]:
        """What would change (empty: unchanged)."""

    @abc.abstractmethod
    def apply(self, desired: Desired, existing: Existing | None, log: UndoLog, key: str) -> None:
        """Create or update. Every write that lands pushes how to put it back onto `log` (under `key`),
        and `log.check()` is called before each write, so an interrupted run starts no new one."""

    @abc.abstractmethod
    def fingerprint(self, existing: Existing | None) -> Any:
        """What a deployment is, for comparing a read-back with what was there before
        (without what changes on every write: resource versions, timestamps)."""

    def definition_of(self, existing: Existing) -> Any:
        """The part of `fingerprint` that is the flow's definition."""
        return existing.definition

    @abc.abstractmethod
    def delete(self, existing: Existing) -> None: ...

    @abc.abstractmethod
    def running(self, existing: Existing, *, limit: int = 1000) -> int:
        """How many runs of this deployment are still running (counted up to `limit`)."""

    @abc.abstractmethod
    def start(self, existing: Existing, payload: dict[str, Any], run_tags: list[str]) -> Run: ...

    @abc.abstractmethod
    def run(self, existing: Existing, run_id: str) -> Run: ...

    @abc.abstractmethod
    def list_runs(self, existing: Existing, query: RunFilter) -> Iterator[RunDetails]:
        """Runs of a deployment matching `query`, newest first, read lazily page by page."""

    @abc.abstractmethod
    def find_run(self, existing: Existing, run_id: str) -> RunDetails | None:
        """One run with its tags and parameters, or None if it is not a run of this deployment."""
