"""The protocol every backend implements, and the records that cross it.

Two concerns, two small interfaces: `Deployer` (read, plan, apply under an undo log, delete, lock) and
`Runner` (start, get and list runs). A backend turns what the use-cases decided into API calls; whether a
change is allowed is the use-cases' (the authorization rules). It never imports the CLI or the use-cases.
"""

from __future__ import annotations

import abc
import datetime as _dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Generic, TypeVar

from mfproj.history import DeployLineage, HistoryEntry, HistoryStop
from mfproj.holder import Holder
from mfproj.naming import FlowNames
from mfproj.render import Context
from mfproj.transaction import UndoLog

LockHandle = TypeVar("LockHandle")


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
    managed_by: str = "mfproj"  # "metaflow" for deployments made (or last changed) by the reference
    commit: str | None = None  # lineage: the git commit deployed from,
    dirty: bool | None = None  # whether its tree had uncommitted changes,
    git_branch: str | None = None  # the git branch,
    ci_run: str | None = None  # and the CI run that deployed it
    promoted_from: str | None = None  # "<branch>@<commit>" when `mfproj promote` made it
    deploy_id: str | None = None  # the `mfproj deploy` (or rollback) that wrote it: one id for all it wrote
    rolled_back_to: str | None = None  # the deploy id a `mfproj rollback` put back
    # A digest of the definition the record was written with: a record whose digest is not the deployed
    # definition's (a deploy killed between its two writes) is `stale`, and is rewritten by the next deploy.
    definition_digest: str | None = None
    stale: bool = False
    unreadable: str | None = None  # what of the record could not be read (someone wrote it past the limits)

    def flow_key(self) -> tuple[str, str, str] | None:
        """(project, branch, flow) when the record names all three."""
        if self.project and self.branch and self.flow:
            return (self.project, self.branch, self.flow)
        return None

    def comparable(self) -> DeploymentRecord:
        """Without the fields that change on every deploy, to tell "unchanged" from "update"."""
        return replace(
            self,
            deployed_at=None,
            principal=None,
            mfproj_version=None,
            commit=None,
            dirty=None,
            git_branch=None,
            ci_run=None,
            definition_digest=None,
            deploy_id=None,
            rolled_back_to=None,
        )


@dataclass(frozen=True)
class Existing:
    """A deployment as read from the backend."""

    backend: str
    name: str
    identifier: str  # ARN on Step Functions, object name on Argo
    definition: Any
    record: DeploymentRecord | None  # None: the object carries no owner or token (not ours)
    schedule: str | None = None  # backend form, as deployed
    details: dict[str, Any] = field(default_factory=dict)  # the backend's own, for updates and rollback
    schedule_paused: bool = False  # the schedule is there but starts nothing (`mfproj schedules pause`)


@dataclass(frozen=True)
class Inventory:
    """Every deployment of a project on one backend. Each `Existing` has a record; mfproj's name their
    project, branch and flow (from the record, never parsed from a name); the reference's may not."""

    deployments: list[Existing]
    looked_for_metaflow: bool  # whether deployments made by the reference were looked for


@dataclass(frozen=True)
class LeftLock:
    """A write lock found by `find_locks`: what it guards (the deployed name) and who holds it."""

    identifier: str
    guards: str
    held_by: str


@dataclass(frozen=True)
class RunRequest:
    """What a run is started with, whoever starts it (a person, or a schedule); each backend puts it in
    its own form (the Step Functions execution input, an Argo Workflow's arguments and labels)."""

    flow: str
    project: str
    branch: str
    namespace: str  # production:<token>
    tags: tuple[str, ...]
    triggered_by: dict[str, Any]  # {"type": "user", "name": …} or {"type": "schedule"}
    parameters: dict[str, str] = field(default_factory=dict)  # --param K=V
    extra_input: dict[str, Any] = field(default_factory=dict)  # --input-file

    def metadata(self) -> dict[str, Any]:
        """The run metadata mfproj writes with every run (and reads back for `mfproj runs`)."""
        return {
            "namespace": self.namespace,
            "project": self.project,
            "branch": self.branch,
            "flow": self.flow,
            "tags": list(self.tags),
            "triggered_by": self.triggered_by,
        }


