"""`mfproj deploy`: plan without a lock, then (when something changes) plan again under the locks and
apply as one transaction; the keyring learns the token only when it is live."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from mfproj import gitbranch, interrupts
from mfproj.backends import registry
from mfproj.backends.base import Backend, Existing
from mfproj.errors import InterruptedByUser, MfprojError
from mfproj.holder import Holder
from mfproj.usecases.apply import apply, remember
from mfproj.usecases.parallel import parallel
from mfproj.usecases.plan import Report, context_for, identity_check, plan
from mfproj.usecases.session import Pair, Session, TokenOptions, deployment_tags, lock_timeout, offer_for, select_pairs


@contextlib.contextmanager
def locked(session: Session, pairs: list[Pair], *, enabled: bool = True) -> Iterator[None]:
    """Holds every pair's write lock (taken concurrently) for the duration of a change."""
    if not enabled:
        yield
        return
    taken: list[tuple[Backend, Any]] = []
    holder, timeout = Holder.current(session.user), lock_timeout(session.env)

    def acquire(pair: Pair) -> None:
        backend = session.backend(pair.backend)

        def waiting(message: str) -> None:
            session.progress(pair.flow.name, pair.backend, "waiting on a lock")
            session.say(message)

        session.progress(pair.flow.name, pair.backend, "locking")
        handle = backend.acquire(pair.names, holder=holder, timeout=timeout, waiting=waiting)
        taken.append((backend, handle))  # list.append is atomic under the GIL
        session.progress(pair.flow.name, pair.backend, "locked")

    try:
        parallel(acquire, pairs)
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


def _guard_production(session: Session, *, allow_branch: bool, allow_dirty: bool) -> None:
    """The manifest's production_branch rule, before any request (see gitbranch)."""
    if session.target.is_production:
        manifest = session.manifest
        gitbranch.check_production_source(
            manifest.root, session.env, manifest.production_branch, allow_branch=allow_branch, allow_dirty=allow_dirty
        )


def deploy(
    session: Session,
    *,
    flows: list[str] | None = None,
    backends: list[str] | None = None,
    token_options: TokenOptions = TokenOptions(),
    extra_tags: list[str] | None = None,
    dry_run: bool = False,
    adopt: bool = False,
    allow_branch: bool = False,
    allow_dirty: bool = False,
) -> Report:
    _guard_production(session, allow_branch=allow_branch, allow_dirty=allow_dirty)
    pairs = select_pairs(session, flows, backends)
    tags_by_flow = {pair.flow.name: deployment_tags(pair.flow, extra_tags or []) for pair in pairs}
    for pair in pairs:  # templates parse before any request; placeholders are checked with a stand-in token
        session.backend(pair.backend).render(pair.flow.template(pair.backend), context_for(session, pair, "stand-in"))

    def read(pair: Pair) -> Existing | None:
        session.progress(pair.flow.name, pair.backend, "reading")
        existing = session.backend(pair.backend).read(pair.names)
        if existing is not None:
            identity_check(existing, pair, session, adopt)
        return existing

    # Plan without the lock first: an unchanged deployment (the common redeploy) and a refused one need
    # no lock. A change is planned again under the lock, from a fresh read, and then applied.
    offered = offer_for(session, token_options)
    report, work, token = plan(
        session, pairs, read, tags_by_flow, token_options=token_options, offered=offered, dry_run=dry_run
    )
    if dry_run:
        return report
    interrupted = False
    if work:
        with locked(session, pairs):
            report, work, token = plan(
                session, pairs, read, tags_by_flow, token_options=token_options, offered=offered, dry_run=False
            )
            interrupted = apply(session, work, token)
    for outcome in report.outcomes:
        if outcome.action == "unchanged":
            session.progress(outcome.flow, outcome.backend, "unchanged")
    # Only now, with every change in place, does the keyring learn the token (the reference stores it first).
    with interrupts.deferred():
        remember(session, token, source="deploy")
    if interrupted:
        landed = [
            f"{o.flow} on {registry.label(o.backend)} {o.action}d" for o in report.outcomes if o.action != "unchanged"
        ]
        raise InterruptedByUser(
            f"interrupted after every change had landed: {', '.join(landed)}; the production token is in your keyring",
            hint="nothing to undo; run 'mfproj deploy --dry-run' to see that all is in place",
        )
    return report
