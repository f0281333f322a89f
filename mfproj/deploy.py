"""The use-cases: deploy, delete and trigger. Resolve names, authorize, render, apply.

Backend-neutral: everything here works through `backends.base.Backend`. All checks that need no
network (names, tags, templates) run before the first request. A deploy is all or nothing across
its flows: if one fails, what the others changed is put back, and the keyring is not touched.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import difflib
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mfproj import __version__, identity, interrupts, naming, project, render, tokens
from mfproj.backends import AVAILABLE, LABELS, create
from mfproj.backends.base import Backend, DeploymentRecord, Desired, Existing, Run
from mfproj.errors import (
    BackendError,
    ConflictError,
    InterruptedByUser,
    MfprojError,
    NotFoundError,
    PartiallyAppliedError,
    RunFailedError,
    UsageError,
    ValidationError,
)
from mfproj.holder import Holder
from mfproj.manifest import Flow, Manifest
from mfproj.tags import TagError, validate_tags
from mfproj.transaction import Stopped, UndoLog

Progress = Callable[[str, str, str], None]  # (flow, backend, what is happening)
MAX_WORKERS = 8


def _quiet(flow: str, backend: str, message: str) -> None:
    pass


@dataclass
class Outcome:
    flow: str
    backend: str
    name: str
    action: str  # create, update, unchanged, delete
    changes: list[str] = field(default_factory=list)
    diff: str | None = None
    reason: str = ""
    previous_owner: str | None = None
    running: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "flow": self.flow,
            "backend": self.backend,
            "name": self.name,
            "action": self.action,
            "changes": self.changes,
            "authorization": self.reason,
            "previous_owner": self.previous_owner,
            **({"running_executions": self.running} if self.running is not None else {}),
            **({"diff": self.diff} if self.diff is not None else {}),
        }


@dataclass
class Report:
    project: str
    branch: str
    token_prefix: str
    namespace: str  # masked
    dry_run: bool
    outcomes: list[Outcome]
    token_changed: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "branch": self.branch,
            "token_prefix": self.token_prefix,
            "namespace": self.namespace,
            "dry_run": self.dry_run,
            "token_changed": self.token_changed,
            "deployments": [o.as_json() for o in self.outcomes],
        }


@dataclass(frozen=True)
class TokenOptions:
    authorize: str | None = None
    authorize_file: Path | None = None
    generate_new_token: bool = False


@dataclass
class Session:
    """What every use-case needs: the manifest, the target branch, the caller, the backends."""

    manifest: Manifest
    target: identity.Target
    user: str
    env: Mapping[str, str]
    profile: str | None = None
    keyring: tokens.Keyring | None = None
    progress: Progress = _quiet
    notice: Callable[[str], None] = lambda message: None  # warnings for the person running the command
    say: Callable[[str], None] = lambda message: None  # what the command is doing (waiting for a lock)
    _backends: dict[str, Backend] = field(default_factory=dict)

    def backend(self, name: str) -> Backend:
        if name not in self._backends:
            self._backends[name] = create(name, self.manifest, profile=self.profile, env=self.env)
        return self._backends[name]

    def get_keyring(self) -> tokens.Keyring:
        if self.keyring is None:
            self.keyring = tokens.Keyring(tokens.keyring_home(self.env))
        return self.keyring


def open_session(
    manifest: Manifest,
    *,
    branch: str | None,
    production: bool | None,
    profile: str | None = None,
    env: Mapping[str, str] | None = None,
    progress: Progress = _quiet,
    notice: Callable[[str], None] = lambda message: None,
    say: Callable[[str], None] = lambda message: None,
) -> Session:
    env = os.environ if env is None else env
    target = identity.select_target(manifest.project, branch=branch, production=production, env=env)
    user = identity.require_user(env)
    return Session(
        manifest=manifest,
        target=target,
        user=user,
        env=env,
        profile=profile,
        progress=progress,
        notice=notice,
        say=say,
    )


def offer_for(session: Session, options: TokenOptions) -> tokens.OfferedToken | None:
    """The token the caller offers for the session's branch; another branch's is refused or ignored
    (see tokens.offered_token). Called before any request."""
    target = session.target
    keyring = session.get_keyring()
    return tokens.offered_token(
        target=tokens.BranchRef(target.project, target.branch, target.token_prefix),
        authorize=options.authorize,
        authorize_file=options.authorize_file,
        env=session.env,
        keyring=keyring,
        owner_of=tokens.branch_finder(target.project, session.user, keyring),
        warn=session.notice,
    )


# --- selection and checks before any request ----------------------------------------------------


@dataclass(frozen=True)
class Pair:
    flow: Flow
    backend: str
    names: naming.FlowNames


def select_pairs(session: Session, flows: list[str] | None, backends: list[str] | None) -> list[Pair]:
    """(flow, backend) pairs to act on; names are checked against the backends' rules first."""
    manifest, target = session.manifest, session.target
    chosen = manifest.select(flows)
    prefix = manifest.state_machine_prefix(session.env)
    project.check_collisions(manifest, target, sfn_prefix=prefix)
    pairs = []
    for flow in chosen:
        available = flow.backends
        wanted = [b for b in (backends or [b for b in available if b in AVAILABLE]) if b in available]
        if flows and backends and not wanted:
            raise UsageError(
                f"flow {flow.name!r} has no template for {', '.join(LABELS[b] for b in backends)}",
                hint=f'add {backends[0]} = "path/to/template" to its [[flows]] table',
            )
        names = naming.flow_names(manifest.project, target.branch, flow.name, state_machine_prefix=prefix)
        for backend in wanted:
            problems = project.flow_problems(manifest, flow, names, branch=target.branch, backends=[backend])
            if problems:
                first = problems[0]
                raise ValidationError(f"{flow.name}: {first.message()}", hint=first.hint)
            pairs.append(Pair(flow, backend, names))
    if not pairs:
        which = ", ".join(LABELS[b] for b in backends) if backends else "any backend"
        raise UsageError(
            f"no selected flow has a template for {which}",
            hint='add step_functions = "…" or argo_workflows = "…" to a [[flows]] table',
        )
    return pairs