@dataclass(frozen=True)
class Desired:
    """A deployment as it should be after this run."""

    flow: str
    names: FlowNames
    definition: Any
    record: DeploymentRecord
    schedule: str | None  # 5-field cron, or None
    scheduled_run: RunRequest  # what runs started by the schedule carry
    keep: int = 20  # deploys its history keeps (the manifest's [project] history)

    def lineage(self, token_fingerprint: str | None) -> DeployLineage | None:
        """What the history keeps of this deploy with its content; None for a write that is no deploy."""
        record = self.record
        if not record.deploy_id:
            return None
        return DeployLineage(
            deploy_id=record.deploy_id,
            deployed_at=record.deployed_at,
            owner=record.owner,
            principal=record.principal,
            commit=record.commit,
            schedule=self.schedule,
            rolled_back_to=record.rolled_back_to,
            token_fingerprint=token_fingerprint,
        )


@dataclass(frozen=True)
class Run:
    """One run of a deployment (or a local Metaflow run), the same shape from every backend."""

    run_id: str  # the reference's form: sfn-<execution name>, argo-<workflow name>
    status: str  # RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED, PENDING, UNKNOWN
    started_at: _dt.datetime | None = None
    finished_at: _dt.datetime | None = None
    tags: tuple[str, ...] = ()
    parameters: dict[str, Any] = field(default_factory=dict)
    deployment: str = ""
    error: str | None = None
    partial: bool = False  # listed without its tags and parameters: `get_run` completes it

    @property
    def finished(self) -> bool:
        return self.status not in ("RUNNING", "PENDING")


@dataclass(frozen=True)
class RunFilter:
    """What `mfproj runs` asks for. `namespace` None is the global namespace."""

    namespace: str | None = None
    tags: tuple[str, ...] = ()
    statuses: frozenset[str] | None = None
    since: _dt.datetime | None = None
    limit: int = 20

    def required_tags(self) -> tuple[str, ...]:
        return (self.namespace, *self.tags) if self.namespace else self.tags

    def matches(self, run: Run) -> bool:
        """The reference's rule: a run is in namespace N when N is among its tags; tags combine with AND."""
        present = set(run.tags)
        if not all(tag in present for tag in self.required_tags()):
            return False
        if self.statuses and run.status not in self.statuses:
            return False
        return not (self.since and run.started_at and run.started_at < self.since)


