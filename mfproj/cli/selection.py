"""The selection every command starts from, built once per command: manifest, branch, production,
profile and output format. It loads the manifest and opens the use-case session."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from mfproj.cli import output

if TYPE_CHECKING:
    import typer

    from mfproj.gitbranch import GitChoice
    from mfproj.identity import Target
    from mfproj.manifest import Manifest
    from mfproj.usecases.session import Progress, Session


@dataclass(frozen=True)
class Selection:
    manifest_path: str | None
    branch: str | None = None
    production: bool | None = None
    profile: str | None = None
    output: str = "table"
    branch_from_git: bool = False
    owner: str | None = None  # another user's branch (user.<owner>), as METAFLOW_OWNER selects it
    # The git choice of --branch-from-git, made (and said) once per command however often it is asked for.
    _git_choice: list[GitChoice] = field(default_factory=list, compare=False, repr=False)

    def env(self) -> dict[str, str]:

        return {**os.environ, **({"METAFLOW_OWNER": self.owner} if self.owner else {})}

    def resolved(self, loaded: Manifest) -> Selection:
        """With --branch-from-git (or MFPROJ_BRANCH_FROM_GIT=1), the branch the current git branch maps
        to, said once; explicit --branch/--production win."""

        from mfproj.identity import parse_bool

        wanted = self.branch_from_git or parse_bool(
            "MFPROJ_BRANCH_FROM_GIT", os.environ.get("MFPROJ_BRANCH_FROM_GIT", "0")
        )
        if not wanted or self.branch is not None or self.production is not None:
            return self

        from mfproj import gitbranch

        if not self._git_choice:
            self._git_choice.append(gitbranch.choose(loaded.root, os.environ, loaded.production_branch))
            output.info(self._git_choice[0].note)
        choice = self._git_choice[0]
        return replace(self, branch=choice.branch, production=choice.production, branch_from_git=False)

    @property
    def json(self) -> bool:
        return self.output == "json"

    def manifest(self) -> Manifest:
        from mfproj import manifest

        return manifest.load(self.manifest_path)

    def target(self, loaded: Manifest | None = None) -> Target:
        from mfproj import identity

        loaded = loaded or self.manifest()
        chosen = self.resolved(loaded)
        return identity.select_target(
            loaded.project, branch=chosen.branch, production=chosen.production, env=self.env()
        )

    def session(self, *, progress: Progress | None = None, say: Callable[[str], None] | None = None) -> Session:
        from mfproj.usecases import session

        loaded = self.manifest()
        chosen = self.resolved(loaded)
        opened = session.open_session(
            loaded,
            branch=chosen.branch,
            production=chosen.production,
            env=self.env(),
            profile=self.profile,
            progress=progress or session.quiet,
            notice=output.warn,
            say=say or output.info,
        )
        return opened.with_origin(self._git_choice[0].origin) if self._git_choice else opened


def select(
    ctx: typer.Context,
    *,
    branch: str | None = None,
    production: bool | None = None,
    profile: str | None = None,
    output_format: Any = "table",
    branch_from_git: bool = False,
) -> Selection:
    """The command's selection; also tells the error handler which format errors take (-o json)."""
    root = ctx.find_root()
    obj = root.obj if isinstance(root.obj, dict) else {}
    manifest = obj.get("manifest")
    fmt = str(getattr(output_format, "value", output_format))
    output.set_format(fmt)
    return Selection(str(manifest) if manifest else None, branch, production, profile, fmt, branch_from_git)