def _deployment_tags(flow: Flow, extra: list[str]) -> tuple[str, ...]:
    try:
        return validate_tags([*flow.tags, *extra], where="--tag", user_tags=True)
    except TagError as exc:
        raise ValidationError(f"{exc.key}: {exc.rule}") from None


def _parallel(function: Callable[[Pair], Any], pairs: list[Pair], log: UndoLog | None = None) -> list[Any]:
    """Runs `function` over pairs concurrently; re-raises the first failure after all have finished.

    With a `log`, the first failure (or Ctrl-C / SIGTERM in the main thread) stops the log, so the
    workers start no new write; the main thread waits for the writes in flight before raising.
    """
    if len(pairs) <= 1 and log is None:
        return [function(pair) for pair in pairs]
    from concurrent.futures import FIRST_EXCEPTION, wait

    pool = ThreadPoolExecutor(max_workers=max(1, min(MAX_WORKERS, len(pairs))))
    futures: list[Any] = []
    interrupted: BaseException | None = None
    try:
        for pair in pairs:
            futures.append(pool.submit(function, pair))
        pending = set(futures)
        while pending:  # short waits, so that Ctrl-C reaches the main thread at once
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_EXCEPTION)
            if log is not None and any(f.exception() is not None for f in done):
                log.stop()
    except KeyboardInterrupt as exc:
        interrupted = exc
        if log is not None:
            log.stop()
    with interrupts.deferred(reraise=False) as late:
        wait(futures)  # the writes in flight land (or fail) before anything is rolled back
        pool.shutdown()
    interrupted = interrupted or (KeyboardInterrupt() if late else None)
    failures = [f.exception() for f in futures if f.exception() is not None]
    first = next((e for e in failures if not isinstance(e, Stopped)), failures[0] if failures else None)
    if interrupted is not None and (first is not None or log is None):
        raise interrupted
    if first is not None:
        raise first
    if interrupted is not None:
        raise _AllLanded() from interrupted
    return [f.result() for f in futures]


class _AllLanded(KeyboardInterrupt):
    """Interrupted after every write had landed: finish (the keyring), then report the interrupt."""


