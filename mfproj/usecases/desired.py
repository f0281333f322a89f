"""The deployment a pair should be: its template rendered for a branch and caller (`context_for`), its
record stamped with who, which token, when and from where (`Stamp`), and its scheduled runs. Used by
the plan of a deploy and by drift (`deployments`), which asks what the manifest would deploy now."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mfproj import __version__, lineage, render
from mfproj.backends.base import DeploymentRecord, Desired, RunRequest
from mfproj.history import HistoryEntry
from mfproj.usecases.session import TOKEN_STAND_IN, Pair, Session, run_tags_for


@dataclass(frozen=True)
class Stamp:
    """Who makes a desired deployment, under which token, when, and from where."""

    owner: str
    token: str
    tags: tuple[str, ...]
    principal: str | None
    at: str
    origin: lineage.Lineage
    deploy_id: str | None = None
    rolled_back_to: str | None = None


def desired_for(session: Session, pair: Pair, branch: str, is_production: bool, stamp: Stamp) -> Desired:
    """The deployment of `pair` on `branch` as `stamp` would make it (also for drift against the manifest)."""
    context = context_for(session, pair, TOKEN_STAND_IN, owner=stamp.owner, branch=branch, is_production=is_production)
    definition = session.rendered(pair, context, stamp.token)
    schedule = session.manifest.schedule_of(pair.flow, is_production=is_production)
    return _desired(session, pair, branch, stamp, definition, schedule)


def desired_from(session: Session, pair: Pair, entry: HistoryEntry, stamp: Stamp) -> Desired:
    """The deployment of `pair` as a kept deploy had it (its definition and schedule, as deployed then),
    stamped anew: a rollback is itself a deploy, with its own record."""
    return _desired(session, pair, session.target.branch, stamp, entry.definition, entry.lineage.schedule)


def _desired(session: Session, pair: Pair, branch: str, stamp: Stamp, definition: Any, schedule: str | None) -> Desired:
    record = DeploymentRecord(
        owner=stamp.owner,
        production_token=stamp.token,
        project=session.target.project,
        branch=branch,
        flow=pair.flow.name,
        project_flow_name=pair.names.project_flow_name,
        deployed_at=stamp.at,
        mfproj_version=__version__,
        principal=stamp.principal,
        tags=stamp.tags,
        commit=stamp.origin.commit,
        dirty=stamp.origin.dirty,
        git_branch=stamp.origin.git_branch,
        ci_run=stamp.origin.ci_run,
        promoted_from=stamp.origin.promoted_from,
        deploy_id=stamp.deploy_id,
        rolled_back_to=stamp.rolled_back_to,
    )
    scheduled = RunRequest(
        flow=pair.flow.name,
        project=session.target.project,
        branch=branch,
        namespace=f"production:{stamp.token}",
        tags=(*run_tags_for(session, pair.backend, stamp.token, branch), *record.tags),
        triggered_by={"type": "schedule"},
    )
    return Desired(pair.flow.name, pair.names, definition, record, schedule, scheduled, session.manifest.history)


def context_for(
    session: Session,
    pair: Pair,
    token: str,
    *,
    owner: str | None = None,
    branch: str | None = None,
    is_production: bool | None = None,
) -> render.Context:
    """The template placeholders of `pair` (by default for the session's branch and caller)."""
    backend = session.backend(pair.backend)
    return render.Context(
        project=session.target.project,
        branch=branch or session.target.branch,
        flow=pair.flow.name,
        project_flow_name=pair.names.project_flow_name,
        deployed_name=backend.deployed_name(pair.names),
        namespace=f"production:{token}",
        owner=owner or session.user,
        is_production=session.target.is_production if is_production is None else is_production,
    )
