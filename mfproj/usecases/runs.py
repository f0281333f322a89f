"""Runs, tags and namespaces: which runs `mfproj runs` shows, newest first.

A run is in namespace N when N is among its tags (the reference's rule); tags combine with AND.
The default namespace is the production namespace of the selected branch's deployment, read from
the deployment itself. Listing streams: sources are read page by page and merged lazily, so memory
does not grow with history, and reading stops at `--limit`.
"""

from __future__ import annotations

import datetime as _dt
import heapq
import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from mfproj import tokens
from mfproj.backends import registry
from mfproj.backends.base import Existing, Run, RunFilter, iso
from mfproj.errors import NotFoundError, ValidationError
from mfproj.tags import TagError, validate_tags
from mfproj.usecases.parallel import parallel
from mfproj.usecases.session import Pair, Session, select_pairs

STATUSES = registry.RUN_STATUSES
_DURATION = re.compile(r"^(\d+)\s*([smhdw])\Z")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
SYSTEM_TAG_PREFIXES = (
    "project:",
    "project_branch:",
    "production:",
    "runtime:",
    "user:",
    "python_version:",
    "metaflow_version:",
    "date:",
)


@dataclass(frozen=True)
class RunRow:
    """A run as `mfproj runs` shows it."""

    flow: str
    branch: str | None
    backend: str  # a registry name, or metaflow_local
    run: Run
    source: Existing | None = None  # the deployment, to complete a partial run
    gone: bool = False  # its deployment is gone (torn down while it ran)

    def as_json(self, *, parameters: bool = False) -> dict[str, Any]:
        run = self.run
        document: dict[str, Any] = {
            "run_id": run.run_id,
            "flow": self.flow,
            "branch": self.branch,
            "backend": self.backend,
            "status": run.status,
            "started_at": iso(run.started_at),
            "finished_at": iso(run.finished_at),
            "tags": tokens.mask_tags(run.tags),
            "deployment": run.deployment or None,
        }
        if self.gone:
            document["deployment_gone"] = True
        if parameters:
            document["parameters"] = run.parameters
        return document


def user_tags(tags: Iterable[str]) -> list[str]:
    return [t for t in tags if not t.startswith(SYSTEM_TAG_PREFIXES)]


