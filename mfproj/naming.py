"""Names, exactly as Metaflow's @project computes them, plus checks against each backend's own rules.

Pure functions over the standard library: no I/O, no environment access. The reference behaviour
(Metaflow 2.19) is kept to the character, including its quirks (Argo names up to 47 characters,
the `startswith` prefix rule); everything that goes beyond it is a separate check that reports
problems instead of changing a name.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from mfproj.errors import NameCollisionError, ValidationError

PROJECT_NAME_MAX = 128
_INVALID_NAME_CHAR = re.compile(r"[^a-z0-9_]")
FLOW_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")

TOKEN_PREFIX_PREFIX = "mfprj-"

STATE_MACHINE_TRUNCATE_AT = 60
EVENTBRIDGE_RULE_MAX = 64
EVENTBRIDGE_RULE_TRUNCATE_AT = 47
ARGO_NAME_BUDGET = 45
_ARGO_HASH_LEN = 5
_ARGO_MIN_PART = 7

# Argo's own pattern for a valid name; anything else is sanitized (and, in the reference, not re-checked).
_ARGO_VALID_NAME = re.compile(r"^[a-z]([a-z0-9.\-]*[a-z0-9])?\Z")

# Backend rules that the reference does not check.
STATE_MACHINE_MAX = 80
# Step Functions forbids white space, brackets, wildcards, these punctuation marks and control characters.
_SFN_FORBIDDEN = re.compile(r"[\s<>{}\[\]?*\"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f]")
_EVENTBRIDGE_RULE_RE = re.compile(r"^[.\-_A-Za-z0-9]+\Z")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")
K8S_NAME_MAX = 253
K8S_LABEL_VALUE_MAX = 63
# Argo appends "-<10-digit unix time>" to a CronWorkflow's name for each workflow it starts.
ARGO_CRON_WORKFLOW_MAX = 52


def _b32_sha1(text: str) -> str:
    digest = hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).digest()
    return base64.b32encode(digest).decode("ascii").lower()


# --- inputs -------------------------------------------------------------------------------------


def validate_project_name(name: str) -> None:
    """The reference's rule: `[a-z0-9_]`, 1 to 128 characters."""
    if not name:
        raise ValidationError("project name must not be empty")
    _check_identifier("project name", name)


def validate_branch_name(name: str) -> None:
    """Custom branch names follow the project-name rule."""
    if not name:
        raise ValidationError("branch name must not be empty", hint="omit --branch to deploy to your user branch")
    _check_identifier("branch name", name)


def _check_identifier(what: str, name: str) -> None:
    bad = _INVALID_NAME_CHAR.search(name)
    if bad:
        raise ValidationError(
            f"{what} {name!r} has the character {bad.group()!r}; only a-z, 0-9 and _ are allowed",
            hint="use lowercase letters, digits and underscores",
        )
    if len(name) > PROJECT_NAME_MAX:
        raise ValidationError(f"{what} is {len(name)} characters long; at most {PROJECT_NAME_MAX} are allowed")


def validate_flow_name(name: str) -> None:
    if not FLOW_NAME_RE.match(name):
        raise ValidationError(f"flow name {name!r} is not a Python class name (rule: [A-Za-z_][A-Za-z0-9_]*)")


# --- branches -----------------------------------------------------------------------------------


def branch_name(*, user: str | None, branch: str | None, production: bool, owner: str | None = None) -> str:
    """`prod.<b>`, `test.<b>`, `prod` or `user.<owner or user>`, as the reference's format_name."""
    if branch:
        validate_branch_name(branch)
        return f"prod.{branch}" if production else f"test.{branch}"
    if production:
        return "prod"
    who = owner if owner is not None else user
    if not who:
        raise ValidationError(
            "no user name for the user branch", hint="set METAFLOW_USER, or pass --branch or --production"
        )
    return f"user.{who}"


def is_user_branch(*, branch: str | None, production: bool) -> bool:
    return branch is None and not production


