"""The selection every command starts from, built once per command: manifest, branch, production,
profile and output format. It loads the manifest and opens the use-case session."""

from __future__ import annotations

import inspect
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
        return identity.target_for(loaded.project, branch=chosen.branch, production=chosen.production, env=self.env())

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


@dataclass
class Invocation:
    """What the root command learnt (--manifest, --debug) and the output format the command chose: made by
    `app.run` for one command and handed down as the click context's `obj`, so the error handler knows
    whether the command's errors are JSON without a module-level setting."""

    manifest: str | None = None
    debug: bool = False
    output: str = "table"


def invocation(ctx: typer.Context) -> Invocation:
    root = ctx.find_root()
    if not isinstance(root.obj, Invocation):
        root.obj = Invocation()
    return root.obj


def select(ctx: typer.Context, *, output_format: Any = "table", **chosen: Any) -> Selection:
    """The command's selection from its common options; the output format is recorded on the invocation
    for the error handler (-o json errors are JSON)."""
    state = invocation(ctx)
    state.output = str(getattr(output_format, "value", output_format))
    chosen.update(whole_branch(chosen.get("branch"), chosen.get("production"), chosen.get("owner")))
    return Selection(state.manifest, output=state.output, **chosen)


def whole_branch(branch: str | None, production: bool | None, owner: str | None) -> dict[str, Any]:
    """--branch, --production and --user as one branch. `--branch` also takes a whole branch name of any
    kind, as other commands print them: `user.bob` (as --user bob), `test.x` (as --branch x), `prod.x`
    with --production (production is never chosen without it being named); a branch name of the
    reference has no dot, so nothing is ambiguous."""
    from mfproj.errors import UsageError

    kind, dot, rest = (branch or "").partition(".")
    if dot and kind in ("user", "test", "prod") and rest:
        if owner is not None or (production and kind != "prod"):
            raise UsageError(f"--branch {branch} names a whole branch: it does not go with --user or --production")
        if kind == "prod" and not production:
            raise UsageError(
                f"--branch {branch} is a production branch: production is chosen only with --production named",
                hint=f"--production --branch {rest}",
            )
        if kind == "user":
            return {"branch": None, "production": False, "owner": rest}
        return {"branch": rest, "production": kind == "prod", "owner": None}
    if owner is not None:
        if branch is not None or production:
            raise UsageError("--user selects a user branch; it does not go with --branch or --production")
        return {"branch": None, "production": False, "owner": owner}
    return {"branch": branch, "production": production, "owner": None}


def _common(*, branch: bool, from_git: bool, profile: bool, user: bool = False) -> list[inspect.Parameter]:
    """The options every command that selects a branch shares, declared here once."""
    from mfproj.cli import options

    wanted: list[tuple[str, Any, Any]] = []
    if branch:
        wanted += [("branch", options.Branch, None), ("production", options.Production, None)]
    if user:
        wanted.append(("owner", options.User, None))
    if from_git:
        wanted.append(("branch_from_git", options.BranchFromGit, False))
    if profile:
        wanted.append(("profile", options.Profile, None))
    wanted.append(("output_format", options.Output, options.OutputFormat.table))
    keyword = inspect.Parameter.KEYWORD_ONLY
    return [inspect.Parameter(name, keyword, default=default, annotation=hint) for name, hint, default in wanted]


def with_selection(
    *, branch: bool = True, from_git: bool = False, profile: bool = True, user: bool = False
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Makes `function(selection, ...)` a Typer command: its own parameters, then the common options
    (--branch/-b and --production unless `branch=False`, --user with `user`, --branch-from-git with
    `from_git`, --profile unless `profile=False`, -o), which become the `Selection` it is called with."""

    def wrap(function: Callable[..., None]) -> Callable[..., None]:
        own = list(inspect.signature(function, eval_str=True).parameters.values())[1:]  # after `selection`
        common = _common(branch=branch, from_git=from_git, profile=profile, user=user)
        common_names = [parameter.name for parameter in common]

        def command(ctx: typer.Context, **given: Any) -> None:
            selection = select(ctx, **{name: given.pop(name) for name in common_names})
            function(selection, **given)

        context = inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=_context_type())
        signature = inspect.Signature([context, *own, *common])
        command.__signature__ = signature  # type: ignore[attr-defined]
        # Typer reads the hints too: these, not the wrapper's own (strings naming what this module lacks)
        command.__annotations__ = {parameter.name: parameter.annotation for parameter in signature.parameters.values()}
        command.__name__, command.__doc__ = function.__name__, function.__doc__
        return command

    return wrap


def _context_type() -> Any:
    import typer

    return typer.Context
