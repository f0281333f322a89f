"""Runs recorded by Metaflow's own local metadata (`.metaflow/<Flow>/<run>/_meta/_self.json`), filtered
as the reference's client does."""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from mfproj.backends.base import Run, RunFilter
from mfproj.errors import NotFoundError
from mfproj.ordering import newest_first
from mfproj.usecases.runs import RunRow

LOCAL = "metaflow_local"


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
                if row is not None and query.matches(row.run):
                    yield row

    yield from newest_first(matching(), query.limit, lambda row: row.run.started_at)


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
    run = Run(
        run_id=str(record.get("run_number") or run_dir.name),
        status="SUCCEEDED" if succeeded else "UNKNOWN",
        started_at=started,
        tags=tuple(tags),
    )
    return RunRow(str(record.get("flow_id") or flow), branch, LOCAL, run)


def default_local_namespace(env: Mapping[str, str] | None = None) -> str | None:
    """The reference's default namespace: `production:<token>` inside a deployed task, else `user:<name>`."""
    from mfproj import identity

    env = os.environ if env is None else env
    if env.get("METAFLOW_PRODUCTION_TOKEN"):
        return f"production:{env['METAFLOW_PRODUCTION_TOKEN']}"
    user = identity.resolve_user(env)
    return f"user:{user}" if user else None
