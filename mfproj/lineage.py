"""Where a deployment came from: the git commit, whether the tree was dirty, the git branch, and the CI
run that deployed it. Read from `git` and the CI's own variables; outside a repository (or without git)
each is recorded as absent, never an error."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Lineage:
    commit: str | None = None
    dirty: bool | None = None
    git_branch: str | None = None
    ci_run: str | None = None
    promoted_from: str | None = None  # "<branch>@<commit>" for a promotion


def git(directory: Path, *args: str) -> str | None:
    """`git ARGS` in `directory`: its output stripped, or None when git is missing or fails."""
    try:
        done = subprocess.run(["git", *args], cwd=directory, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def ci_run(env: Mapping[str, str]) -> str | None:
    """A link (or id) to the CI run, for GitHub Actions, GitLab CI, Buildkite, CircleCI and Jenkins."""
    if env.get("GITHUB_ACTIONS") and env.get("GITHUB_RUN_ID"):
        server = env.get("GITHUB_SERVER_URL", "https://github.com")
        return f"{server}/{env.get('GITHUB_REPOSITORY', '?')}/actions/runs/{env['GITHUB_RUN_ID']}"
    if env.get("GITLAB_CI"):
        return env.get("CI_JOB_URL") or env.get("CI_PIPELINE_URL") or env.get("CI_JOB_ID")
    if env.get("BUILDKITE"):
        return env.get("BUILDKITE_BUILD_URL") or env.get("BUILDKITE_BUILD_ID")
    if env.get("CIRCLECI"):
        return env.get("CIRCLE_BUILD_URL") or env.get("CIRCLE_WORKFLOW_ID")
    if env.get("JENKINS_URL"):
        return env.get("BUILD_URL") or env.get("BUILD_TAG")
    return None


def read(directory: Path, env: Mapping[str, str] | None = None) -> Lineage:
    """The lineage of the working tree at `directory` (the manifest's)."""
    env = os.environ if env is None else env
    commit = git(directory, "rev-parse", "HEAD")
    if commit is None:
        return Lineage(ci_run=ci_run(env))
    status = git(directory, "status", "--porcelain", "--untracked-files=normal")
    branch = git(directory, "rev-parse", "--abbrev-ref", "HEAD")
    return Lineage(
        commit=commit,
        dirty=None if status is None else bool(status),
        git_branch=None if branch in (None, "HEAD") else branch,
        ci_run=ci_run(env),
    )
