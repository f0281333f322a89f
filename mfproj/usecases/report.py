"""What a deploy says it did or would do: one `Outcome` per deployment, in one `Report` (the view model
the CLI renders as a table or JSON)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
    split: str | None = None  # the tokens the branch held before this deploy, when more than one

    def as_json(self) -> dict[str, Any]:
        return {
            **({"split_tokens": self.split} if self.split else {}),
            "project": self.project,
            "branch": self.branch,
            "token_prefix": self.token_prefix,
            "namespace": self.namespace,
            "dry_run": self.dry_run,
            "token_changed": self.token_changed,
            "deployments": [o.as_json() for o in self.outcomes],
        }