def run_tags_for(session: Session, backend: Backend, token: str) -> list[str]:
    target = session.target
    return [
        f"project:{target.project}",
        f"project_branch:{target.branch}",
        f"production:{token}",
        f"runtime:{backend.runtime}",
    ]


def lock_timeout(env: Mapping[str, str]) -> float:
    """How long a change waits for another holder's lock: MFPROJ_LOCK_TIMEOUT seconds (default 120)."""
    text = env.get("MFPROJ_LOCK_TIMEOUT", "").strip() or "120"
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (0 <= value <= 86_400):  # also refuses nan
        raise ValidationError(
            f"MFPROJ_LOCK_TIMEOUT={text!r} is not a number of seconds from 0 to 86400",
            hint="for example MFPROJ_LOCK_TIMEOUT=300",
        )
    return value


@contextlib.contextmanager
def _locked(session: Session, pairs: list[Pair], *, enabled: bool = True) -> Iterator[None]:
    """Holds every pair's write lock (taken concurrently) for the duration of a change."""
    if not enabled:
        yield
        return
    taken: list[tuple[Backend, Any]] = []
    holder, timeout = Holder.current(session.user), lock_timeout(session.env)

    def acquire(pair: Pair) -> None:
        backend = session.backend(pair.backend)
        handle = backend.acquire(pair.names, holder=holder, timeout=timeout, waiting=session.say)
        taken.append((backend, handle))  # list.append is atomic under the GIL

    try:
        _parallel(acquire, pairs)
        yield
    finally:
        with interrupts.deferred():  # a second Ctrl-C must not leave a lock behind
            for backend, handle in taken:
                try:
                    backend.release(handle)
                except MfprojError as exc:
                    session.notice(
                        f"{exc.message}; the next mfproj run on this host breaks it at once "
                        "(elsewhere: 'mfproj unlock FLOW')"
                    )


def _identity_check(existing: Existing, pair: Pair, session: Session, adopt: bool) -> None:
    record = existing.record
    if record is None:
        if not adopt:
            raise ConflictError(
                f"a {LABELS[pair.backend]} deployment named {existing.name} exists but was not made by mfproj "
                "or Metaflow (it records no owner or production token)",
                hint="pass --adopt to take it over, or rename the flow or branch",
            )
        return
    found = record.identity()
    if found is not None:
        naming.check_same_deployment(
            pair.backend,
            existing.name,
            existing=found,
            wanted=(session.target.project, session.target.branch, pair.flow.name),
        )


class _BranchToken:
    """One token per project branch: flows deployed for the first time join the branch's namespace,
    and --generate-new-token moves every flow of the run to the same fresh token."""

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


# --- deploy -------------------------------------------------------------------------------------


def deploy(
    session: Session,
    *,
    flows: list[str] | None = None,
    backends: list[str] | None = None,
    token_options: TokenOptions = TokenOptions(),
    extra_tags: list[str] | None = None,
    dry_run: bool = False,
    adopt: bool = False,
) -> Report:
    pairs = select_pairs(session, flows, backends)
    tags_by_flow = {pair.flow.name: _deployment_tags(pair.flow, extra_tags or []) for pair in pairs}
    for pair in pairs:  # templates parse before any request; placeholders are checked with a stand-in token
        session.backend(pair.backend).render(
            getattr(pair.flow, pair.backend), _context(session, pair, "stand-in", pair.names)
        )

    def read(pair: Pair) -> Existing | None:
        session.progress(pair.flow.name, pair.backend, "reading")
        existing = session.backend(pair.backend).read(pair.names)
        if existing is not None:
            _identity_check(existing, pair, session, adopt)
        return existing

    # Plan without the lock first: an unchanged deployment (the common redeploy) and a refused one need
    # no lock. A change is planned again under the lock, from a fresh read, and then applied.
    offered = offer_for(session, token_options)
    report, work, token = _plan(
        session, pairs, read, tags_by_flow, token_options=token_options, offered=offered, dry_run=dry_run
    )
    if dry_run:
        return report
    interrupted = False
    if work:
        with _locked(session, pairs):
            report, work, token = _plan(
                session, pairs, read, tags_by_flow, token_options=token_options, offered=offered, dry_run=False
            )
            interrupted = _apply(session, work, token)
    for outcome in report.outcomes:
        if outcome.action == "unchanged":
            session.progress(outcome.flow, outcome.backend, "unchanged")
    # Only now, with every change in place, does the keyring learn the token (the reference stores it first).
    with interrupts.deferred():
        _remember(session, token, source="deploy")
    if interrupted:
        raise InterruptedByUser(
            "interrupted after every change had landed: "
            + ", ".join(
                f"{o.flow} on {LABELS[o.backend]} {o.action}d" for o in report.outcomes if o.action != "unchanged"
            )
            + "; the production token is in your keyring",
            hint="nothing to undo; run 'mfproj deploy --dry-run' to see that all is in place",
        )
    return report


