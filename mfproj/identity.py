"""Who is calling, and which branch they selected, resolved from options and the environment.

The user comes from the same places as in Metaflow: METAFLOW_USER (the variable, else the key in
Metaflow's config files), then SUDO_USER, USERNAME and USER; empty values and `root` are skipped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mfproj import naming
from mfproj.errors import IdentityError, ValidationError

_USER_VARIABLES = ("SUDO_USER", "USERNAME", "USER")
_TRUE = {"1", "true", "t", "yes", "y", "on"}
_FALSE = {"0", "false", "f", "no", "n", "off"}


def _metaflow_config_value(key: str, env: Mapping[str, str], cwd: Path) -> str | None:
    """Metaflow's from_conf: `<nearest ancestor>/.metaflow/config.json`, then the profile config."""
    candidates: list[Path] = []
    for directory in (cwd, *cwd.parents):
        local = directory / ".metaflow" / "config.json"
        if local.is_file():
            candidates.append(local)
            break
    home = Path(env.get("METAFLOW_HOME") or "~/.metaflowconfig").expanduser()
    profile = env.get("METAFLOW_PROFILE")
    candidates.append(home / (f"config_{profile}.json" if profile else "config.json"))
    for path in candidates:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        value = data.get(key) if isinstance(data, dict) else None
        if isinstance(value, str) and value:
            return value
    return None


def resolve_user(env: Mapping[str, str] | None = None, cwd: Path | None = None) -> str | None:
    """The first non-empty value other than `root`, in Metaflow's order; None when there is none."""
    env = os.environ if env is None else env
    first = env.get("METAFLOW_USER") or _metaflow_config_value("METAFLOW_USER", env, cwd or Path.cwd())
    for value in (first, *(env.get(name) for name in _USER_VARIABLES)):
        if value and value != "root":
            return value
    return None


def require_user(env: Mapping[str, str] | None = None, cwd: Path | None = None) -> str:
    user = resolve_user(env, cwd)
    if user is None:
        raise IdentityError(
            "cannot tell who you are: METAFLOW_USER, SUDO_USER, USERNAME and USER are unset, empty or root",
            hint="set METAFLOW_USER, for example: export METAFLOW_USER=alice",
        )
    return user


def parse_bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValidationError(f"{name}={value!r} is not a boolean (use 1/0, true/false, yes/no)")


def _first_env(env: Mapping[str, str], names: tuple[str, ...]) -> tuple[str, str] | None:
    for name in names:
        value = env.get(name)
        if value:
            return name, value
    return None


BRANCH_VARIABLES = ("MFPROJ_BRANCH", "METAFLOW_FLOW_BRANCH", "METAFLOW_BRANCH")
PRODUCTION_VARIABLES = ("MFPROJ_PRODUCTION", "METAFLOW_FLOW_PRODUCTION", "METAFLOW_PRODUCTION")


@dataclass(frozen=True)
class Target:
    """The project branch a command acts on."""

    project: str
    user: str | None
    branch: str
    is_user_branch: bool
    is_production: bool
    token_prefix: str


def target_for(
    project: str,
    *,
    branch: str | None = None,
    production: bool | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Target:
    """Options win over MFPROJ_* variables, which win over Metaflow's own variables."""
    env = os.environ if env is None else env
    if branch is None:
        found = _first_env(env, BRANCH_VARIABLES)
        if found:
            try:
                naming.validate_branch_name(found[1])
            except ValidationError as exc:
                raise ValidationError(f"{found[0]}: {exc.message}", hint=exc.hint) from None
            branch = found[1]
    elif branch == "":
        raise ValidationError("--branch must not be empty", hint="omit --branch to use your user branch")
    if production is None:
        found = _first_env(env, PRODUCTION_VARIABLES)
        production = parse_bool(*found) if found else False
    user = resolve_user(env, cwd)
    owner: str | None = None
    if "METAFLOW_OWNER" in env:
        owner = env["METAFLOW_OWNER"]
        if not owner:
            raise IdentityError(
                "METAFLOW_OWNER is set but empty, which would make the branch 'user.'",
                hint="unset METAFLOW_OWNER or give it a name",
            )
    if not branch and not production and owner is None and user is None:
        require_user(env, cwd)  # raises with the guidance
    name = naming.branch_name(user=user, branch=branch, production=production, owner=owner)
    return Target(
        project=project,
        user=user,
        branch=name,
        is_user_branch=naming.is_user_branch(branch=branch, production=production),
        is_production=naming.is_production_branch(name),
        token_prefix=naming.token_prefix(project, name),
    )


def selecting_options(branch: str) -> str:
    """The options that select `branch` from any caller: `branch_options`, or `--user U` for a user
    branch (for commands that take --user)."""
    return branch_options(branch) or (f"--user {branch[len('user.') :]}" if branch.startswith("user.") else "")


def branch_options(branch: str) -> str:
    """The options that select `branch` again, for hints: `--production --branch x`, or '' (user branch)."""
    if branch == "prod":
        return "--production"
    if branch.startswith("prod."):
        return f"--production --branch {branch[len('prod.') :]}"
    if branch.startswith("test."):
        return f"--branch {branch[len('test.') :]}"
    return ""