def is_production_branch(branch: str) -> bool:
    """The one rule: `prod` and `prod.<name>` are production branches (the reference's namespace rule)."""
    return branch == "prod" or branch.startswith("prod.")


def project_flow_name(project: str, branch: str, flow: str) -> str:
    return f"{project}.{branch}.{flow}"


def token_prefix(project: str, branch: str) -> str:
    """Shared by every backend and flow of one project branch, so they share one token."""
    return TOKEN_PREFIX_PREFIX + _b32_sha1(f"{project}.{branch}")[:16]


# --- Step Functions -----------------------------------------------------------------------------


def attach_state_machine_prefix(name: str, prefix: str | None) -> str:
    # The reference tests `startswith(prefix)` without the underscore; kept for identical names.
    if prefix and not name.startswith(prefix):
        return f"{prefix}_{name}"
    return name


def state_machine_name(project_flow: str, prefix: str | None = None) -> str:
    name = attach_state_machine_prefix(project_flow, prefix)
    if len(name) > STATE_MACHINE_TRUNCATE_AT:
        name = f"{name[:STATE_MACHINE_TRUNCATE_AT]}-{_b32_sha1(name)[:16]}"
    return name


def eventbridge_rule_name(state_machine: str) -> str:
    if len(state_machine) <= EVENTBRIDGE_RULE_MAX:
        return state_machine
    return f"{state_machine[:EVENTBRIDGE_RULE_TRUNCATE_AT]}-{_b32_sha1(state_machine)[:16]}"


# --- Argo Workflows -----------------------------------------------------------------------------


def sanitize_for_argo(text: str) -> str:
    text = re.sub(r"^[^A-Za-z0-9]+", "", text)
    text = re.sub(r"[_@+]", "", text).lower()
    return re.sub(r"[^a-z0-9]*\.[^a-z0-9]*", ".", text)


def _shorten_middle(text: str, budget: int) -> str:
    if len(text) <= budget:
        return text
    head = budget // 2
    return text[:head] + text[-(budget - head) :]


def _argo_part_budgets(parts: list[str]) -> list[int]:
    room = ARGO_NAME_BUDGET - 1 - _ARGO_HASH_LEN - _ARGO_MIN_PART * len(parts)
    total = sum(len(p) for p in parts)
    extras = [int(room * len(p) / total) for p in parts]
    while sum(extras) < room:
        extras[extras.index(min(extras))] += 1
    return [_ARGO_MIN_PART + e for e in extras]


def argo_workflow_template_name(project: str, branch: str, flow: str) -> str:
    """The reference's current (v2) rule: 45-character budget, then a 5-character hash."""
    name = project_flow_name(project, branch, flow)
    if len(name) > ARGO_NAME_BUDGET:
        digest = _b32_sha1(name)[:_ARGO_HASH_LEN]
        p_budget, b_budget, f_budget = _argo_part_budgets([project, branch, flow])
        short = ".".join([_shorten_middle(project, p_budget), branch[:b_budget], _shorten_middle(flow, f_budget)])
        name = f"{sanitize_for_argo(short)}-{digest}"
    if not _ARGO_VALID_NAME.search(name):
        name = sanitize_for_argo(name)
    return name


# --- all names of one flow ----------------------------------------------------------------------


@dataclass(frozen=True)
class FlowNames:
    """A flow's names: its project flow name, and on each backend the names its deployment takes (kind
    -> name, as that backend's `names` module computes them; see `registry.flow_names`)."""

    flow: str
    project_flow_name: str
    deployed: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def of(self, backend: str) -> Mapping[str, str]:
        return self.deployed.get(backend, {})


# --- backend rules (beyond the reference) -------------------------------------------------------