def _remember(session: Session, token: str, *, source: str) -> None:
    target = session.target
    keyring = session.get_keyring()
    if keyring.load_token(target.token_prefix) != token:
        keyring.store(target.token_prefix, token, project=target.project, branch=target.branch, source=source)


_Work = list[tuple[Pair, Existing | None, Desired, Outcome]]


def _plan(
    session: Session,
    pairs: list[Pair],
    read: Callable[[Pair], Existing | None],
    tags_by_flow: dict[str, tuple[str, ...]],
    *,
    token_options: TokenOptions,
    offered: tokens.OfferedToken | None,
    dry_run: bool,
) -> tuple[Report, _Work, str]:
    """Reads, authorizes and renders; returns the report, the changes to make, and the branch's token."""
    manifest, target = session.manifest, session.target
    existing_list: list[Existing | None] = _parallel(read, pairs)
    deployed_tokens = [e.record.production_token for e in existing_list if e and e.record and e.record.production_token]
    # One branch, one token: flows deployed for the first time join the token already deployed on the
    # branch; an offered token is only ever compared with a deployed one, never adopted.
    seed = deployed_tokens[0] if deployed_tokens else None
    branch_token = _BranchToken(
        manifest.token_scheme, target.token_prefix, seed, generate_new=token_options.generate_new_token
    )
    decisions = []
    for pair, existing in zip(pairs, existing_list, strict=True):
        record = existing.record if existing else None
        decisions.append(
            tokens.authorize(
                existing=tokens.Deployment(record.owner, record.production_token) if record else None,
                caller=session.user,
                offered=offered,
                generate_new=token_options.generate_new_token,
                new=branch_token.new,
                deployment_name=f"{pair.flow.name} ({existing.name if existing else pair.names.project_flow_name})",
                branch_options=identity.branch_options(target.branch),
            )
        )

    principal_cache: dict[str, str | None] = {}
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    desired_list = []
    for pair, decision in zip(pairs, decisions, strict=True):
        backend = session.backend(pair.backend)
        if pair.backend not in principal_cache:
            principal_cache[pair.backend] = _principal(backend)
        context = _context(session, pair, decision.token, pair.names)
        definition = backend.render(getattr(pair.flow, pair.backend), context)
        record = DeploymentRecord(
            owner=session.user,
            production_token=decision.token,
            project=target.project,
            branch=target.branch,
            flow=pair.flow.name,
            project_flow_name=pair.names.project_flow_name,
            deployed_at=now,
            mfproj_version=__version__,
            principal=principal_cache[pair.backend],
            tags=tags_by_flow[pair.flow.name],
        )
        metadata = {
            "namespace": f"production:{decision.token}",
            "project": target.project,
            "branch": target.branch,
            "flow": pair.flow.name,
            "tags": [*run_tags_for(session, backend, decision.token), *record.tags],
            "triggered_by": {"type": "schedule"},
        }
        desired_list.append(Desired(pair.flow.name, pair.names, definition, record, pair.flow.schedule, metadata))

    secrets = {d.token for d in decisions} | {t for t in deployed_tokens} | ({offered.token} if offered else set())
    outcomes = []
    for pair, existing, desired, decision in zip(pairs, existing_list, desired_list, decisions, strict=True):
        backend = session.backend(pair.backend)
        if existing is None:
            action, changes = "create", ["definition", "record"] + (["schedule"] if desired.schedule else [])
        else:
            changes = backend.changes(existing, desired)
            action = "update" if changes else "unchanged"
        diff = None
        if dry_run and "definition" in changes:
            before = render.canonical(backend.deployed_document(existing)).splitlines() if existing else []
            after = render.canonical(backend.document(desired)).splitlines()
            diff_lines = difflib.unified_diff(before, after, "deployed", "new", lineterm="")
            diff = tokens.mask_text("\n".join(diff_lines), secrets)
        outcomes.append(
            Outcome(
                flow=pair.flow.name,
                backend=pair.backend,
                name=backend.deployed_name(pair.names),
                action=action,
                changes=changes,
                diff=diff,
                reason=decision.reason,
                previous_owner=existing.record.owner if existing and existing.record else None,
            )
        )

    final_token = decisions[0].token
    report = Report(
        project=target.project,
        branch=target.branch,
        token_prefix=target.token_prefix,
        namespace=f"production:{tokens.mask(final_token)}",
        dry_run=dry_run,
        outcomes=outcomes,
        token_changed=any(d.is_new for d in decisions) and bool(deployed_tokens),
    )
    work = [
        (p, e, d, o)
        for p, e, d, o in zip(pairs, existing_list, desired_list, outcomes, strict=True)
        if o.action != "unchanged"
    ]
    return report, work, final_token


