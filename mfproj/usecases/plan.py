"""Planning a deploy: read what is deployed, authorize against it, render what should be, and say what
would change. Nothing here writes; `apply` does, under the undo log."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from dataclasses import dataclass

from mfproj import authorization, identity, tokens
from mfproj.backends import registry
from mfproj.backends.base import Desired, Existing
from mfproj.errors import ValidationError
from mfproj.usecases.desired import Stamp, desired_for
from mfproj.usecases.parallel import parallel
from mfproj.usecases.report import Outcome, Report
from mfproj.usecases.session import Pair, Session


class _BranchToken:
    """One token per project branch: flows deployed for the first time join the branch's namespace,
    and --generate-new-token moves every flow of the branch to the same fresh token."""

    def __init__(self, scheme: str, prefix: str, seed: str | None, *, generate_new: bool) -> None:
        self.scheme, self.prefix, self.seed = scheme, prefix, seed
        self.fresh = tokens.new_token(scheme, prefix, seed) if generate_new else None

    def new(self, previous: str | None) -> str:
        if self.fresh is not None:
            return self.fresh
        if previous is None and self.seed is not None:
            return self.seed
        self.fresh = tokens.new_token(self.scheme, self.prefix, previous)
        return self.fresh


@dataclass(frozen=True)
class BranchTokens:
    """Which tokens the branch's deployments hold (any flow of the manifest, any backend), and the one
    this deploy settles on: the offered token when it is one of them, else the most recently deployed."""

    holders: dict[str, list[str]]  # token -> "Flow on Backend" of each deployment holding it
    chosen: str | None

    @property
    def split(self) -> bool:
        return len(self.holders) > 1

    def describe(self) -> str:
        return "; ".join(f"{tokens.mask(token)}: {', '.join(keys)}" for token, keys in self.holders.items())


def branch_tokens(
    found: list[tuple[Pair, Existing | None]], offered: authorization.OfferedToken | None
) -> BranchTokens:
    holders: dict[str, list[str]] = {}
    newest: dict[str, str] = {}
    for pair, existing in found:
        record = existing.record if existing else None
        if record is None or not record.production_token:
            continue
        token = record.production_token
        holders.setdefault(token, []).append(f"{pair.flow.name} on {registry.label(pair.backend)}")
        newest[token] = max(newest.get(token, ""), record.deployed_at or "")
    if not holders:
        return BranchTokens({}, None)
    if offered is not None and any(tokens.tokens_equal(offered.token, t) for t in holders):
        chosen = offered.token
    else:
        chosen = max(holders, key=lambda token: newest[token])
    return BranchTokens(holders, chosen)


@dataclass(frozen=True)
class Work:
    """One change a deploy makes."""

    pair: Pair
    existing: Existing | None
    desired: Desired
    outcome: Outcome


@dataclass(frozen=True)
class Reads:
    """What a deploy read of the branch: its selection, and the branch's other deployments (for their token).
    Equal reads mean nothing that planning depends on has changed."""

    selected: list[tuple[Pair, Existing | None]]
    others: list[tuple[Pair, Existing | None]]


def read_branch(
    pairs: list[Pair],
    others: list[Pair],
    read: Callable[[Pair], Existing | None],
    read_other: Callable[[Pair], Existing | None],
) -> Reads:
    """Reads the selection and the branch's other deployments in one batch (their round trips overlap)."""
    readers = [(read, pair) for pair in pairs] + [(read_other, pair) for pair in others]
    found = parallel(lambda item: item[0](item[1]), readers)
    return Reads(
        list(zip(pairs, found[: len(pairs)], strict=True)), list(zip(others, found[len(pairs) :], strict=True))
    )


@dataclass
class Plan:
    report: Report
    work: list[Work]
    token: str
    branch: BranchTokens
    members: list[Pair]  # the deployments this deploy acts on (the selection, plus any it must move)
    reads: Reads  # what it was planned from: under the locks, a fresh read equal to it needs no new plan


def plan(
    session: Session,
    reads: Reads,
    tags_by_flow: dict[str, tuple[str, ...]],
    *,
    generate_new: bool,
    offered: authorization.OfferedToken | None,
    dry_run: bool,
    validate: bool = True,
) -> Plan:
    """From what is deployed: settles the branch's one token, authorizes and renders; returns the report,
    the changes to make, and the branch's token. The branch's other deployments are acted on only to move
    them to the branch's one token."""
    settled = branch_tokens([*reads.selected, *reads.others], offered)
    members = list(reads.selected)
    for pair, existing in reads.others:
        record = existing.record if existing else None
        if record and record.production_token and (generate_new or record.production_token != settled.chosen):
            members.append((pair, existing))
    chosen_pairs = [pair for pair, _ in members]
    existing_list = [existing for _, existing in members]
    decisions = authorize_all(session, chosen_pairs, existing_list, settled, generate_new, offered)
    desired_list = _desired(session, chosen_pairs, decisions, tags_by_flow)
    deployed_tokens = set(settled.holders)
    secrets = {d.token for d in decisions} | deployed_tokens | ({offered.token} if offered else set())
    outcomes = [
        outcome_of(session, pair, existing, desired, decision, secrets if dry_run else None)
        for pair, existing, desired, decision in zip(chosen_pairs, existing_list, desired_list, decisions, strict=True)
    ]
    if validate:
        _refused_definitions(session, chosen_pairs, desired_list, outcomes)
    final_token = decisions[0].token
    target = session.target
    report = Report(
        project=target.project,
        branch=target.branch,
        token_prefix=target.token_prefix,
        namespace=f"production:{tokens.mask(final_token)}",
        dry_run=dry_run,
        outcomes=outcomes,
        token_changed=any(d.is_new for d in decisions) and bool(deployed_tokens),
        split=settled.describe() if settled.split else None,
    )
    work = [
        Work(p, e, d, o)
        for p, e, d, o in zip(chosen_pairs, existing_list, desired_list, outcomes, strict=True)
        if o.action != "unchanged"
    ]
    return Plan(report, work, final_token, settled, chosen_pairs, reads)


