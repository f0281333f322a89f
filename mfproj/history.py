"""A deployment's history: each kept deploy's lineage, written where the backend keeps the content (a Step
Functions version's description, an Argo history ConfigMap) and read back with limits (anyone with write
access to those may have written them)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from mfproj.text import Unreadable, bounded_json, printable

# Step Functions allows 256 characters in a version's description; the lineage is made to fit.
DESCRIPTION_LIMIT = 256
_MARK = "mfproj1 "
_BOUNDS = {"deploy_id": 40, "deployed_at": 32, "owner": 64, "principal": 96, "commit": 40, "schedule": 64}
_BOUNDS.update({"rolled_back_to": 40, "token_fingerprint": 8})
# The short keys of the compact (description) form.
_SHORT = {"deploy_id": "d", "deployed_at": "t", "owner": "u", "principal": "p", "commit": "c", "schedule": "s"}
_SHORT.update({"rolled_back_to": "r", "token_fingerprint": "k"})


@dataclass(frozen=True)
class DeployLineage:
    """Which deploy wrote a kept content, when, by whom, from which commit, with which schedule (the
    manifest's 5-field cron), whether it was a rollback (to which deploy), and under which token (its
    non-secret fingerprint: a rollback never crosses a token change unnoticed)."""

    deploy_id: str
    deployed_at: str | None = None
    owner: str | None = None
    principal: str | None = None
    commit: str | None = None
    schedule: str | None = None
    rolled_back_to: str | None = None
    token_fingerprint: str | None = None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    def compact(self, limit: int = DESCRIPTION_LIMIT) -> str:
        """The lineage in at most `limit` characters: the principal shortened, then dropped, then the time
        (the deploy id carries it), then the owner cut, if need be."""
        candidates = [self, replace(self, principal=_short_principal(self.principal))]
        candidates.append(replace(candidates[-1], principal=None))
        candidates.append(replace(candidates[-1], deployed_at=None))
        candidates.append(replace(candidates[-1], owner=(self.owner or "")[:24] or None))
        for candidate in candidates:
            values = {_SHORT[k]: v for k, v in asdict(candidate).items() if v is not None}
            text = _MARK + json.dumps(values, separators=(",", ":"), ensure_ascii=False)
            if len(text) <= limit:
                return text
        return (_MARK + json.dumps({"d": self.deploy_id}, separators=(",", ":")))[:limit]

    @classmethod
    def parse_compact(cls, text: object) -> DeployLineage | None:
        """A lineage from a version description; None for one mfproj did not write (or cannot read)."""
        if not isinstance(text, str) or not text.startswith(_MARK) or len(text) > DESCRIPTION_LIMIT * 4:
            return None
        try:
            values = bounded_json(text[len(_MARK) :], where="a version description", depth=1)
        except Unreadable:
            return None
        if not isinstance(values, dict):
            return None
        long_names = {short: name for name, short in _SHORT.items()}
        return cls.parse({long_names[k]: v for k, v in values.items() if k in long_names})

    @classmethod
    def parse(cls, values: object) -> DeployLineage | None:
        """A lineage from its JSON form; each field bounded and shown as text, unknown ones ignored."""
        if not isinstance(values, dict) or not isinstance(values.get("deploy_id"), str) or not values["deploy_id"]:
            return None
        kept: dict[str, str | None] = {}
        for field in fields(cls):
            value = values.get(field.name)
            kept[field.name] = printable(value, limit=_BOUNDS[field.name]) if isinstance(value, str) else None
        return cls(**kept)  # type: ignore[arg-type]


def _short_principal(principal: str | None) -> str | None:
    """`arn:aws:sts::123:assumed-role/ci/session` → `assumed-role/ci/session` (the account is elsewhere)."""
    return principal.rsplit(":", 1)[-1] if principal else None


@dataclass(frozen=True)
class HistoryEntry:
    """One kept deploy of one deployment: its lineage and the definition it put in place (the backend's
    document as rendered: a state machine's ASL, a WorkflowTemplate as its template gave it)."""

    lineage: DeployLineage
    definition: Any
    reference: str  # where the backend keeps it: a version ARN, a ConfigMap key

    @property
    def deploy_id(self) -> str:
        return self.lineage.deploy_id


# Where reading a history may stop: after the first entry it accepts.
HistoryStop = Callable[[HistoryEntry], bool]
