"""The transaction of a deploy: apply every change under one undo log; when one fails (or Ctrl-C or
SIGTERM comes), roll the log back, read every deployment back, and say exactly what is not back."""

from __future__ import annotations

from dataclasses import dataclass

from mfproj import identity, interrupts
from mfproj.backends.base import Existing
from mfproj.errors import InterruptedByUser, MfprojError, PartiallyAppliedError
from mfproj.transaction import UndoLog
from mfproj.usecases.locking import key
from mfproj.usecases.parallel import AllLanded, parallel
from mfproj.usecases.plan import Work
from mfproj.usecases.session import Pair, Session

ROLLING_BACK, PUT_BACK, NOT_BACK = "rolling back", "put back", "not put back"


def remember(session: Session, token: str, *, source: str) -> None:
    target = session.target
    keyring = session.get_keyring()
    if keyring.load_token(target.token_prefix) != token:
        keyring.store(target.token_prefix, token, project=target.project, branch=target.branch, source=source)


def apply(session: Session, work: list[Work], token: str) -> bool:
    """All or nothing. When a change fails (or Ctrl-C / SIGTERM comes), the undo log is rolled back,
    every deployment of the run is read back and compared with what was there before, and the error
    says exactly what is not back. Returns True when interrupted after every write had landed."""
    log = UndoLog()

    def apply(item: Work) -> None:
        pair, existing, desired, outcome = item.pair, item.existing, item.desired, item.outcome
        log.check()
        session.progress(pair.flow.name, pair.backend, "creating" if existing is None else "updating")
        try:
            session.backend(pair.backend).apply(desired, existing, log, key(pair))
        except Exception:
            session.progress(pair.flow.name, pair.backend, "failed")
            raise
        session.progress(pair.flow.name, pair.backend, f"{outcome.action}d")

    try:
        parallel(apply, work, log)  # type: ignore[arg-type]
    except AllLanded:
        return True
    except BaseException as exc:
        with interrupts.deferred(reraise=False):  # the rollback runs to its end
            touched = log.keys()
            states = _roll_back(session, work, log)
            if any(state.holds(token) for state in states):
                remember(session, token, source="deploy (partly applied)")
        raise _failure(exc, states, session, touched) from exc
    return False


@dataclass
class ReadBack:
    """A deployment of a failed run, read back after the rollback."""

    pair: Pair
    name: str
    state: str  # "put back", "new definition", "old definition", "unknown"
    detail: str = ""
    after: Existing | None = None
    unreadable: bool = False

    def holds(self, token: str) -> bool:
        """Whether the run's token may be live on it (then the keyring must have it)."""
        if self.unreadable:
            return True
        return bool(self.after and self.after.record and self.after.record.production_token == token)


def _roll_back(session: Session, work: list[Work], log: UndoLog) -> list[ReadBack]:
    touched = log.keys()
    for item in work:  # the person watching sees the rollback, not a count of failures
        if key(item.pair) in touched:
            session.progress(item.pair.flow.name, item.pair.backend, ROLLING_BACK)
    result = log.rollback()

    def read_back(item: Work) -> ReadBack:
        pair, before, desired, outcome = item.pair, item.existing, item.desired, item.outcome
        backend = session.backend(pair.backend)
        failed = result.failed.get(key(pair), [])
        try:
            after = backend.read(pair.names)
        except MfprojError as exc:
            return ReadBack(pair, outcome.name, "unknown", f"reading it back: {exc.message}", unreadable=True)
        if backend.fingerprint(after) == backend.fingerprint(before):
            return ReadBack(pair, outcome.name, "put back", after=after)
        changes = set(backend.changes(after, desired)) if after is not None else {"definition", "record"}
        if key(pair) not in touched and "definition" in changes:
            # No write of this run is logged here, and the definition there is not this run's: someone else
            # changed it. This run's definition there, unlogged, is a write of the run that landed without
            # reaching the log: said as not back, never as put back.
            return ReadBack(pair, outcome.name, "put back", after=after)
        if "definition" not in changes:
            state = "new definition"
        elif after is not None and before is not None and backend.definition_of(after) == backend.definition_of(before):
            state = "old definition"
        else:
            state = "unknown"
        return ReadBack(pair, outcome.name, state, failed[-1] if failed else "", after=after)

    states = [read_back(item) for item in work]
    for state in states:
        if key(state.pair) in touched:
            session.progress(
                state.pair.flow.name, state.pair.backend, PUT_BACK if state.state == "put back" else NOT_BACK
            )
    return states


def _failure(exc: BaseException, states: list[ReadBack], session: Session, touched: list[str]) -> BaseException:
    interrupted = isinstance(exc, KeyboardInterrupt)
    cause = "interrupted" if interrupted else (exc.message if isinstance(exc, MfprojError) else str(exc))
    not_back = [s for s in states if s.state != "put back"]
    if not not_back:
        keys = {key(s.pair) for s in states}
        rolled = [k for k in touched if k in keys]
        text = f"{cause}; nothing was changed" + (f" (rolled back {', '.join(rolled)})" if rolled else "")
        if interrupted:
            return InterruptedByUser(text, hint="run the command again when you are ready")
        if isinstance(exc, MfprojError):
            return type(exc)(text, hint=exc.hint)
        return exc
    listing = "; ".join(f"{key(s.pair)} ({s.name}): {s.state}" for s in not_back)
    first_cause = next((s.detail for s in not_back if s.detail), "")
    if first_cause:
        listing += f" (first failure of the rollback: {first_cause})"
    flows = " ".join(dict.fromkeys(s.pair.flow.name for s in not_back))
    options = identity.branch_options(session.target.branch)
    fix = f"mfproj deploy {flows}{' ' + options if options else ''}"
    text = f"{cause}; the rollback could not put everything back: {listing}"
    hint = f"run '{fix}' to finish the change once the backend answers (or '{fix} --dry-run' to see what differs)"
    if interrupted:
        return InterruptedByUser(text, hint=hint)
    return PartiallyAppliedError(text, hint=hint)