def _key(pair: Pair) -> str:
    return f"{pair.flow.name} on {LABELS[pair.backend]}"


def _apply(session: Session, work: _Work, token: str) -> bool:
    """All or nothing. When a change fails (or Ctrl-C / SIGTERM comes), the undo log is rolled back,
    every deployment of the run is read back and compared with what was there before, and the error
    says exactly what is not back. Returns True when interrupted after every write had landed."""
    log = UndoLog()

    def apply(item: tuple[Pair, Existing | None, Desired, Outcome]) -> None:
        pair, existing, desired, outcome = item
        log.check()
        session.progress(pair.flow.name, pair.backend, "creating" if existing is None else "updating")
        session.backend(pair.backend).apply(desired, existing, log, _key(pair))
        session.progress(pair.flow.name, pair.backend, f"{outcome.action}d")

    try:
        _parallel(apply, work, log)  # type: ignore[arg-type]
    except _AllLanded:
        return True
    except BaseException as exc:
        with interrupts.deferred(reraise=False):  # the rollback runs to its end
            touched = log.keys()
            states = _roll_back(session, work, log)
            if any(state.holds(token) for state in states):
                _remember(session, token, source="deploy (partly applied)")
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


def _roll_back(session: Session, work: _Work, log: UndoLog) -> list[ReadBack]:
    touched = log.keys()
    result = log.rollback()

    def read_back(item: tuple[Pair, Existing | None, Desired, Outcome]) -> ReadBack:
        pair, before, desired, outcome = item
        backend = session.backend(pair.backend)
        failed = result.failed.get(_key(pair), [])
        try:
            after = backend.read(pair.names)
        except MfprojError as exc:
            return ReadBack(pair, outcome.name, "unknown", f"reading it back: {exc.message}", unreadable=True)
        if backend.fingerprint(after) == backend.fingerprint(before):
            return ReadBack(pair, outcome.name, "put back", after=after)
        changes = set(backend.changes(after, desired)) if after is not None else {"definition", "record"}
        if _key(pair) not in touched and changes & {"definition", "record"}:
            # No write of this run landed here, and what is there is not this run's: someone else changed it.
            return ReadBack(pair, outcome.name, "put back", after=after)
        if "definition" not in changes:
            state = "new definition"
        elif after is not None and before is not None and backend.definition_of(after) == backend.definition_of(before):
            state = "old definition"
        else:
            state = "unknown"
        return ReadBack(pair, outcome.name, state, failed[-1] if failed else "", after=after)

    return [read_back(item) for item in work]


def _failure(exc: BaseException, states: list[ReadBack], session: Session, touched: list[str]) -> BaseException:
    interrupted = isinstance(exc, KeyboardInterrupt)
    cause = "interrupted" if interrupted else (exc.message if isinstance(exc, MfprojError) else str(exc))
    not_back = [s for s in states if s.state != "put back"]
    if not not_back:
        rolled = [key for key in touched if key in {_key(s.pair) for s in states}]
        text = f"{cause}; nothing was changed" + (f" (rolled back {', '.join(rolled)})" if rolled else "")
        if interrupted:
            return InterruptedByUser(text, hint="run the command again when you are ready")
        if isinstance(exc, MfprojError):
            return type(exc)(text, hint=exc.hint)
        return exc
    listing = "; ".join(f"{_key(s.pair)} ({s.name}): {s.state}" for s in not_back)
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


