"""Branches from git, and the production guard rails.

`--branch-from-git` (or MFPROJ_BRANCH_FROM_GIT=1) deploys to the current git branch, normalized to the
branch rule (`feature/Add-X` → `feature_add_x`), and the manifest's `production_branch` to `prod`.
With `production_branch` set, production deploys from another git branch or a dirty tree are refused
unless `--allow-branch` / `--allow-dirty`.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mfproj import lineage, naming

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib
from mfproj.errors import UsageError, ValidationError

# Where CI systems say which branch a detached checkout is for.
_CI_BRANCH_VARIABLES = (
    "GITHUB_HEAD_REF",
    "GITHUB_REF_NAME",
    "CI_COMMIT_REF_NAME",
    "BUILDKITE_BRANCH",
    "CIRCLE_BRANCH",
    "BRANCH_NAME",
    "GIT_BRANCH",
)


def normalize(git_branch: str) -> str:
    """A git branch name under the branch rule: a-z, 0-9 and _, at most 128 characters."""
    text = re.sub(r"[^a-z0-9_]+", "_", git_branch.lower()).strip("_")
    text = re.sub(r"_+", "_", text)[: naming.PROJECT_NAME_MAX].strip("_")
    if not text:
        raise ValidationError(f"git branch {git_branch!r} has no letter or digit to make a branch name of")
    return text


def current_git_branch(origin: lineage.Lineage, env: Mapping[str, str]) -> str:
    """The git branch of a working tree whose lineage is `origin` (a CI's variable on a detached HEAD)."""
    if origin.git_branch:
        return origin.git_branch
    for variable in _CI_BRANCH_VARIABLES:
        value = env.get(variable, "").strip()
        if value:
            return value.removeprefix("origin/")
    if origin.commit is None:
        raise UsageError(
            "--branch-from-git: not in a git repository", hint="use --branch B, or run from the repository"
        )
    raise UsageError(
        "--branch-from-git: HEAD is detached and no CI branch variable says which branch this is",
        hint="check out a branch, set GITHUB_REF_NAME (or your CI's branch variable), or use --branch B",
    )


@dataclass(frozen=True)
class GitChoice:
    branch: str | None  # the custom branch, or None for production
    production: bool
    note: str  # what was chosen, and from which git branch (the normalization shown)
    origin: lineage.Lineage  # the working tree's lineage it was chosen from (read once: reused by the deploy)


def choose(directory: Path, env: Mapping[str, str], production_branch: str | None) -> GitChoice:
    origin = lineage.read(directory, env)
    git_branch = current_git_branch(origin, env)
    if production_branch and git_branch == production_branch:
        note = f"git branch {git_branch!r} is the production branch: deploying to prod"
        return GitChoice(None, True, note, origin)
    branch = normalize(git_branch)
    return GitChoice(branch, False, f"git branch {git_branch!r} → branch test.{branch}", origin)


def check_production_source(
    origin: lineage.Lineage,
    env: Mapping[str, str],
    production_branch: str | None,
    *,
    allow_branch: bool,
    allow_dirty: bool,
) -> None:
    """The guard rails of a production change, judged on the working tree's lineage (read once per
    command, by the caller); raises naming the rule and how to pass it."""
    if not production_branch:
        return
    found = origin.git_branch
    if found is None and origin.commit is not None:
        found = next((env[v].removeprefix("origin/") for v in _CI_BRANCH_VARIABLES if env.get(v)), None)
    if found != production_branch and not allow_branch:
        where = f"git branch {found!r}" if found else "outside a git branch"
        raise UsageError(
            f"production deploys come from git branch {production_branch!r} (production_branch in the "
            f"manifest); this is {where}",
            hint=f"check out {production_branch}, or pass --allow-branch to deploy from here anyway",
        )
    if origin.dirty and not allow_dirty:
        raise UsageError(
            "production deploys come from a clean tree; this one has uncommitted changes",
            hint="commit or stash them, or pass --allow-dirty to deploy anyway",
        )


def default_git_branch(directory: Path) -> str | None:
    """The repository's default branch: origin's HEAD, else a local main or master; None without one."""
    remote = lineage.git(directory, "symbolic-ref", "--short", "refs/remotes/origin/HEAD")
    for candidate in (remote.removeprefix("origin/") if remote else None, "main", "master"):
        if candidate and lineage.git(directory, "rev-parse", "--verify", "--quiet", f"refs/heads/{candidate}"):
            return candidate
    return None


def committed_production_branch(manifest_path: Path, working: str | None) -> str | None:
    """`production_branch` as the production git branch's own committed manifest says it, not the working
    tree's: a feature branch made before the rule was committed (or one that drops it) is still held to
    it. The candidates are the working tree's value, then the repository's default branch; the first whose
    committed manifest (at the same path) names that very branch wins. Else the working tree's value.
    One `git show` when the working tree's value is confirmed (the common case)."""
    directory, name = manifest_path.parent, manifest_path.name

    def confirms(candidate: str) -> bool:
        for ref in (f"refs/heads/{candidate}", f"refs/remotes/origin/{candidate}"):
            text = lineage.git(directory, "show", f"{ref}:./{name}")  # ./: relative to the manifest's directory
            if text is not None:
                return _production_branch_of(text, name) == candidate
        return False

    if working and confirms(working):
        return working
    default = default_git_branch(directory)
    if default and default != working and confirms(default):
        return default
    return working


def _production_branch_of(text: str, path: str) -> str | None:
    """[project] production_branch of a manifest's text (mfproj.toml, or pyproject.toml's [tool.mfproj])."""
    try:
        document = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, UnicodeError):
        return None
    if path.endswith("pyproject.toml"):
        document = (document.get("tool") or {}).get("mfproj") or {}
    table = document.get("project") if isinstance(document, dict) else None
    value = table.get("production_branch") if isinstance(table, dict) else None
    return value if isinstance(value, str) and value else None
