"""`mfproj deployments`: every deployment of the project on every backend, whose it is, where it came
from, and how it stands against the manifest (`in-sync`, `drift`, `orphan`, or `unknown` for the
reference's); `deployments show` adds the diff and the last runs; `namespaces` groups them by token."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

from mfproj import lineage, naming, tokens
from mfproj.backends import registry
from mfproj.backends.base import Existing, Run, RunFilter, iso
from mfproj.errors import NotFoundError
from mfproj.usecases.desired import Stamp, desired_for
from mfproj.usecases.parallel import parallel
from mfproj.usecases.session import Pair, Session

IN_SYNC, DRIFT, ORPHAN, UNKNOWN, UNREADABLE = "in-sync", "drift", "orphan", "unknown", "unreadable"


@dataclass
class Deployment:
    backend: str
    existing: Existing
    state: str
    drift: list[str] = field(default_factory=list)
    diff: str | None = None
    runs: list[Run] = field(default_factory=list)
    kept: int | None = None  # deploys its history keeps (`deployments show` asks)

    @property
    def record(self) -> Any:
        return self.existing.record

    @property
    def branch(self) -> str | None:
        return str(self.record.branch) if self.record.branch else None

    def as_json(self) -> dict[str, Any]:
        record = self.record
        document: dict[str, Any] = {
            "flow": record.flow,
            "branch": record.branch,
            "backend": self.backend,
            "name": self.existing.name,
            "owner": record.owner,
            "namespace": f"production:{tokens.mask(record.production_token)}" if record.production_token else None,
            "deployed_at": record.deployed_at,
            "made_by": record.managed_by,
            "commit": record.commit,
            "dirty": record.dirty,
            "git_branch": record.git_branch,
            "ci_run": record.ci_run,
            "promoted_from": record.promoted_from,
            "deploy_id": record.deploy_id,
            "rolled_back_to": record.rolled_back_to,
            "schedule": self.existing.schedule,
            "schedule_paused": self.existing.schedule_paused,
            "state": self.state,
            "drift": self.drift,
        }
        if self.kept is not None:
            document["deploys_kept"] = self.kept
        if self.diff is not None:
            document["diff"] = self.diff
            document["runs"] = [
                {"run_id": r.run_id, "status": r.status, "started_at": iso(r.started_at)} for r in self.runs
            ]
        return document


@dataclass
class Listing:
    deployments: list[Deployment]
    looked_for_metaflow: bool

    def as_json(self) -> list[dict[str, Any]]:
        return [d.as_json() for d in self.deployments]


def _branch_order(deployment: Deployment) -> tuple[int, str, float]:
    """`prod` branches first, then by branch; newest first within a branch."""
    branch = deployment.branch or "~"
    rank = 0 if branch == "prod" else 1 if naming.is_production_branch(branch) else 2
    moment = deployment.record.deployed_at or ""
    try:
        seconds = _dt.datetime.fromisoformat(moment).timestamp()
    except ValueError:
        seconds = 0.0
    return rank, branch, -seconds


def inventory(
    session: Session, backends: list[str] | None, *, include_metaflow: bool, full: bool = True
) -> list[tuple[str, Existing]]:
    """(backend, deployment) for every deployment of the project on the selected (or configured) backends."""
    wanted = backends or session.used_backends()
    found = parallel(
        lambda name: session.backend(name).find_deployments(
            session.manifest.project, include_metaflow=include_metaflow
        ),
        wanted,
    )
    listed = [(name, existing) for name, result in zip(wanted, found, strict=True) for existing in result.deployments]
    for name, existing in listed:
        if existing.record and existing.record.unreadable:  # anyone with write access can tag: said, never fatal
            session.notice(
                f"the record of {existing.name} on {registry.label(name)} cannot be read "
                f"({existing.record.unreadable}); it is left out of what its fields decide"
            )
    return listed


def list_deployments(
    session: Session,
    *,
    flows: list[str] | None = None,
    backends: list[str] | None = None,
    branch: str | None = None,
    include_metaflow: bool = False,
    detail: bool = False,
) -> Listing:
    """Every deployment (of `branch` only, when given), compared with the manifest."""
    found = [
        (name, existing)
        for name, existing in inventory(session, backends, include_metaflow=include_metaflow)
        if (branch is None or (existing.record and existing.record.branch == branch))
        and (not flows or (existing.record and existing.record.flow in flows))
    ]
    deployments = parallel(lambda item: judge(session, item[0], item[1], detail=detail), found)
    deployments.sort(key=_branch_order)
    say_splits(session, found)
    return Listing(deployments, looked_for_metaflow=include_metaflow)


def say_splits(session: Session, found: list[tuple[str, Existing]]) -> None:
    """One branch, one token: a branch whose deployments hold more than one is said, with which hold which."""
    by_branch: dict[str, dict[str, list[str]]] = {}
    for backend, existing in found:
        record = existing.record
        if record and record.branch and record.production_token and record.managed_by == "mfproj":
            holders = by_branch.setdefault(record.branch, {}).setdefault(record.production_token, [])
            holders.append(f"{record.flow} on {registry.label(backend)}")
    for branch, held in sorted(by_branch.items()):
        if len(held) > 1:
            listing = "; ".join(
                f"production:{tokens.mask(token)} ({tokens.fingerprint(token)}): {', '.join(sorted(names))}"
                for token, names in held.items()
            )
            session.notice(
                f"{branch} holds {len(held)} production tokens ({listing}); "
                "a deploy of the branch by its owner (or with its token) moves every deployment to one"
            )


def judge(session: Session, backend: str, existing: Existing, *, detail: bool) -> Deployment:
    record = existing.record
    assert record is not None
    if record.unreadable:  # said by `inventory`
        return Deployment(backend, existing, UNREADABLE)
    if record.managed_by != "mfproj" or not (record.project and record.branch and record.flow):
        return Deployment(backend, existing, UNKNOWN)
    manifest_flow = next((f for f in session.manifest.flows if f.name == record.flow), None)
    if manifest_flow is None or backend not in manifest_flow.backends:
        return Deployment(backend, existing, ORPHAN)
    names = registry.flow_names(record.project, record.branch, record.flow, session.manifest.settings, session.env)
    pair = Pair(manifest_flow, backend, names)
    token = record.production_token or ""
    stamp = Stamp(record.owner or "", token, record.tags, record.principal, "", lineage.Lineage())
    desired = desired_for(session, pair, record.branch, naming.is_production_branch(record.branch), stamp)
    drift = [c for c in session.backend(backend).changes(existing, desired) if c != "record"]
    if record.stale:  # a deploy cut between its writes: the record is not this definition's
        drift.append("record")
    if set(manifest_flow.tags) - set(record.tags):
        drift.append("tags")
    result = Deployment(backend, existing, DRIFT if drift else IN_SYNC, drift)
    if detail:
        found = session.backend(backend)
        text = found.definition_diff(existing, desired, new_label="manifest")
        result.diff = tokens.mask_text(text, {record.production_token or ""})
        result.runs = list(found.list_runs(existing, RunFilter(limit=5)))
    return result


def show_deployment(
    session: Session, *, flow: str, branch: str, backends: list[str] | None, include_metaflow: bool = False
) -> list[Deployment]:
    listing = list_deployments(
        session, flows=[flow], backends=backends, branch=branch, detail=True, include_metaflow=include_metaflow
    )
    if not listing.deployments:
        hint = "'mfproj deployments' lists what is deployed"
        raise NotFoundError(
            f"{flow} is not deployed in {branch}",
            hint=hint + ("" if include_metaflow else "; --include-metaflow also looks for Metaflow's own deployments"),
        )
    kept = parallel(lambda d: len(session.backend(d.backend).history(d.existing)), listing.deployments)
    for deployment, count in zip(listing.deployments, kept, strict=True):
        deployment.kept = count
    return listing.deployments


@dataclass
class Namespace:
    token: str
    branches: list[str]
    deployments: list[Deployment]
    in_keyring: bool
    runs: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "namespace": f"production:{tokens.mask(self.token)}",
            "fingerprint": tokens.fingerprint(self.token),
            "branches": self.branches,
            "deployments": [
                {"flow": d.record.flow, "backend": d.backend, "name": d.existing.name} for d in self.deployments
            ],
            "in_keyring": self.in_keyring,
            "runs": self.runs,
        }


def namespaces(session: Session, *, count_runs: bool = False, limit: int = 10_000) -> list[Namespace]:
    """Each production namespace of the project, with the branch and deployments that use it."""
    by_token: dict[str, list[tuple[str, Existing]]] = {}
    found_all = inventory(session, None, include_metaflow=False)
    for backend, existing in found_all:
        token = existing.record.production_token if existing.record else None
        if token:
            by_token.setdefault(token, []).append((backend, existing))
    say_splits(session, found_all)
    keyring = session.get_keyring()
    result = []
    for token, found in by_token.items():
        branches = sorted({str(e.record.branch) for _, e in found if e.record and e.record.branch})
        prefix = tokens.token_prefix_of(token)
        stored = keyring.load_token(prefix) if prefix else None
        runs = None
        if count_runs:
            query = RunFilter(namespace=f"production:{token}", limit=limit)
            runs = sum(sum(1 for _ in session.backend(b).list_runs(e, query)) for b, e in found)
        deployments = [Deployment(b, e, UNKNOWN) for b, e in found]
        result.append(Namespace(token, branches, deployments, tokens.tokens_equal(stored, token), runs))
    result.sort(key=lambda ns: (0 if "prod" in ns.branches else 1, ns.branches))
    return result
