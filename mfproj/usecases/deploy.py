"""`mfproj deploy`: plan without a lock; when something changes, read the deployed state again under the
locks (planning again only if it moved) and apply as one transaction; the keyring learns the token only
when it is live."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from mfproj import gitbranch, identity, interrupts, tokens
from mfproj.authorization import OfferedToken
from mfproj.backends import registry
from mfproj.backends.base import Existing
from mfproj.errors import ConflictError, InterruptedByUser, MfprojError, PartiallyAppliedError
from mfproj.keyring import KeyringError
from mfproj.usecases.apply import apply, remember
from mfproj.usecases.checks import identity_check
from mfproj.usecases.desired import context_for
from mfproj.usecases.locking import locked
from mfproj.usecases.plan import Plan, Reads, plan, read_branch
from mfproj.usecases.report import Report
from mfproj.usecases.session import (
    TOKEN_STAND_IN,
    Pair,
    Session,
    TokenOptions,
    branch_pairs,
    deployment_tags,
    offer_for,
    select_pairs,
)


def _guard_production(session: Session, *, allow_branch: bool, allow_dirty: bool) -> None:
    """The manifest's production_branch rule, before any request (see gitbranch)."""
    if session.target.is_production:
        gitbranch.check_production_source(
            session.origin(),
            session.env,
            gitbranch.committed_production_branch(session.manifest.path, session.manifest.production_branch),
            allow_branch=allow_branch,
            allow_dirty=allow_dirty,
        )