def parse_since(text: str | None, *, now: _dt.datetime | None = None) -> _dt.datetime | None:
    """`7d`, `12h`, `30m`, `2w`, `90s`, or an ISO date or time (UTC when no zone is given)."""
    if not text:
        return None
    now = now or _dt.datetime.now(_dt.timezone.utc)
    match = _DURATION.match(text.strip())
    if match:
        try:
            return now - _dt.timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
        except OverflowError:
            raise ValidationError(
                f"--since {text!r} reaches back before the year 1", hint="for example --since 90d"
            ) from None
    try:
        moment = _dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(
            f"--since {text!r} is neither a duration (7d, 12h, 30m, 2w) nor an ISO date (2026-11-01)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=_dt.timezone.utc)


def parse_statuses(values: list[str] | None) -> frozenset[str] | None:
    if not values:
        return None
    result = set()
    for value in values:
        for part in value.split(","):
            status = part.strip().upper().replace("-", "_")
            if status not in STATUSES:
                raise ValidationError(f"--status {part!r} is not one of {', '.join(s.lower() for s in STATUSES)}")
            result.add(status)
    return frozenset(result)


def check_tags(tags: list[str]) -> tuple[str, ...]:
    try:
        return validate_tags(tags, where="--tag")
    except TagError as exc:
        raise ValidationError(f"{exc.key}: {exc.rule}") from None


def merge_newest_first(streams: list[Iterator[RunRow]], limit: int) -> Iterator[RunRow]:
    """Merges streams that are each newest first; reads only as far as the first `limit` rows need. The
    first page of every stream is read concurrently (a merge needs them all before its first row)."""
    streams = _first_pages_at_once(streams)

    def key(row: RunRow) -> float:
        started = row.run.started_at
        if started is None:
            return 0.0
        if started.tzinfo is None:
            started = started.replace(tzinfo=_dt.timezone.utc)
        return -started.timestamp()

    return itertools.islice(heapq.merge(*streams, key=key), limit)


# --- deployments ---------------------------------------------------------------------------------


def deployment_runs(
    session: Session,
    *,
    flows: list[str] | None,
    backends: list[str] | None,
    namespace: str | None,
    all_namespaces: bool,
    query: RunFilter,
    all_branches: bool = False,
) -> Iterator[RunRow]:
    """Runs of the selected flows' deployments, merged newest first; with `all_branches`, of every
    deployment of the project on every branch (found as `mfproj deployments` finds them)."""
    if all_branches:
        return _every_branch(session, flows=flows, backends=backends, namespace=namespace, query=query)
    pairs = select_pairs(session, flows, backends)
    found = parallel(lambda pair: session.backend(pair.backend).read(pair.names), pairs)
    streams = []
    for pair, existing in zip(pairs, found, strict=True):
        if existing is None:
            continue
        wanted = namespace
        if wanted is None and not all_namespaces:
            token = existing.record.production_token if existing.record else None
            if not token:
                continue  # a deployment without a token has no production namespace
            wanted = f"production:{token}"
        source_query = RunFilter(
            namespace=wanted, tags=query.tags, statuses=query.statuses, since=query.since, limit=query.limit
        )
        runs = session.backend(pair.backend).list_runs(existing, source_query)
        streams.append(_rows(pair, session.target.branch, runs, existing))
    if not streams:
        which = ", ".join(registry.label(b) for b in backends) if backends else "any backend"
        raise NotFoundError(
            f"nothing is deployed in {session.target.branch} on {which} for the selected flows",
            hint="deploy first, choose another branch, or read local Metaflow runs with --metaflow-local",
        )
    return complete(session, merge_newest_first(streams, query.limit))


def _first_pages_at_once(streams: list[Iterator[RunRow]]) -> list[Iterator[RunRow]]:
    if len(streams) <= 1:
        return streams
    done = object()
    firsts = parallel(lambda stream: next(stream, done), streams)
    return [
        stream if first is done else itertools.chain([first], stream)
        for first, stream in zip(firsts, streams, strict=True)
    ]


def complete(session: Session, rows: Iterator[RunRow]) -> Iterator[RunRow]:
    """The rows, with partial runs (listed without their tags) read in full, concurrently."""
    kept = list(rows)  # at most `limit`

    def full(row: RunRow) -> RunRow:
        if not row.run.partial or row.source is None:
            return row
        run = session.backend(row.backend).get_run(row.source, row.run.run_id)
        return replace(row, run=run) if run is not None else row

    return iter(parallel(full, kept))


def _rows(pair: Pair, branch: str, runs: Iterator[Run], existing: Existing) -> Iterator[RunRow]:
    for run in runs:
        yield RunRow(pair.flow.name, branch, pair.backend, run, existing)


def _every_branch(
    session: Session, *, flows: list[str] | None, backends: list[str] | None, namespace: str | None, query: RunFilter
) -> Iterator[RunRow]:
    from mfproj.usecases.deployments import inventory

    source_query = RunFilter(namespace, query.tags, query.statuses, query.since, query.limit)
    streams = [
        _inventory_rows(backend, existing, session.backend(backend).list_runs(existing, source_query))
        for backend, existing in inventory(session, backends, include_metaflow=False, full=False)
        if existing.record and (not flows or existing.record.flow in flows)
    ]
    return complete(session, merge_newest_first(streams, query.limit))


def _inventory_rows(backend: str, existing: Any, runs: Iterator[Run]) -> Iterator[RunRow]:
    for run in runs:
        yield RunRow(existing.record.flow or "?", existing.record.branch, backend, run, existing)


@dataclass(frozen=True)
class Located:
    """A run found by its id among the branch's deployments, or among those that are gone."""

    pair: Pair
    existing: Existing  # the deployment, or a stand-in for it when it is gone (`Backend.gone`)
    run: Run
    gone: bool


def locate_run(session: Session, run_id: str, *, flows: list[str] | None, backends: list[str] | None) -> Located:
    """The run among the selected branch's deployments; else among the manifest's flows of the branch
    that are not deployed (torn down while it ran: the service keeps its runs); NotFoundError if neither."""
    spec = registry.for_run_id(run_id)
    if spec is None:
        forms = " or ".join(f"{s.run_id_prefix}…" for s in registry.SPECS)
        raise ValidationError(f"{run_id!r} is not a run id of a deployment ({forms})")
    pairs = [pair for pair in select_pairs(session, flows, backends or [spec.name]) if pair.backend == spec.name]
    session.prefetch(pairs)
    found = parallel(lambda pair: session.backend(pair.backend).read(pair.names), pairs)
    for pair, existing in zip(pairs, found, strict=True):
        run = session.backend(pair.backend).get_run(existing, run_id) if existing is not None else None
        if existing is not None and run is not None:
            return Located(pair, existing, run, gone=False)
    for pair, existing in zip(pairs, found, strict=True):
        if existing is None:
            standin = session.backend(pair.backend).gone(pair.names)
            run = session.backend(pair.backend).get_run(standin, run_id)
            if run is not None:
                return Located(pair, standin, run, gone=True)
    raise NotFoundError(f"no run {run_id} among the deployments of {session.target.branch}", hint="check --branch")


def find_deployment_run(
    session: Session, run_id: str, *, flows: list[str] | None, backends: list[str] | None
) -> RunRow:
    located = locate_run(session, run_id, flows=flows, backends=backends)
    pair = located.pair
    return RunRow(pair.flow.name, session.target.branch, pair.backend, located.run, gone=located.gone)
