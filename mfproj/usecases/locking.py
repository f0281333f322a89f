"""What every use-case that changes deployments shares: the write locks of a change (taken concurrently,
released on every path, a second Ctrl-C deferred), and the key that names a (flow, backend) pair in the
undo log and in messages."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from mfproj import interrupts
from mfproj.backends import registry
from mfproj.backends.base import Backend
from mfproj.errors import MfprojError
from mfproj.holder import Holder
from mfproj.usecases.parallel import parallel
from mfproj.usecases.session import Pair, Session, lock_timeout


def key(pair: Pair) -> str:
    return f"{pair.flow.name} on {registry.label(pair.backend)}"


@contextlib.contextmanager
def locked(session: Session, pairs: list[Pair], *, enabled: bool = True) -> Iterator[None]:
    """Holds the write locks of a change for its duration: one per backend and lock scope (Step
    Functions: the branch), taken concurrently, released on every path."""
    if not enabled:
        yield
        return
    taken: list[tuple[Backend, Any]] = []
    holder, timeout = Holder.current(session.user), lock_timeout(session.env)
    scopes: dict[tuple[str, str], list[Pair]] = {}
    for pair in pairs:
        scope = session.backend(pair.backend).lock_scope(pair.names)
        scopes.setdefault((pair.backend, scope), []).append(pair)

    def acquire(guarded: list[Pair]) -> None:
        backend = session.backend(guarded[0].backend)
        if not backend.locks:  # it swaps with a compare-and-swap instead: no lock taken, none said
            return

        def say(state: str) -> None:
            for pair in guarded:
                session.progress(pair.flow.name, pair.backend, state)

        def waiting(message: str) -> None:
            say("waiting on a lock")
            session.say(message)

        say("locking")
        handle = backend.acquire(guarded[0].names, holder=holder, timeout=timeout, waiting=waiting)
        taken.append((backend, handle))  # list.append is atomic under the GIL
        say("locked")

    try:
        parallel(acquire, list(scopes.values()))
        yield
    finally:
        with interrupts.deferred():  # a second Ctrl-C must not leave a lock behind
            parallel(lambda item: _release(session, *item), list(taken))  # one round trip, not one per lock


def _release(session: Session, backend: Backend, handle: Any) -> None:
    try:
        backend.release(handle)
    except MfprojError as exc:
        session.notice(
            f"{exc.message}; the next mfproj run on this host breaks it at once (elsewhere: 'mfproj unlock FLOW')"
        )
