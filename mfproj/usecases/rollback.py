"""`mfproj rollback`: the branch (or the named flows) put back to the previous deploy, or to the one named,
from what each backend kept (`usecases/history`). A rollback is a deploy: the same authorization, locks,
undo log, read-back and live view, its own deploy id and record (`rolled back to <deploy id>`), so it is in
the history and can be rolled back in turn. The token never changes: a kept deploy made under another
token is refused (its definitions carry that token's namespace)."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

from mfproj import lineage, tokens
from mfproj.authorization import OfferedToken
from mfproj.backends import registry
from mfproj.backends.base import Existing
from mfproj.errors import AuthorizationError, NotFoundError
from mfproj.history import HistoryEntry, HistoryStop
from mfproj.usecases.deploy import execute
from mfproj.usecases.desired import Stamp, desired_from
from mfproj.usecases.history import BranchHistory, branch_history
from mfproj.usecases.parallel import parallel
from mfproj.usecases.plan import Plan, Reads, Work, authorize_all, branch_tokens, outcome_of
from mfproj.usecases.report import Report
from mfproj.usecases.session import Pair, Session, TokenOptions, offer_for


@dataclass(frozen=True)
class Rollback:
    target: str  # the deploy id put back
    report: Report
    left: list[str]  # deployments with nothing kept at or before the target, left as they are

    def as_json(self) -> dict[str, object]:
        return {**self.report.as_json(), "rolled_back_to": self.target, "left_as_they_are": self.left}


def rollback(
    session: Session,
    *,
    flows: list[str] | None = None,
    backends: list[str] | None = None,
    to: str | None = None,
    token_options: TokenOptions = TokenOptions(),
    dry_run: bool = False,
) -> Rollback:
    history = branch_history(session, flows=flows, backends=backends, enough=lambda deployed: _enough(deployed, to))
    target = _target(history, to)
    chosen: dict[tuple[str, str], HistoryEntry] = {}
    pairs = []
    left = []
    for pair, _ in history.deployed:
        entries = [entry for p, entry in _entries(history) if p == pair and entry.deploy_id <= target]
        if entries:
            chosen[_key(pair)] = max(entries, key=lambda entry: entry.deploy_id)
            pairs.append(pair)
        else:
            left.append(f"{pair.flow.name} on {registry.label(pair.backend)}")
    if not chosen:
        raise NotFoundError(f"no deployment of {session.target.branch} has a deploy at or before {target}")
    for said in left:
        session.notice(f"{said} has no deploy kept at or before {target}: left as it is")
    # The history's reads are the plan's first: what is deployed was read a moment ago.
    read = Reads([(pair, existing) for pair, existing in history.deployed if pair in pairs], [])
    planner = _Planner(session, pairs, chosen, target, offer_for(session, token_options), read)
    return Rollback(target, execute(session, planner, dry_run=dry_run), left)


def _key(pair: Pair) -> tuple[str, str]:
    return (pair.flow.name, pair.backend)


def _entries(history: BranchHistory) -> list[tuple[Pair, HistoryEntry]]:
    return [item for deploy in history.deploys for item in deploy.wrote]


def _live(deployed: list[tuple[Pair, Existing]]) -> str | None:
    """The newest deploy id of what is deployed (deploy ids sort by time)."""
    return max((e.record.deploy_id for _, e in deployed if e.record and e.record.deploy_id), default=None)


def _enough(deployed: list[tuple[Pair, Existing]], to: str | None) -> HistoryStop | None:
    """Where each history may stop (each kept deploy costs a read): at the first deploy at or before the
    one named; else at the first older than what is live, which is that deployment's newest candidate.
    All of it when no record says what is live."""
    if to is not None:
        return lambda entry: entry.deploy_id <= to
    live = _live(deployed)
    return None if live is None else (lambda entry: entry.deploy_id < live)


def _target(history: BranchHistory, to: str | None) -> str:
    """The deploy to put back: the one named, else the newest older than what is live."""
    ids = [deploy.deploy_id for deploy in history.deploys]  # newest first
    if to is not None:
        if to not in ids:
            raise NotFoundError(
                f"deploy {to!r} is not kept for {history.branch}",
                hint="'mfproj history' lists the deploys kept" + (f" (newest: {ids[0]})" if ids else ""),
            )
        return to
    live = _live(history.deployed)
    older = [deploy_id for deploy_id in ids if live is None or deploy_id < live]
    if live is None:
        older = older[1:]  # the newest kept is what is deployed
    if not older:
        raise NotFoundError(
            f"nothing to roll back to: {history.branch} keeps no deploy before the live one",
            hint="'mfproj history' lists the deploys kept",
        )
    return older[0]


@dataclass
class _Planner:
    session: Session
    pairs: list[Pair]
    chosen: dict[tuple[str, str], HistoryEntry]
    target: str
    offered: OfferedToken | None
    first: Reads | None  # used once, then each read goes to the backends

    def plan_from_listing(self) -> Plan | None:
        return None  # planned from the history it read already: the locks come after that plan

    def lock_all(self) -> list[Pair]:
        return self.pairs

    def read_branch(self) -> Reads:
        if self.first is not None:
            first, self.first = self.first, None
            return first
        self.session.prefetch(self.pairs)
        found = parallel(lambda pair: self.session.backend(pair.backend).read(pair.names), self.pairs)
        return Reads(list(zip(self.pairs, found, strict=True)), [])

    def plan(self, reads: Reads, *, dry_run: bool) -> Plan:
        session = self.session
        missing = [pair.flow.name for pair, existing in reads.selected if existing is None]
        if missing:
            raise NotFoundError(f"{', '.join(missing)} no longer deployed on {session.target.branch}")
        existing_list = [existing for _, existing in reads.selected]
        settled = branch_tokens(reads.selected, self.offered)
        decisions = authorize_all(session, self.pairs, existing_list, settled, False, self.offered)
        now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        secrets = {d.token for d in decisions} | set(settled.holders)
        work, outcomes = [], []
        for pair, existing, decision in zip(self.pairs, existing_list, decisions, strict=True):
            entry = self.chosen[_key(pair)]
            _same_token(pair, entry, decision.token)
            record = existing.record if existing else None
            stamp = Stamp(
                session.user,
                decision.token,
                record.tags if record else (),
                session.backend(pair.backend).principal(),
                now,
                lineage.Lineage(commit=entry.lineage.commit),
                deploy_id=session.deploy_id(),
                rolled_back_to=self.target,
            )
            desired = desired_from(session, pair, entry, stamp)
            outcome = outcome_of(session, pair, existing, desired, decision, secrets if dry_run else None)
            outcomes.append(outcome)
            if outcome.action != "unchanged":
                work.append(Work(pair, existing, desired, outcome))
        token = decisions[0].token
        report = Report(
            project=session.target.project,
            branch=session.target.branch,
            token_prefix=session.target.token_prefix,
            namespace=f"production:{tokens.mask(token)}",
            dry_run=dry_run,
            outcomes=outcomes,
        )
        return Plan(report, work, token, settled, self.pairs, reads)


def _same_token(pair: Pair, entry: HistoryEntry, token: str) -> None:
    """A kept deploy made under another token would put that namespace back into the definitions."""
    kept = entry.lineage.token_fingerprint
    if kept is not None and kept != tokens.fingerprint(token):
        raise AuthorizationError(
            f"{pair.flow.name} on {registry.label(pair.backend)}: deploy {entry.deploy_id} was made under another "
            f"production token ({kept}, now {tokens.fingerprint(token)}); a rollback never changes the token",
            hint="deploy that commit again instead ('mfproj deploy' from it), which keeps the branch's token",
        )
