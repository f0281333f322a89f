"""`mfproj schedules pause|resume`: stop a branch's schedules from starting runs (during an incident, say)
and let them again, keeping each schedule as deployed. Authorized as a delete (the deployment's owner or
its token), every one before any changes; under the branch's locks, so that a deploy in flight does not
put back what was just paused (a deploy keeps a schedule as paused as it finds it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mfproj.backends import registry
from mfproj.errors import NotFoundError, PartiallyAppliedError
from mfproj.usecases.checks import authorize_change
from mfproj.usecases.locking import locked
from mfproj.usecases.parallel import parallel
from mfproj.usecases.session import Pair, Session, TokenOptions, offer_for, select_pairs


@dataclass
class ScheduleState:
    pair: Pair
    name: str
    schedule: str
    paused: bool  # now
    changed: bool
    authorization: str

    def as_json(self) -> dict[str, Any]:
        return {
            "flow": self.pair.flow.name,
            "backend": self.pair.backend,
            "name": self.name,
            "schedule": self.schedule,
            "paused": self.paused,
            "changed": self.changed,
            "authorization": self.authorization,
        }


def set_paused(
    session: Session,
    *,
    paused: bool,
    flows: list[str] | None = None,
    backends: list[str] | None = None,
    token_options: TokenOptions = TokenOptions(),
) -> list[ScheduleState]:
    """Pauses (or resumes) every schedule of the selected flows on the branch; raises NotFoundError when
    none is scheduled, AuthorizationError before any change when one may not be changed by the caller."""
    pairs = select_pairs(session, flows, backends)
    offered = offer_for(session, token_options)

    def scheduled() -> list[tuple[Pair, Any]]:
        session.prefetch(pairs)
        found = parallel(lambda pair: session.backend(pair.backend).read(pair.names), pairs)
        return [(p, e) for p, e in zip(pairs, found, strict=True) if e is not None and e.schedule]

    if not scheduled():
        raise NotFoundError(
            f"no deployment of {session.target.branch} has a schedule",
            hint="a flow's schedule is set in the manifest ([[flows]] schedule = ...) and deployed",
        )
    with locked(session, pairs):
        found = scheduled()  # again, under the locks: what is authorized is what changes
        reasons = [authorize_change(session, offered, pair.flow.name, existing) for pair, existing in found]
        states: list[ScheduleState] = []
        try:
            for (pair, existing), reason in zip(found, reasons, strict=True):
                changed = session.backend(pair.backend).pause_schedule(existing, paused=paused)
                states.append(ScheduleState(pair, existing.name, existing.schedule, paused, changed, reason))
        except Exception as exc:
            if not any(state.changed for state in states):
                raise
            done = ", ".join(f"{s.pair.flow.name} on {registry.label(s.pair.backend)}" for s in states if s.changed)
            verb = "paused" if paused else "resumed"
            raise PartiallyAppliedError(
                f"{exc}; {verb} {done}, but not the rest",
                hint=f"run 'mfproj schedules {'pause' if paused else 'resume'}' again to finish",
            ) from exc
    return states