def _refused_definitions(
    session: Session, pairs: list[Pair], desired_list: list[Desired], outcomes: list[Outcome]
) -> None:
    """A definition the service would refuse stops the deploy here, before any lock or write (and in a
    dry run): each backend's own check (`Backend.validate`) of every definition about to be written."""
    written = [
        (pair, desired)
        for pair, desired, outcome in zip(pairs, desired_list, outcomes, strict=True)
        if "definition" in outcome.changes
    ]

    def check(item: tuple[Pair, Desired]) -> list[str]:
        return session.backend(item[0].backend).validate(item[1])

    # The first alone: an endpoint without the check is found out by one request, not one per flow.
    found = [check(written[0]), *parallel(check, written[1:])] if written else []
    refused = [(pair, problems) for (pair, _), problems in zip(written, found, strict=True) if problems]
    if refused:
        pair, problems = refused[0]
        others = f" (and {len(refused) - 1} more flow(s))" if len(refused) > 1 else ""
        raise ValidationError(
            f"{pair.flow.name}: {registry.label(pair.backend)} would refuse its definition: "
            + "; ".join(problems)
            + others,
            hint=f"fix {pair.flow.template(pair.backend)}; nothing was deployed",
        )


def authorize_all(
    session: Session,
    pairs: list[Pair],
    existing_list: list[Existing | None],
    settled: BranchTokens,
    generate_new: bool,
    offered: authorization.OfferedToken | None,
) -> list[authorization.Decision]:
    """The authorization rules for each deployment. One branch, one token: flows deployed for the first
    time join the token already deployed on the branch (on any backend, for any flow); a deployment
    holding another token is moved to it; an offered token is only ever compared with a deployed one,
    never adopted."""
    target = session.target
    branch_token = _BranchToken(
        session.manifest.token_scheme,
        target.token_prefix,
        settled.chosen,
        generate_new=generate_new,
    )
    decisions = []
    name_only: dict[str, list[str]] = {}
    for pair, existing in zip(pairs, existing_list, strict=True):
        record = existing.record if existing else None
        name = existing.name if existing else session.backend(pair.backend).deployed_name(pair.names)
        decision = authorization.authorize(
            existing=authorization.OwnerRecord(record.owner, record.production_token, record.principal)
            if record
            else None,
            caller=session.caller(pair.backend),
            offered=offered,
            generate_new=generate_new,
            new=branch_token.new,
            deployment_name=f"{pair.flow.name} ({name})",
            branch_options=identity.branch_options(target.branch),
            branch_token=settled.chosen,
        )
        if decision.warning:
            name_only.setdefault((record.owner or "") if record else "", []).append(f"{pair.flow.name} ({name})")
        decisions.append(decision)
    for owner, names in name_only.items():  # one line, however many deployments
        session.notice_once(authorization.NAME_ONLY.format(owner=owner, names=", ".join(names)))
    return decisions


def _desired(
    session: Session,
    pairs: list[Pair],
    decisions: list[authorization.Decision],
    tags_by_flow: dict[str, tuple[str, ...]],
) -> list[Desired]:
    target = session.target
    principals: dict[str, str | None] = {}
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    desired_list = []
    for pair, decision in zip(pairs, decisions, strict=True):
        if pair.backend not in principals:
            principals[pair.backend] = session.backend(pair.backend).principal()
        stamp = Stamp(
            session.user,
            decision.token,
            tags_by_flow[pair.flow.name],
            principals[pair.backend],
            now,
            session.origin(),
            deploy_id=session.deploy_id(),
        )
        desired_list.append(desired_for(session, pair, target.branch, target.is_production, stamp))
    return desired_list


def outcome_of(
    session: Session,
    pair: Pair,
    existing: Existing | None,
    desired: Desired,
    decision: authorization.Decision,
    diff_secrets: set[str] | None,
) -> Outcome:
    """What would change; with `diff_secrets` (a dry run), the masked diff of the whole document."""
    backend = session.backend(pair.backend)
    if existing is None:
        action, changes = "create", ["definition", "record"] + (["schedule"] if desired.schedule else [])
    else:
        changes = backend.changes(existing, desired)
        action = "update" if changes else "unchanged"
    diff = None
    if diff_secrets is not None and "definition" in changes:
        diff = tokens.mask_text(backend.definition_diff(existing, desired), diff_secrets)
    return Outcome(
        flow=pair.flow.name,
        backend=pair.backend,
        name=backend.deployed_name(pair.names),
        action=action,
        changes=changes,
        diff=diff,
        reason=decision.reason,
        previous_owner=existing.record.owner if existing and existing.record else None,
    )