def _principal(backend: Backend) -> str | None:
    getter = getattr(backend, "principal", None)
    return getter() if callable(getter) else None


def _context(session: Session, pair: Pair, token: str, names: naming.FlowNames) -> render.Context:
    backend = session.backend(pair.backend)
    return render.Context(
        project=session.target.project,
        branch=session.target.branch,
        flow=pair.flow.name,
        project_flow_name=names.project_flow_name,
        deployed_name=backend.deployed_name(names),
        namespace=f"production:{token}",
        owner=session.user,
        is_production=session.target.is_production,
    )


# --- delete -------------------------------------------------------------------------------------


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

    found = _parallel(read, pairs)
    missing = [
        f"{p.flow.name} ({LABELS[p.backend]}: {p.names.project_flow_name})"
        for p, e in zip(pairs, found, strict=True)
        if e is None
    ]
    if missing:
        raise NotFoundError(f"not deployed in {session.target.branch}: {', '.join(missing)}")
    plans = []
    for pair, existing in zip(pairs, found, strict=True):
        assert existing is not None
        _identity_check(existing, pair, session, adopt=False)
        record = existing.record
        assert record is not None
        decision = tokens.authorize(
            existing=tokens.Deployment(record.owner, record.production_token),
            caller=session.user,
            offered=offered,
            generate_new=False,
            new=lambda previous: "",  # a deletion never makes a token
            deployment_name=f"{pair.flow.name} ({existing.name})",
            branch_options=identity.branch_options(session.target.branch),
        )
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
                    reason=decision.reason,
                    previous_owner=record.owner,
                    running=running,
                ),
            )
        )
    return plans


def delete(session: Session, plans: list[tuple[Pair, Existing, Outcome]]) -> None:
    pairs = [pair for pair, _, _ in plans]
    with _locked(session, pairs):
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
                deleted.append(f"{pair.flow.name} on {LABELS[pair.backend]}")
                session.progress(pair.flow.name, pair.backend, "deleted")
        except BaseException as exc:
            if not deleted:
                raise
            # A deletion cannot be undone: say exactly what is gone and what is left.
            left = [_key(pair) for pair, _, _ in plans if _key(pair) not in deleted]
            cause = "interrupted" if isinstance(exc, KeyboardInterrupt) else str(exc)
            flows = " ".join(dict.fromkeys(pair.flow.name for pair, _, _ in plans if _key(pair) in left))
            options = identity.branch_options(session.target.branch)
            text = f"{cause}; deleted {', '.join(deleted)}, but not {', '.join(left)}"
            hint = f"run 'mfproj delete {flows}{' ' + options if options else ''} --yes' to delete the rest"
            error = InterruptedByUser if isinstance(exc, KeyboardInterrupt) else PartiallyAppliedError
            raise error(text, hint=hint) from exc


# --- unlock -------------------------------------------------------------------------------------


@dataclass
class Unlocked:
    flow: str
    backend: str
    name: str
    held_by: str | None  # None: there was no lock
    authorization: str

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
    found = _parallel(lambda pair: session.backend(pair.backend).read(pair.names), pairs)
    results = []
    for pair, existing in zip(pairs, found, strict=True):
        reason = "not deployed: no token guards it"
        if existing is not None and existing.record is not None and existing.record.production_token is None:
            reason = "no token guards it"
        elif existing is not None:
            _identity_check(existing, pair, session, adopt=False)
            record = existing.record
            assert record is not None
            reason = tokens.authorize(
                existing=tokens.Deployment(record.owner, record.production_token),
                caller=session.user,
                offered=offered,
                generate_new=False,
                new=lambda previous: "",  # unlocking never makes a token
                deployment_name=f"{pair.flow.name} ({existing.name})",
                branch_options=identity.branch_options(session.target.branch),
            ).reason
        backend = session.backend(pair.backend)
        results.append(Unlocked(pair.flow.name, pair.backend, backend.deployed_name(pair.names), None, reason))
    for result, pair in zip(results, pairs, strict=True):
        result.held_by = session.backend(pair.backend).unlock(pair.names)
    return results


