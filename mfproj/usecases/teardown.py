"""`mfproj teardown`: remove every deployment of one branch on every backend (the manifest's flows and
orphans), their schedules and their locks, each authorized as a delete; running runs are reported, and
stopped only when asked. `plan_teardown` reads and authorizes without changing anything (also for gc)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

from mfproj.backends import registry
from mfproj.backends.base import Existing, RunFilter
from mfproj.errors import AuthorizationError, NotFoundError
from mfproj.manifest import Flow
from mfproj.usecases import delete as deleting
from mfproj.usecases import unlock as unlocking
from mfproj.usecases.checks import authorize_change
from mfproj.usecases.deployments import inventory
from mfproj.usecases.parallel import parallel
from mfproj.usecases.report import Outcome
from mfproj.usecases.session import Pair, Session, TokenOptions, offer_for


@dataclass
class Item:
    pair: Pair
    existing: Existing
    running: list[str] | None  # its running runs' ids; None: not read yet (with --yes, each just before it goes)
    authorized: bool
    reason: str  # the authorization, or why it is refused

    def as_json(self) -> dict[str, Any]:
        record = self.existing.record
        return {
            "flow": self.pair.flow.name,
            "backend": self.pair.backend,
            "name": self.existing.name,
            "owner": record.owner if record else None,
            "schedule": self.existing.schedule,
            "running_executions": None if self.running is None else len(self.running),
            "running_runs": self.running,
            "authorized": self.authorized,
            "authorization": self.reason,
        }


@dataclass
class Teardown:
    branch: str
    items: list[Item]
    dry_run: bool
    removed: bool = False
    terminated: list[str] = field(default_factory=list)
    locks: list[str] = field(default_factory=list)  # leftover locks removed (of deployments gone too)
    token_in_keyring: bool = False  # the branch's token is still in the caller's keyring (said, kept)

    def as_json(self) -> dict[str, Any]:
        return {
            "branch": self.branch,
            "dry_run": self.dry_run,
            "removed": self.removed,
            "deployments": [item.as_json() for item in self.items],
            "terminated_runs": self.terminated,
            "locks_removed": self.locks,
            "token_in_keyring": self.token_in_keyring,
        }


def plan_teardown(
    session: Session, *, token_options: TokenOptions = TokenOptions(), count_running: bool = True
) -> list[Item]:
    """Every deployment of the session's branch, read and authorized; nothing changes. The running runs
    are counted here when someone is to read them before confirming (`count_running`)."""
    branch = session.target.branch
    offered = offer_for(session, token_options)
    items = []
    found = [
        (backend, existing)
        for backend, existing in inventory(session, None, include_metaflow=False)
        if existing.record is not None and existing.record.branch == branch and existing.record.flow
    ]
    for backend, existing in found:
        record = existing.record
        assert record is not None and record.flow
        flow = next((f for f in session.manifest.flows if f.name == record.flow), Flow(name=record.flow))
        names = session.manifest.flow_names(branch, record.flow, session.env)
        try:
            reason = authorize_change(session, offered, record.flow, existing)
            authorized = True
        except AuthorizationError as exc:
            reason, authorized = exc.message, False
        items.append(Item(Pair(flow, backend, names), existing, None, authorized, reason))
    if count_running:
        _count(session, items)
    return items


def teardown(
    session: Session,
    items: list[Item],
    *,
    terminate_runs: bool = False,
) -> Teardown:
    """Removes what `plan_teardown` found: all of it, or (when any is not authorized) nothing."""
    branch = session.target.branch
    if not items:
        leftovers = unlocking.branch_locks(session)
        if not leftovers:
            raise NotFoundError(f"nothing is deployed in {branch}", hint="'mfproj deployments' lists what is deployed")
        for backend, lock in leftovers:  # no deployment is left for them to guard
            session.backend(backend).remove_lock(lock)
        return Teardown(branch, [], dry_run=False, removed=True, locks=[lock.guards for _, lock in leftovers])
    refused = [item for item in items if not item.authorized]
    if refused:
        first = refused[0]
        raise AuthorizationError(
            f"{len(refused)} of {len(items)} deployments of {branch} may not be removed by you: {first.reason}",
            hint="get the branch's token ('mfproj token authorize'), or ask its owner to tear it down",
        )
    result = Teardown(branch, items, dry_run=False)
    if terminate_runs:
        _count(session, items)
        result.terminated = _stop_runs(session, items)
    plans = [
        (item.pair, item.existing, Outcome(item.pair.flow.name, item.pair.backend, item.existing.name, "delete"))
        for item in items
    ]
    by_pair = {id(item.pair): item for item in items}

    def count(pair: Pair, existing: Existing) -> None:  # counted ahead, while the deletions go on
        item = by_pair[id(pair)]
        if item.running is None:
            item.running = session.backend(pair.backend).running(existing)

    deleting.delete(session, plans, before=count)
    # A lock left behind by someone else's killed deploy goes with the deployments (once per lock: one
    # lock may guard the whole branch).
    scopes = {
        (item.pair.backend, session.backend(item.pair.backend).lock_scope(item.pair.names)): item for item in items
    }
    for item in scopes.values():
        session.backend(item.pair.backend).unlock(item.pair.names)
    for backend, lock in unlocking.branch_locks(session):  # and those of flows no longer deployed
        session.backend(backend).remove_lock(lock)
        result.locks.append(lock.guards)
    result.removed = True
    # Kept (a branch deployed again gets its token back from it), but said: nothing else would.
    with contextlib.suppress(Exception):
        result.token_in_keyring = session.get_keyring().load_token(session.target.token_prefix) is not None
    return result


def _count(session: Session, items: list[Item]) -> None:
    """Counted concurrently: ListExecutions is on a 2-a-second bucket."""
    uncounted = [item for item in items if item.running is None]
    counts = parallel(lambda item: session.backend(item.pair.backend).running(item.existing), uncounted)
    for item, running in zip(uncounted, counts, strict=True):
        item.running = running


def _stop_runs(session: Session, items: list[Item]) -> list[str]:
    stopped = []
    for item in items:
        if not item.running:
            continue
        backend = session.backend(item.pair.backend)
        for run in backend.list_runs(
            item.existing, RunFilter(statuses=frozenset({"RUNNING"}), limit=len(item.running))
        ):
            backend.stop_run(item.existing, run, reason=f"branch {item.pair.names.project_flow_name} torn down")
            stopped.append(run.run_id)
    return stopped


def label(item: Item) -> str:
    return f"{item.pair.flow.name} on {registry.label(item.pair.backend)}"
