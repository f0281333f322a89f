"""`mfproj history`: a branch's deploys, newest first. Each backend keeps a deployment's history (Step
Functions versions, an Argo ConfigMap); one deploy id ties together what one `mfproj deploy` wrote, so
the branch's history is a list of deploys, each with the flows and backends it wrote and where it is live."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mfproj.backends.base import Existing
from mfproj.history import DeployLineage, HistoryEntry, HistoryStop
from mfproj.usecases.parallel import parallel
from mfproj.usecases.session import Pair, Session, select_pairs


@dataclass
class Deploy:
    """One deploy of the branch: its lineage and what it wrote."""

    lineage: DeployLineage
    wrote: list[tuple[Pair, HistoryEntry]] = field(default_factory=list)
    live: list[Pair] = field(default_factory=list)  # where its content is what is deployed now

    @property
    def deploy_id(self) -> str:
        return self.lineage.deploy_id

    def as_json(self) -> dict[str, Any]:
        return {
            **self.lineage.as_json(),
            "deployments": [{"flow": p.flow.name, "backend": p.backend} for p, _ in self.wrote],
            "live": [{"flow": p.flow.name, "backend": p.backend} for p in self.live],
        }


@dataclass
class BranchHistory:
    branch: str
    deploys: list[Deploy]  # newest first
    deployed: list[tuple[Pair, Existing]]  # the branch's deployments now
    kept: dict[tuple[str, str], int]  # (flow, backend) -> how many deploys its history keeps

    def as_json(self) -> dict[str, Any]:
        return {"branch": self.branch, "deploys": [d.as_json() for d in self.deploys]}


Enough = Callable[[list[tuple[Pair, Existing]]], HistoryStop | None]


def branch_history(
    session: Session, *, flows: list[str] | None, backends: list[str] | None, enough: Enough | None = None
) -> BranchHistory:
    """Reads the selected deployments and their histories, concurrently; `enough`, given what is deployed,
    says where each history may stop (all of it when it answers None)."""
    pairs = select_pairs(session, flows, backends)
    session.prefetch(pairs)
    found = parallel(lambda pair: session.backend(pair.backend).read(pair.names), pairs)
    deployed = [(pair, existing) for pair, existing in zip(pairs, found, strict=True) if existing is not None]
    stop = enough(deployed) if enough else None
    histories = parallel(lambda item: session.backend(item[0].backend).history(item[1], enough=stop), deployed)
    deploys: dict[str, Deploy] = {}
    kept: dict[tuple[str, str], int] = {}
    for (pair, existing), entries in zip(deployed, histories, strict=True):
        kept[(pair.flow.name, pair.backend)] = len(entries)
        live = existing.record.deploy_id if existing.record else None
        for entry in entries:
            deploy = deploys.setdefault(entry.deploy_id, Deploy(entry.lineage))
            deploy.wrote.append((pair, entry))
            if entry.deploy_id == live:
                deploy.live.append(pair)
    ordered = sorted(deploys.values(), key=lambda d: d.deploy_id, reverse=True)
    return BranchHistory(session.target.branch, ordered, deployed, kept)
