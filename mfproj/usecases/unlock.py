"""`mfproj unlock`: remove a deployment's write lock, with the authorization of a deploy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mfproj.backends.base import LeftLock
from mfproj.usecases.checks import authorize_change, identity_check
from mfproj.usecases.parallel import parallel
from mfproj.usecases.session import Session, TokenOptions, branch_pairs, offer_for, select_pairs


@dataclass
class Unlocked:
    flow: str
    backend: str
    name: str
    held_by: str | None  # None: there was no lock
    authorization: str
    lockable: bool = True  # False: the backend takes no locks (compare-and-swap writes)

    def as_json(self) -> dict[str, Any]:
        return {
            "flow": self.flow,
            "backend": self.backend,
            "name": self.name,
            "removed": self.held_by is not None,
            "held_by": self.held_by,
            "authorization": self.authorization,
        }


def unlock(
    session: Session,
    *,
    flows: list[str],
    backends: list[str] | None = None,
    token_options: TokenOptions = TokenOptions(),
) -> list[Unlocked]:
    """Removes the write locks of deployments, with the authorization of a deploy: a lock guards a
    deployment, so only someone who may change the deployment may take its lock away."""
    pairs = select_pairs(session, flows, backends)
    offered = offer_for(session, token_options)
    found = parallel(lambda pair: session.backend(pair.backend).read(pair.names), pairs)
    results = []
    for pair, existing in zip(pairs, found, strict=True):
        reason = "not deployed: no token guards it"
        if existing is not None and existing.record is not None and existing.record.production_token is None:
            reason = "no token guards it"
        elif existing is not None:
            identity_check(existing, pair, session, adopt=False)
            reason = authorize_change(session, offered, pair.flow.name, existing)
        backend = session.backend(pair.backend)
        name = backend.deployed_name(pair.names)
        results.append(Unlocked(pair.flow.name, pair.backend, name, None, reason, lockable=backend.locks))
    for result, pair in zip(results, pairs, strict=True):
        result.held_by = session.backend(pair.backend).unlock(pair.names)
    return results


def branch_locks(session: Session) -> list[tuple[str, LeftLock]]:
    """(backend, lock) for every lock left on the session's branch, on every backend that takes locks."""
    target = session.target
    lockers = [b for b in session.used_backends() if session.backend(b).locks]
    found = parallel(lambda b: session.backend(b).find_locks(target.project, target.branch), lockers)
    return [(backend, lock) for backend, locks in zip(lockers, found, strict=True) for lock in locks]


def _authorize_branch(session: Session, offered: Any, backend_name: str) -> str | None:
    """A branch lock is removed with the authorization of every deployment of the branch on the backend
    (raises AuthorizationError for the first refused); None when none of them is deployed."""
    pairs = [pair for pair in branch_pairs(session, exclude=[]) if pair.backend == backend_name]
    found = parallel(lambda pair: session.backend(pair.backend).read(pair.names), pairs)
    reasons = [
        authorize_change(session, offered, pair.flow.name, existing)
        for pair, existing in zip(pairs, found, strict=True)
        if existing is not None and existing.record is not None and existing.record.production_token
    ]
    return reasons[0] if reasons else None


def unlock_all(session: Session, *, token_options: TokenOptions = TokenOptions()) -> list[Unlocked]:
    """Removes every lock left on the branch. A lock whose deployment is there is removed with that
    deployment's authorization (all are checked before any is removed); one whose deployment is gone
    guards nothing."""
    offered = offer_for(session, token_options)
    locks = branch_locks(session)
    results = []
    for backend_name, lock in locks:
        backend = session.backend(backend_name)
        existing = backend.read_named(lock.guards)
        reason = "not deployed: no token guards it"
        flow = existing.record.flow if existing and existing.record and existing.record.flow else "?"
        if existing is not None and existing.record is not None and existing.record.production_token:
            reason = authorize_change(session, offered, flow, existing)
        elif existing is None:  # the branch's lock: it guards every deployment of the branch
            flow = "*"
            reason = _authorize_branch(session, offered, backend_name) or reason
        results.append(Unlocked(flow, backend_name, lock.guards, lock.held_by, reason))
    for backend_name, lock in locks:  # only once every one is authorized
        session.backend(backend_name).remove_lock(lock)
    return results
