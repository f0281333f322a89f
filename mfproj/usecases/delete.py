"""`mfproj delete`: read and authorize every deletion first (nothing changes), then delete under the
locks; a deletion cut off part-way says exactly what is gone and what is left."""

from __future__ import annotations

from mfproj import identity
from mfproj.backends import registry
from mfproj.backends.base import Existing
from mfproj.errors import ConflictError, InterruptedByUser, NotFoundError, PartiallyAppliedError
from mfproj.usecases.checks import authorize_change, identity_check
from mfproj.usecases.locking import key, locked
from mfproj.usecases.parallel import parallel
from mfproj.usecases.report import Outcome
from mfproj.usecases.session import Pair, Session, TokenOptions, offer_for, select_pairs


def plan_delete(
    session: Session,
    *,
    flows: list[str],
    backends: list[str] | None = None,
    token_options: TokenOptions = TokenOptions(),
) -> list[tuple[Pair, Existing, Outcome]]:
    """Reads and authorizes every deletion; changes nothing."""
    pairs = select_pairs(session, flows, backends)
    offered = offer_for(session, token_options)

    def read(pair: Pair) -> Existing | None:
        return session.backend(pair.backend).read(pair.names)

    found = parallel(read, pairs)
    missing = [
        f"{p.flow.name} ({registry.label(p.backend)}: {session.backend(p.backend).deployed_name(p.names)})"
        for p, e in zip(pairs, found, strict=True)
        if e is None
    ]
    if missing:
        raise NotFoundError(f"not deployed in {session.target.branch}: {', '.join(missing)}")
    plans = []
    for pair, existing in zip(pairs, found, strict=True):
        assert existing is not None
        identity_check(existing, pair, session, adopt=False)
        reason = authorize_change(session, offered, pair.flow.name, existing)
        record = existing.record
        assert record is not None
        running = session.backend(pair.backend).running(existing)
        plans.append(
            (
                pair,
                existing,
                Outcome(
                    flow=pair.flow.name,
                    backend=pair.backend,
                    name=existing.name,
                    action="delete",
                    reason=reason,
                    previous_owner=record.owner,
                    running=running,
                ),
            )
        )
    return plans


def delete(session: Session, plans: list[tuple[Pair, Existing, Outcome]]) -> None:
    pairs = [pair for pair, _, _ in plans]
    with locked(session, pairs):
        # Authorized against what was read before the lock: read again, and stop if it changed.
        for pair, existing, _ in plans:
            current = session.backend(pair.backend).read(pair.names)
            if current is None or current.record != existing.record:
                raise ConflictError(
                    f"{existing.name} changed while you were confirming the deletion",
                    hint="run the command again to see the new state",
                )
        deleted: list[str] = []
        try:
            for pair, existing, _ in plans:
                session.progress(pair.flow.name, pair.backend, "deleting")
                session.backend(pair.backend).delete(existing)
                deleted.append(f"{pair.flow.name} on {registry.label(pair.backend)}")
                session.progress(pair.flow.name, pair.backend, "deleted")
        except BaseException as exc:
            if not deleted:
                raise
            # A deletion cannot be undone: say exactly what is gone and what is left.
            left = [key(pair) for pair, _, _ in plans if key(pair) not in deleted]
            cause = "interrupted" if isinstance(exc, KeyboardInterrupt) else str(exc)
            flows = " ".join(dict.fromkeys(pair.flow.name for pair, _, _ in plans if key(pair) in left))
            options = identity.branch_options(session.target.branch)
            text = f"{cause}; deleted {', '.join(deleted)}, but not {', '.join(left)}"
            hint = f"run 'mfproj delete {flows}{' ' + options if options else ''} --yes' to delete the rest"
            error = InterruptedByUser if isinstance(exc, KeyboardInterrupt) else PartiallyAppliedError
            raise error(text, hint=hint) from exc
