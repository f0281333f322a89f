"""`mfproj delete`: read and authorize every deletion first (nothing changes), then delete under the
locks; a deletion cut off part-way says exactly what is gone and what is left."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from mfproj import identity
from mfproj.backends import registry
from mfproj.backends.base import Existing
from mfproj.errors import ConflictError, InterruptedByUser, NotFoundError, PartiallyAppliedError
from mfproj.usecases.checks import authorize_change, identity_check
from mfproj.usecases.locking import key, locked
from mfproj.usecases.parallel import parallel
from mfproj.usecases.report import Outcome
from mfproj.usecases.session import Pair, Session, TokenOptions, offer_for, select_pairs

READ_AHEAD = 8  # `before` calls in flight ahead of the deletions


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

    session.prefetch(pairs)
    found = parallel(read, pairs)
    missing = [
        f"{p.flow.name} ({registry.label(p.backend)}: {session.backend(p.backend).deployed_name(p.names)})"
        for p, e in zip(pairs, found, strict=True)
        if e is None
    ]
    if missing:
        raise NotFoundError(f"not deployed in {session.target.branch}: {', '.join(missing)}")
    plans = []
    reasons = []
    for pair, existing in zip(pairs, found, strict=True):
        assert existing is not None
        identity_check(existing, pair, session, adopt=False)
        reasons.append(authorize_change(session, offered, pair.flow.name, existing))
    # Counted once all are authorized, concurrently: ListExecutions is on a 2-a-second bucket.
    counts = parallel(
        lambda pair_found: session.backend(pair_found[0].backend).running(pair_found[1]),
        [*zip(pairs, found, strict=True)],
    )
    for pair, existing, reason, running in zip(pairs, found, reasons, counts, strict=True):
        assert existing is not None and existing.record is not None
        record = existing.record
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
                    running=len(running),
                ),
            )
        )
    return plans


def delete(
    session: Session,
    plans: list[tuple[Pair, Existing, Outcome]],
    *,
    before: Callable[[Pair, Existing], object] | None = None,
) -> None:
    """Deletes under the locks, one by one, stopping at the first failure. `before` runs for each just
    before its deletion, computed ahead concurrently (teardown counts running runs there, on a
    2-a-second bucket, while the deletions go on at their own 1 a second)."""
    pairs = [pair for pair, _, _ in plans]
    with locked(session, pairs):
        # Authorized against what was read before the lock: read again, and stop if it changed.
        session.prefetch(pairs)
        currents = parallel(lambda pair: session.backend(pair.backend).read(pair.names), pairs)
        for (_, existing, _), current in zip(plans, currents, strict=True):
            if current is None or current.record != existing.record:
                raise ConflictError(
                    f"{existing.name} changed while you were confirming the deletion",
                    hint="run the command again to see the new state",
                )
        deleted: list[str] = []
        ahead = ThreadPoolExecutor(max_workers=READ_AHEAD)
        try:
            readied = [ahead.submit(before, pair, existing) for pair, existing, _ in plans] if before else []
            for n, (pair, existing, _) in enumerate(plans):
                if readied:
                    readied[n].result()
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
        finally:
            ahead.shutdown(wait=False, cancel_futures=True)  # a stop does not wait for reads not needed
