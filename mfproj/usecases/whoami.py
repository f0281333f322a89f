"""`mfproj whoami`: who mfproj takes you for and where its requests would go, from local configuration
alone; with `check`, one cheap request per backend says which answer and as whom."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mfproj import identity, keyring, manifest, naming
from mfproj.backends import registry
from mfproj.backends.base import Backend
from mfproj.errors import MfprojError
from mfproj.usecases.parallel import parallel


@dataclass
class BackendView:
    backend: str
    settings: dict[str, str | None]
    answers: bool | None = None  # None: not checked
    answer: dict[str, str | None] = field(default_factory=dict)
    problem: str | None = None

    def as_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"backend": self.backend, **self.settings}
        if self.answers is not None:
            document["check"] = {"answers": self.answers, **self.answer, "problem": self.problem}
        return document


@dataclass
class WhoAmI:
    user: str | None
    user_branch: str | None
    branch: str | None
    project: str | None
    manifest: str | None
    manifest_problem: str | None
    keyring: str
    backends: list[BackendView]

    def as_json(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "user_branch": self.user_branch,
            "branch": self.branch,
            "project": self.project,
            "manifest": self.manifest,
            "manifest_problem": self.manifest_problem,
            "keyring": self.keyring,
            "backends": {view.backend: view.as_json() for view in self.backends},
        }


def whoami(
    *,
    manifest_path: str | None,
    branch: str | None,
    production: bool | None,
    profile: str | None,
    env: Mapping[str, str],
    check: bool,
) -> WhoAmI:
    loaded, problem = None, None
    try:
        loaded = manifest.load(manifest_path, env=env)
    except MfprojError as exc:  # whoami works outside a project too: it says why there is none
        problem = exc.message
    user = identity.resolve_user(env)
    target = None
    if loaded is not None and (user is not None or branch or production):
        target = identity.target_for(loaded.project, branch=branch, production=production, env=env)
    backends = {name: registry.create(name, loaded, profile=profile, env=env) for name in registry.NAMES}
    views = [BackendView(name, backend.whereabouts()) for name, backend in backends.items()]
    if check:
        parallel(lambda view: _check(view, backends[view.backend]), views)
    return WhoAmI(
        user=user,
        user_branch=naming.branch_name(user=user, branch=None, production=False) if user else None,
        branch=target.branch if target else None,
        project=loaded.project if loaded else None,
        manifest=str(loaded.path) if loaded else None,
        manifest_problem=problem,
        keyring=str(Path(keyring.keyring_home(env))),
        backends=views,
    )


def _check(view: BackendView, backend: Backend) -> None:
    try:
        view.answer = backend.check()
        view.answers = True
    except MfprojError as exc:
        view.answers, view.problem = False, exc.message
