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
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mfproj import tokens
from mfproj.backends import LABELS
from mfproj.backends.base import RunDetails, RunFilter, newest_first
from mfproj.errors import NotFoundError, ValidationError
from mfproj.tags import TagError, validate_tags

STATUSES = ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING", "UNKNOWN")
_DURATION = re.compile(r"^(\d+)\s*([smhdw])$")
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
    backend: str  # step_functions, argo_workflows, metaflow_local
    details: RunDetails

    def as_json(self, *, parameters: bool = False) -> dict[str, Any]:
        run = self.details
        document: dict[str, Any] = {
            "run_id": run.run_id,
            "flow": self.flow,
            "branch": self.branch,
            "backend": self.backend,
            "status": run.status,
            "started_at": _iso(run.started_at),
            "finished_at": _iso(run.finished_at),
            "tags": mask_tags(run.tags),
            "deployment": run.deployment or None,
        }
        if parameters:
            document["parameters"] = run.parameters
        return document


def mask_tags(tags: Iterable[str]) -> list[str]:
    """Run tags as shown: the production tag's token masked (it is a secret)."""
    return [
        f"production:{tokens.mask(tag[len('production:') :])}" if tag.startswith("production:") else tag for tag in tags
    ]


def user_tags(tags: Iterable[str]) -> list[str]:
    return [t for t in tags if not t.startswith(SYSTEM_TAG_PREFIXES)]


def _iso(value: _dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.timezone.utc)
    return value.astimezone(_dt.timezone.utc).isoformat(timespec="seconds")


def parse_since(text: str | None, *, now: _dt.datetime | None = None) -> _dt.datetime | None:
    """`7d`, `12h`, `30m`, `2w`, `90s`, or an ISO date or time (UTC when no zone is given)."""
    if not text:
        return None
    now = now or _dt.datetime.now(_dt.timezone.utc)
    match = _DURATION.match(text.strip())
    if match:
        return now - _dt.timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
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
    """Merges streams that are each newest first; reads only as far as the first `limit` rows need."""

    def key(row: RunRow) -> float:
        started = row.details.started_at
        if started is None:
            return 0.0
        if started.tzinfo is None:
            started = started.replace(tzinfo=_dt.timezone.utc)
        return -started.timestamp()

    return itertools.islice(heapq.merge(*streams, key=key), limit)


# --- deployments (Step Functions, Argo) ----------------------------------------------------------


def deployment_runs(
    session: Any,
    *,
    flows: list[str] | None,
    backends: list[str] | None,
    namespace: str | None,
    all_namespaces: bool,
    query: RunFilter,
) -> Iterator[RunRow]:
    """Runs of the selected flows' deployments. `session` is a deploy.Session."""
    from mfproj import deploy

    pairs = deploy.select_pairs(session, flows, backends)

    def read(pair: deploy.Pair) -> Any:
        return session.backend(pair.backend).read(pair.names)

    found = deploy._parallel(read, pairs)
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
        backend = session.backend(pair.backend)
        streams.append(
            _rows(pair.flow.name, session.target.branch, pair.backend, backend.list_runs(existing, source_query))
        )
    if not streams:
        which = ", ".join(LABELS[b] for b in backends) if backends else "any backend"
        raise NotFoundError(
            f"nothing is deployed in {session.target.branch} on {which} for the selected flows",
            hint="deploy first, choose another branch, or read local Metaflow runs with --metaflow-local",
        )
    return merge_newest_first(streams, query.limit)


def _rows(flow: str, branch: str, backend: str, runs: Iterator[RunDetails]) -> Iterator[RunRow]:
    for details in runs:
        yield RunRow(flow, branch, backend, details)


def find_deployment_run(session: Any, run_id: str, *, flows: list[str] | None, backends: list[str] | None) -> RunRow:
    from mfproj import deploy

    wanted_backend = (
        "step_functions" if run_id.startswith("sfn-") else "argo_workflows" if run_id.startswith("argo-") else None
    )
    if wanted_backend is None:
        raise ValidationError(f"{run_id!r} is not a run id (sfn-<execution> or argo-<workflow>)")
    for pair in deploy.select_pairs(session, flows, backends or [wanted_backend]):
        if pair.backend != wanted_backend:
            continue
        backend = session.backend(pair.backend)
        existing = backend.read(pair.names)
        if existing is None:
            continue
        details = backend.find_run(existing, run_id)
        if details is not None:
            return RunRow(pair.flow.name, session.target.branch, pair.backend, details)
    raise NotFoundError(f"no run {run_id} among the deployments of {session.target.branch}", hint="check --branch")


# --- local Metaflow runs ------------------------------------------------------------------------


def local_root(path: str | None, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Path:
    """The reference's datastore root: PATH, else $METAFLOW_DATASTORE_SYSROOT_LOCAL, else the nearest .metaflow."""
    env = os.environ if env is None else env
    if path:
        given = Path(path).expanduser()
        root = given if given.name == ".metaflow" else given / ".metaflow"
        if not root.is_dir():
            raise NotFoundError(f"no .metaflow directory at {given}")
        return root
    if env.get("METAFLOW_DATASTORE_SYSROOT_LOCAL"):
        root = Path(env["METAFLOW_DATASTORE_SYSROOT_LOCAL"]).expanduser() / ".metaflow"
        if root.is_dir():
            return root
    here = (cwd or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if (directory / ".metaflow").is_dir():
            return directory / ".metaflow"
    raise NotFoundError(
        "no .metaflow directory here or in any parent directory",
        hint="pass --metaflow-local PATH, or set METAFLOW_DATASTORE_SYSROOT_LOCAL",
    )


def local_runs(root: Path, *, flows: list[str] | None, query: RunFilter) -> Iterator[RunRow]:
    """Runs recorded by Metaflow's local metadata provider, filtered as the reference's client does."""
    names = flows or sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))

    def matching() -> Iterator[RunRow]:
        for flow in names:
            for record_path in (root / flow).glob("*/_meta/_self.json"):
                row = _local_row(record_path, flow)
                if row is not None and query.matches(row.details):
                    yield row

    yield from newest_first(matching(), query.limit, lambda row: row.details.started_at)


def _local_row(record_path: Path, flow: str) -> RunRow | None:
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(record, dict):
        return None
    run_dir = record_path.parent.parent
    tags = [str(t) for t in (record.get("tags") or [])] + [str(t) for t in (record.get("system_tags") or [])]
    branch = next((t[len("project_branch:") :] for t in tags if t.startswith("project_branch:")), None)
    succeeded = any(run_dir.glob("end/*/_meta/*_artifact__success.json"))
    ts = record.get("ts_epoch")
    started = _dt.datetime.fromtimestamp(ts / 1000, tz=_dt.timezone.utc) if isinstance(ts, (int, float)) else None
    details = RunDetails(
        run_id=str(record.get("run_number") or run_dir.name),
        status="SUCCEEDED" if succeeded else "UNKNOWN",
        started_at=started,
        finished_at=None,
        tags=tuple(tags),
        deployment="",
    )
    return RunRow(str(record.get("flow_id") or flow), branch, "metaflow_local", details)


def default_local_namespace(env: Mapping[str, str] | None = None) -> str | None:
    """The reference's default namespace: `production:<token>` inside a deployed task, else `user:<name>`."""
    from mfproj import identity

    env = os.environ if env is None else env
    if env.get("METAFLOW_PRODUCTION_TOKEN"):
        return f"production:{env['METAFLOW_PRODUCTION_TOKEN']}"
    user = identity.resolve_user(env)
    return f"user:{user}" if user else None