@dataclass(frozen=True)
class NameProblem:
    backend: str  # the registry's name of the backend
    kind: str  # the kind of name (its backend's `names.KINDS`), or "setting"
    name: str
    rule: str
    hint: str | None = None

    def message(self) -> str:
        if self.kind == "setting":
            return f"{self.name} {self.rule}"
        return f"{self.kind.replace('_', ' ')} name {self.name!r} is invalid: {self.rule}"


def state_machine_problems(name: str) -> list[str]:
    problems = []
    if not 1 <= len(name) <= STATE_MACHINE_MAX:
        problems.append(f"must be 1 to {STATE_MACHINE_MAX} characters (is {len(name)})")
    bad = sorted(set(_SFN_FORBIDDEN.findall(name)))
    if bad:
        problems.append(
            "must not contain white space, brackets, wildcards, control characters or any of "
            f'"#%\\^|~`$&,;:/ (found {"".join(bad)!r})'
        )
    return problems


def eventbridge_rule_problems(name: str) -> list[str]:
    problems = []
    if not 1 <= len(name) <= EVENTBRIDGE_RULE_MAX:
        problems.append(f"must be 1 to {EVENTBRIDGE_RULE_MAX} characters (is {len(name)})")
    if name and not _EVENTBRIDGE_RULE_RE.match(name):
        bad = sorted({c for c in name if not _EVENTBRIDGE_RULE_RE.match(c)})
        problems.append(f"may contain only A-Z a-z 0-9 . - _ (found {''.join(bad)!r})")
    return problems


def kubernetes_name_problems(name: str, *, max_length: int = K8S_LABEL_VALUE_MAX) -> list[str]:
    """A DNS-1123 subdomain; Argo also copies template names into label values (63 characters)."""
    problems = []
    if not 1 <= len(name) <= max_length:
        problems.append(f"must be 1 to {max_length} characters (is {len(name)})")
    if name and not _DNS1123_SUBDOMAIN.match(name):
        problems.append(
            "must be a DNS-1123 subdomain: lowercase a-z, 0-9, '-' and '.', starting and ending with a letter or digit"
        )
    return problems


def hint_for(branch: str) -> str | None:
    """What to change when a branch's names break a rule."""
    if branch.startswith("user."):
        user = branch[len("user.") :]
        if _INVALID_NAME_CHAR.search(user):
            return (
                f"the user name {user!r} is part of the branch; set METAFLOW_USER (or METAFLOW_OWNER) "
                "to a simple name such as "
                f"{(re.sub(r'[^a-z0-9_]+', '_', user.lower()).strip('_') or 'alice')!r}"
            )
    return "use a shorter project, branch or flow name"


# --- collisions ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Collision:
    kind: str
    name: str
    first: str
    second: str

    def message(self) -> str:
        return f"{self.first} and {self.second} both map to the {self.kind.replace('_', ' ')} {self.name!r}"


@dataclass
class CollisionFinder:
    """Collects (owner label, name) pairs per kind of name and reports any name claimed twice."""

    _seen: dict[tuple[str, str], str] = field(default_factory=dict)
    collisions: list[Collision] = field(default_factory=list)

    def add(self, kind: str, name: str, owner: str) -> None:
        first = self._seen.setdefault((kind, name), owner)
        if first != owner:
            self.collisions.append(Collision(kind, name, first, owner))

    def raise_if_any(self) -> None:
        if self.collisions:
            raise NameCollisionError(
                "; ".join(c.message() for c in self.collisions),
                hint="rename one of them: Argo drops '_', '@' and '+' and lowercases names",
            )


def check_same_deployment(
    kind: str, name: str, *, existing: tuple[str, str, str], wanted: tuple[str, str, str]
) -> None:
    """Refuse to touch a deployment that carries another (project, branch, flow) under our name."""
    if existing != wanted:
        raise NameCollisionError(
            f"the {kind.replace('_', ' ')} {name!r} belongs to {'.'.join(existing)}, "
            f"not {'.'.join(wanted)}: the two map to the same name",
            hint="rename the project, branch or flow so the names differ",
        )
