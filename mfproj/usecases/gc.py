"""`mfproj gc`: find stale branches (not deployed again for longer than an age, or whose recorded git branch
is merged into, or gone from, the local repository's default branch) and tear down the ones the caller
may. Production branches are never proposed."""

from __future__ import annotations

import datetime as _dt
import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mfproj import gitbranch, naming
from mfproj.backends.base import Existing, RunFilter, iso
from mfproj.lineage import git
from mfproj.usecases.deployments import inventory
from mfproj.usecases.session import Session, open_session
from mfproj.usecases.teardown import plan_teardown, teardown


@dataclass
class StaleBranch:
    branch: str
    deployments: list[tuple[str, Existing]]
    why: list[str]
    last_deployed: _dt.datetime | None
    last_run: _dt.datetime | None = None
    outcome: str = "proposed"  # proposed, removed, skipped (why)

    def as_json(self) -> dict[str, Any]:
        owners = sorted({str(e.record.owner) for _, e in self.deployments if e.record and e.record.owner})
        return {
            "branch": self.branch,
            "flows": sorted({str(e.record.flow) for _, e in self.deployments if e.record}),
            "owners": owners,
            "last_deployed": iso(self.last_deployed),
            "last_run": iso(self.last_run),
            "why": self.why,
            "outcome": self.outcome,
        }


def _when(text: str | None) -> _dt.datetime | None:
    try:
        moment = _dt.datetime.fromisoformat(text or "")
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=_dt.timezone.utc)


def merged_or_gone(directory: Path, git_branch: str) -> str | None:
    """Why a recorded git branch is finished: merged into the default branch, or gone; None otherwise."""
    default = gitbranch.default_git_branch(directory)
    if default is None:
        return None  # no repository, or no default branch to compare with
    if git(directory, "rev-parse", "--verify", "--quiet", f"refs/heads/{git_branch}") is None:
        return f"git branch {git_branch} is gone"
    merged = git(directory, "branch", "--merged", default, "--format=%(refname:short)") or ""
    if git_branch != default and git_branch in merged.splitlines():
        return f"git branch {git_branch} is merged into {default}"
    return None


def find_stale(
    session: Session,
    *,
    older_than: _dt.timedelta | None,
    merged: bool,
    pattern: str | None,
    now: _dt.datetime | None = None,
) -> list[StaleBranch]:
    now = now or _dt.datetime.now(_dt.timezone.utc)
    by_branch: dict[str, list[tuple[str, Existing]]] = {}
    for backend, existing in inventory(session, None, include_metaflow=False, full=False):
        branch = existing.record.branch if existing.record else None
        if not branch or naming.is_production_branch(branch):
            continue  # production is never proposed
        if pattern and not fnmatch.fnmatchcase(branch, pattern):
            continue
        by_branch.setdefault(branch, []).append((backend, existing))
    stale = []
    for branch, found in sorted(by_branch.items()):
        moments = [m for m in (_when(e.record.deployed_at) for _, e in found if e.record) if m]
        last = max(moments) if moments else None
        why = []
        if older_than is not None and (last is None or now - last > older_than):
            why.append(f"not deployed for {age(now - last)}" if last else "no deploy time recorded")
        if merged:
            git_branches = {e.record.git_branch for _, e in found if e.record and e.record.git_branch}
            why += [w for w in (merged_or_gone(session.manifest.root, g) for g in sorted(git_branches)) if w]
        if why:
            stale.append(StaleBranch(branch, found, why, last, _last_run(session, found)))
    return stale


def age(delta: _dt.timedelta) -> str:
    """`3 days`, `5 hours`, `1 minute`: the largest whole unit (never `0 days`)."""
    seconds = max(int(delta.total_seconds()), 0)
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return "less than a minute"


def _last_run(session: Session, found: list[tuple[str, Existing]]) -> _dt.datetime | None:
    moments = [
        run.started_at
        for backend, existing in found
        for run in session.backend(backend).list_runs(existing, RunFilter(limit=1))
        if run.started_at
    ]
    return max(moments) if moments else None


def session_for(session: Session, branch: str) -> Session:
    """A session on another (non-production) branch of the same project, as the same caller."""
    env: Mapping[str, str] = session.env
    if branch.startswith("user."):
        env = {**session.env, "METAFLOW_OWNER": branch[len("user.") :]}
        chosen, production = None, False
    else:
        chosen, production = branch.removeprefix("test."), False
    opened = open_session(
        session.manifest, branch=chosen, production=production, profile=session.profile, env=env, notice=session.notice
    )
    return replace(opened, keyring=session.keyring)


def collect(session: Session, stale: list[StaleBranch]) -> list[StaleBranch]:
    """Tears down the stale branches the caller may remove; the others are skipped, saying why."""
    for entry in stale:
        branch_session = session_for(session, entry.branch)
        items = plan_teardown(branch_session)
        refused = [item for item in items if not item.authorized]
        if refused:
            entry.outcome = f"skipped: no token for {len(refused)} of its deployments"
            continue
        if items:
            teardown(branch_session, items)
        entry.outcome = "removed"
    return stale


__all__ = ["StaleBranch", "collect", "find_stale"]