@dataclass
class _Planner:
    """Plans one deploy: the selected pairs, and the branch's other deployments (read for its token)."""

    session: Session
    pairs: list[Pair]
    others: list[Pair]
    tags_by_flow: dict[str, tuple[str, ...]]
    token_options: TokenOptions
    offered: OfferedToken | None
    adopt: bool
    unreadable: set[str] = field(default_factory=set)
    prefetched: bool = False  # the tagging API was just read (by plan_from_listing): the next read uses it

    def read(self, pair: Pair) -> Existing | None:
        self.session.progress(pair.flow.name, pair.backend, "reading")
        existing = self.session.backend(pair.backend).read(pair.names)
        if existing is not None:
            identity_check(existing, pair, self.session, self.adopt)
        return existing

    def read_other(self, pair: Pair) -> Existing | None:
        """Another deployment of the branch, for its token: one that is not the branch's is left alone,
        and a backend that cannot be read is said once (its token could not be checked)."""
        try:
            existing = self.session.backend(pair.backend).read(pair.names)
            if existing is not None:
                identity_check(existing, pair, self.session, adopt=False)
        except MfprojError as exc:
            if pair.backend not in self.unreadable:
                self.unreadable.add(pair.backend)
                self.session.notice(
                    f"the branch's other deployments on {registry.label(pair.backend)} could not be read to check "
                    f"its one token ({exc.message})"
                )
            return None
        return existing

    def read_branch(self) -> Reads:
        """The branch's deployments, with what each backend reads for many at once (its tagging API)."""
        if not self.prefetched:
            self.session.prefetch([*self.pairs, *self.others])
        self.prefetched = False
        return read_branch(self.pairs, self.others, self.read, self.read_other)

    def plan_from_listing(self) -> Plan | None:
        """A plan from what the backends list for many deployments at once (Step Functions: records from
        the tagging API, no definitions), only to tell whether this deploy writes: then it locks before
        its one full read instead of reading everything twice (DescribeStateMachine is throttled at 20 a
        second; the update bucket waits meanwhile). Deployments a backend does not list are left out of
        the guess; None where it cannot tell (then the deploy reads as before)."""
        session = self.session
        session.prefetch([*self.pairs, *self.others])

        def listed(pairs: list[Pair]) -> list[tuple[Pair, Existing | None]]:
            found = [(pair, session.backend(pair.backend).read_listed(pair.names)) for pair in pairs]
            return [(pair, existing) for pair, (known, existing) in found if known]

        guessed: Plan | None = None
        try:
            selected = listed(self.pairs)
            for pair, existing in selected:
                if existing is not None:
                    identity_check(existing, pair, session, self.adopt)
            if selected:
                guessed = plan(
                    session,
                    Reads(selected, listed(self.others)),
                    self.tags_by_flow,
                    generate_new=self.token_options.generate_new_token,
                    offered=self.offered,
                    dry_run=False,
                    validate=False,
                )
        except MfprojError:  # refused: the full read says so, before any lock
            guessed = None
        # The read before any lock uses this listing; the read under locks taken first lists again.
        self.prefetched = guessed is None or not guessed.work
        return guessed

    def lock_all(self) -> list[Pair]:
        """Every deployment of the branch, locked before the one read."""
        return [*self.pairs, *self.others]

    def plan(self, reads: Reads, *, dry_run: bool) -> Plan:
        return plan(
            self.session,
            reads,
            self.tags_by_flow,
            generate_new=self.token_options.generate_new_token,
            offered=self.offered,
            dry_run=dry_run,
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
    others = branch_pairs(session, exclude=pairs)
    tags_by_flow = {pair.flow.name: deployment_tags(pair.flow, []) for pair in others}
    tags_by_flow.update({pair.flow.name: deployment_tags(pair.flow, extra_tags or []) for pair in pairs})
    for pair in pairs:  # templates render before any request (the token stands in), and only once
        session.rendered(pair, context_for(session, pair, TOKEN_STAND_IN), TOKEN_STAND_IN)
    planner = _Planner(session, pairs, others, tags_by_flow, token_options, offer_for(session, token_options), adopt)
    return execute(session, planner, dry_run=dry_run)


class Planner(Protocol):
    """What `execute` needs of a deploy (or a rollback): how to read the branch, and how to plan from it."""

    def read_branch(self) -> Reads: ...

    def plan_from_listing(self) -> Plan | None: ...

    def lock_all(self) -> list[Pair]: ...

    def plan(self, reads: Reads, *, dry_run: bool) -> Plan: ...


def execute(session: Session, planner: Planner, *, dry_run: bool) -> Report:
    """Plans without the lock first (an unchanged deployment, the common redeploy, and a refused one need
    none); when something changes, takes the locks, reads the deployed state again (planning again only
    if it moved) and applies it all as one transaction. When what the backends list already shows a
    change, the locks come first and the one read is under them."""
    phase = "reading what is deployed"
    planned: Plan | None = None
    interrupted = False
    try:
        listed = None if dry_run else planner.plan_from_listing()
        if listed is not None and listed.work:
            _check_keyring(session)
            phase = "taking the locks"
            with locked(session, planner.lock_all()):
                phase = "reading under the locks"
                planned = _planned(session, planner, planner.read_branch(), dry_run=False)
                if planned.work:
                    phase = "applying"
                    interrupted = apply(session, planned.work, planned.token)
                    phase = "releasing the locks"
        else:
            planned = _planned(session, planner, planner.read_branch(), dry_run=dry_run)
            if dry_run:
                return planned.report
            if planned.work:
                _check_keyring(session)
                members = planned.members
                phase = "taking the locks"
                with locked(session, members):
                    phase = "reading again under the locks"
                    fresh = planner.read_branch()
                    if fresh != planned.reads:
                        planned = planner.plan(fresh, dry_run=False)
                    if any(item.pair not in members for item in planned.work):
                        raise ConflictError(
                            f"{session.target.branch} changed while this deploy was planning (another deploy "
                            "moved its token)",
                            hint="run the command again",
                        )
                    phase = "applying"
                    interrupted = apply(session, planned.work, planned.token)
                    phase = "releasing the locks"
    except KeyboardInterrupt:
        return _interrupted(session, planned, phase)
    return _finish(session, planned, interrupted)


def _planned(session: Session, planner: Planner, reads: Reads, *, dry_run: bool) -> Plan:
    planned = planner.plan(reads, dry_run=dry_run)
    if planned.branch.split:
        session.notice(
            f"{session.target.branch} holds more than one production token ({planned.branch.describe()}): "
            f"this deploy moves every deployment to {tokens.mask(planned.token)}"
        )
    return planned


def _interrupted(session: Session, planned: Plan | None, phase: str) -> Report:
    """Says what an interrupt caught outside apply() means, in the phase it came in."""
    if planned is not None and phase in ("applying", "releasing the locks"):
        # apply() lets no interrupt through (it rolls back and says so, or returns True when every write
        # had landed), so one caught here came after it returned: keep the token, then say so.
        return _finish(session, planned, True)
    raise InterruptedByUser(
        f"interrupted while {phase}: nothing was changed"
        + (" (the locks taken were released)" if phase != "reading what is deployed" else ""),
        hint="run the command again when you are ready",
    ) from None


def _finish(session: Session, planned: Plan, interrupted: bool) -> Report:
    report, token = planned.report, planned.token
    for outcome in report.outcomes:
        if outcome.action == "unchanged":
            session.progress(outcome.flow, outcome.backend, "unchanged")
    # Only now, with every change in place, does the keyring learn the token (the reference stores it first).
    with interrupts.deferred():
        _remember_landed(session, token, report)
    if not interrupted:
        _prune_history(session, planned)
    if interrupted:
        landed = [
            f"{o.flow} on {registry.label(o.backend)} {o.action}d" for o in report.outcomes if o.action != "unchanged"
        ]
        raise InterruptedByUser(
            f"interrupted after every change had landed: {', '.join(landed)}; the production token is in your keyring",
            hint="nothing to undo; run 'mfproj deploy --dry-run' to see that all is in place",
        )
    return report


def _prune_history(session: Session, planned: Plan) -> None:
    """After the deploy landed: each deployment it wrote keeps the manifest's `history` deploys. A prune
    that fails is said, and the deploy stands (the next one prunes again)."""
    for item in planned.work:
        try:
            session.backend(item.pair.backend).prune_history(item.pair.names, item.desired.keep)
        except MfprojError as exc:
            session.notice(
                f"{item.pair.flow.name}: the deploy landed, but its oldest history was not pruned ({exc.message})"
            )


def _check_keyring(session: Session) -> None:
    """Before the first write: a keyring that cannot keep the token stops the deploy (nothing written)."""
    try:
        session.get_keyring().check_writable(session.target.token_prefix)
    except KeyringError as exc:
        raise KeyringError(
            f"{exc.message}; nothing was deployed (the deploy needs to keep the production token)", hint=exc.hint
        ) from None


def _remember_landed(session: Session, token: str, report: Report) -> None:
    try:
        remember(session, token, source="deploy")
    except KeyringError as exc:
        changed = [f"{o.flow} on {registry.label(o.backend)}" for o in report.outcomes if o.action != "unchanged"]
        options = identity.branch_options(session.target.branch)
        raise PartiallyAppliedError(
            f"the deploy landed ({', '.join(changed) or 'nothing changed'}), but its production token could not be "
            f"stored: {exc.message}",
            hint=f"fix the keyring, then run 'mfproj deploy{' ' + options if options else ''}' again: as its owner "
            "you redeploy without the token, and it is stored then (or ask a teammate for 'mfproj token share')",
        ) from None