def iso(value: _dt.datetime | None) -> str | None:
    """A moment as shown in JSON: ISO 8601 in UTC, to the second."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.timezone.utc)
    return value.astimezone(_dt.timezone.utc).isoformat(timespec="seconds")


class Deployer(abc.ABC, Generic[LockHandle]):
    """Deploying: read a deployment, say what would change, apply it under an undo log, delete it, and
    (where the service has no compare-and-swap) lock it."""

    name: str  # the registry's name, e.g. "step_functions"
    locks: bool = False  # whether changes take a lock (a backend without compare-and-swap)

    @abc.abstractmethod
    def endpoint(self) -> str:
        """Where requests go, for error messages."""

    @abc.abstractmethod
    def principal(self) -> str | None:
        """Who the service says the caller is (an ARN, a kubeconfig user), recorded for audit."""

    @abc.abstractmethod
    def deployed_name(self, names: FlowNames) -> str: ...

    def gone(self, names: FlowNames) -> Existing:
        """A stand-in for a deployment that is gone: name and identifier, enough to reach its runs."""
        name = self.deployed_name(names)
        return Existing(self.name, name, name, None, None)

    @abc.abstractmethod
    def render(self, template: Path, context: Context) -> Any:
        """The backend's document for one flow, placeholders filled in."""

    def validate(self, desired: Desired) -> list[str]:
        """What the service itself would refuse in the desired definition, asked before any write (also
        in a dry run); empty where the service has no such check."""
        return []

    def prefetch(self, names: list[FlowNames]) -> None:
        """Reads for many deployments at once what the next `read` of each may use, when it checks it
        against the deployment's own read (the tagging API is eventually consistent)."""

    def read_listed(self, names: FlowNames) -> tuple[bool, Existing | None]:
        """(known, the deployment) as the last `prefetch` listed it, without a call (Step Functions: its
        record, no definition): a guess whether a deploy writes, never planned from or written."""
        return False, None

    def history(self, existing: Existing, *, enough: HistoryStop | None = None) -> list[HistoryEntry]:
        """The deploys kept (newest first), each with its definition; empty where the backend keeps none.
        With `enough`, reading may stop after the first entry it accepts (a rollback's target)."""
        return []

    def pause_schedule(self, existing: Existing, *, paused: bool) -> bool:
        """Pauses or resumes the schedule (kept as deployed; a deploy keeps it paused); whether it changed."""
        raise NotImplementedError(f"{self.name} has no schedules to pause")

    def prune_history(self, names: FlowNames, keep: int) -> int:
        """After a deploy that landed: forgets all but the newest `keep` deploys; how many it forgot."""
        return 0

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

    @abc.abstractmethod
    def delete(self, existing: Existing) -> None: ...

    @abc.abstractmethod
    def find_deployments(self, project: str, *, include_metaflow: bool, full: bool = True) -> Inventory:
        """Every deployment of `project`, in API calls that grow with the project's deployments (not the
        account's); with `include_metaflow`, also those the reference made (which may cost a listing).
        Without `full`, only what listing their runs needs (identifier and record), in fewer calls."""

    def document(self, desired: Desired) -> Any:
        """The whole document that deploying `desired` writes (for dry-run diffs)."""
        return desired.definition

    def deployed_document(self, existing: Existing) -> Any:
        """The deployed counterpart of `document`, without what changes on every deploy (timestamps)."""
        return existing.definition

    def desired_document(self, desired: Desired) -> Any:
        """`document` as `deployed_document` shows it, so that a diff lists only real changes."""
        return self.document(desired)

    def definition_diff(self, existing: Existing | None, desired: Desired, *, new_label: str = "new") -> str:
        """A unified diff of the deployed document (none: empty) against the desired one (not masked)."""
        import difflib

        from mfproj import render

        before = render.canonical(self.deployed_document(existing)).splitlines() if existing else []
        after = render.canonical(self.desired_document(desired)).splitlines()
        return "\n".join(difflib.unified_diff(before, after, "deployed", new_label, lineterm=""))

    def definition_of(self, existing: Existing) -> Any:
        """The part of `fingerprint` that is the flow's definition."""
        return existing.definition

    def acquire(
        self, names: FlowNames, *, holder: Holder, timeout: float, waiting: Callable[[str], None]
    ) -> LockHandle | None:
        """Takes the deployment's write lock, waiting up to `timeout` seconds for another holder (and
        saying so through `waiting`), or raises ConflictError naming who holds it. The default takes
        nothing: a backend whose writes are compare-and-swap (Argo's resourceVersion) needs no lock."""
        return None

    def lock_scope(self, names: FlowNames) -> str:
        """What one lock guards: deployments whose changes take the same lock (default: the deployment)."""
        return self.deployed_name(names)

    def release(self, handle: LockHandle | None) -> None:
        """Gives back a lock taken by `acquire`; never one that someone else holds."""

    def unlock(self, names: FlowNames) -> str | None:
        """Removes the deployment's lock whoever holds it; returns who held it, None if there was none."""
        return None

    def find_locks(self, project: str, branch: str) -> list[LeftLock]:
        """Every lock of the branch's deployments, deployed or not (a backend without locks has none)."""
        return []

    def remove_lock(self, lock: LeftLock) -> None:
        """Removes a lock found by `find_locks`, whoever holds it."""

    def read_named(self, name: str) -> Existing | None:
        """The deployment under its deployed name (what a lock says it guards); a backend without locks
        is never asked."""
        return None


class Runner(abc.ABC):
    """Running: start a run of a deployment, follow one, list them."""

    @abc.abstractmethod
    def start(self, existing: Existing, request: RunRequest) -> Run: ...

    @abc.abstractmethod
    def get_run(self, existing: Existing, run_id: str) -> Run | None:
        """One run with its status, tags and parameters; None if it is not a run of this deployment."""

    @abc.abstractmethod
    def list_runs(self, existing: Existing, query: RunFilter) -> Iterator[Run]:
        """Runs of a deployment matching `query`, newest first, read lazily page by page. When the query
        needs no tags, a backend may yield `partial` runs (from the listing alone); the caller completes
        the few it keeps with `get_run`."""

    @abc.abstractmethod
    def running(self, existing: Existing, *, limit: int = 1000) -> list[str]:
        """The ids of this deployment's runs still running (up to `limit`)."""

    @abc.abstractmethod
    def stop_run(self, existing: Existing, run: Run, *, reason: str) -> None:
        """Stops a running run of this deployment (the service's own stop: its steps end, it is recorded
        as aborted or failed)."""


class Backend(Deployer[Any], Runner):
    """A workflow service: both concerns. Implementations live in `mfproj/backends/<name>/`."""

    def whereabouts(self) -> dict[str, str | None]:
        """Where requests would go and as whom, from local configuration only: no request is made."""
        return {}

    def check(self) -> dict[str, str | None]:
        """One cheap request that shows the backend answers; who it says the caller is."""
        return {"as": self.principal()}