# --- trigger ------------------------------------------------------------------------------------


@dataclass
class Triggered:
    flow: str
    branch: str
    backend: str
    name: str
    run: Run
    tags: list[str]

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run.run_id,
            "flow": self.flow,
            "branch": self.branch,
            "backend": self.backend,
            "deployment": self.name,
            "status": self.run.status,
            "started_at": self.run.started_at,
            "finished_at": self.run.finished_at,
            "tags": [t if not t.startswith("production:") else "production:" + tokens.mask(t[11:]) for t in self.tags],
        }


def parse_params(params: list[str]) -> dict[str, str]:
    result = {}
    for item in params:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise ValidationError(f"--param {item!r} is not KEY=VALUE")
        result[key] = value
    return result


def trigger(
    session: Session,
    *,
    flow: str,
    backend_name: str | None = None,
    tags: list[str] | None = None,
    params: dict[str, str] | None = None,
    input_document: dict[str, Any] | None = None,
) -> Triggered:
    selected = select_pairs(session, [flow], [backend_name] if backend_name else None)
    if len(selected) > 1:
        raise UsageError(
            f"{flow} has templates for more than one backend; choose one with --backend",
            hint="--backend step-functions or --backend argo-workflows",
        )
    pair = selected[0]
    try:
        trigger_tags = list(validate_tags(tags or [], where="--tag", user_tags=True))
    except TagError as exc:
        raise ValidationError(f"{exc.key}: {exc.rule}") from None
    backend = session.backend(pair.backend)
    existing = backend.read(pair.names)
    if existing is None:
        raise NotFoundError(
            f"{flow} is not deployed in {session.target.branch} on {LABELS[pair.backend]}",
            hint="run 'mfproj deploy' first",
        )
    record = existing.record
    token = record.production_token if record else None
    if not token:
        raise ConflictError(f"{existing.name} records no production token, so its runs have no namespace")
    assert record is not None
    run_tags = list(
        dict.fromkeys([*run_tags_for(session, backend, token), f"user:{session.user}", *record.tags, *trigger_tags])
    )
    user_input = dict(input_document or {})
    if "mfproj" in user_input:
        raise ValidationError("the input document must not have a top-level key 'mfproj' (mfproj writes it)")
    payload = {
        **user_input,
        "Parameters": json.dumps(params or {}),
        "mfproj": {
            "namespace": f"production:{token}",
            "project": session.target.project,
            "branch": session.target.branch,
            "flow": flow,
            "tags": run_tags,
            "triggered_by": {"type": "user", "name": session.user},
        },
    }
    run = backend.start(existing, payload, run_tags)
    return Triggered(flow, session.target.branch, pair.backend, existing.name, run, run_tags)


def wait(session: Session, triggered: Triggered, *, timeout: float, poll: Callable[[Run], None] | None = None) -> Run:
    """Follows a run to its end; raises RunFailedError (exit 7) on failure, abort or timeout."""
    backend = session.backend(triggered.backend)
    pair = select_pairs(session, [triggered.flow], [triggered.backend])[0]
    existing = backend.read(pair.names)
    if existing is None:
        raise NotFoundError(f"{triggered.name} disappeared while waiting for {triggered.run.run_id}")
    deadline = time.monotonic() + timeout
    delay = 0.2
    run = triggered.run
    while True:
        run = backend.run(existing, triggered.run.run_id)
        if poll:
            poll(run)
        if run.finished:
            break
        if time.monotonic() + delay > deadline:
            raise RunFailedError(
                f"{run.run_id} is still {run.status} after {timeout:g} s",
                hint="it goes on running; raise --timeout, or look at it later",
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 5.0)
    triggered.run = run
    if run.status != "SUCCEEDED":
        cause = run.details.get("error") or ""
        raise RunFailedError(f"{run.run_id} ended {run.status}" + (f": {cause}" if cause else ""))
    return run


__all__ = ["BackendError", "Report", "Session", "delete", "deploy", "open_session", "plan_delete", "trigger", "wait"]
