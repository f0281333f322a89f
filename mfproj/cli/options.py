"""Options shared by several commands, declared once (Typer side only)."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from mfproj.backends import registry
from mfproj.cli import helptext


class OutputFormat(str, enum.Enum):
    table = "table"
    wide = "wide"
    json = "json"


# The CLI's backend choices, from the registry (the one place backends are listed).
BackendName = enum.Enum("BackendName", {spec.name: spec.cli_name for spec in registry.SPECS}, type=str)  # type: ignore[misc]


FlowArguments = Annotated[
    Optional[list[str]],  # noqa: UP045 - Typer inspects this annotation at run time on Python 3.10
    typer.Argument(help="Flows to act on (default: every flow in the manifest).", show_default=False, metavar="FLOW"),
]
Branch = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--branch",
        "-b",
        help="Custom branch: test.<BRANCH>, or prod.<BRANCH> with --production. [env: MFPROJ_BRANCH, METAFLOW_BRANCH]",
        show_default=False,
    ),
]
Production = Annotated[
    Optional[bool],  # noqa: UP045
    typer.Option(
        "--production/--no-production",
        help="The production branch (prod, or prod.<BRANCH>). [env: MFPROJ_PRODUCTION, METAFLOW_PRODUCTION]",
        show_default=False,
    ),
]
User = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option("--user", metavar="U", help="Another user's branch: user.<U>.", show_default=False),
]
Output = Annotated[
    OutputFormat,
    typer.Option(
        "--output",
        "-o",
        help="table for people (fits the terminal), wide (every column in full), json for scripts.",
        case_sensitive=False,
    ),
]


Backends = Annotated[
    Optional[list[BackendName]],  # noqa: UP045
    typer.Option(
        "--backend",
        help="Only this backend (repeatable). Default: every backend the flow has a template for.",
        show_default=False,
    ),
]
Backend = Annotated[
    Optional[BackendName],  # noqa: UP045
    typer.Option("--backend", help="The backend, when the flow is on more than one.", show_default=False),
]
Authorize = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--authorize",
        metavar="TOKEN",
        help="The deployment's production token (production:<token> accepted). "
        "Also: MFPROJ_PRODUCTION_TOKEN, the keyring.",
        show_default=False,
    ),
]
AuthorizeFile = Annotated[
    Optional[Path],  # noqa: UP045
    typer.Option(
        "--authorize-file",
        metavar="PATH",
        help="Read the production token (or a share string) from a file.",
        show_default=False,
        dir_okay=False,
    ),
]
BranchFromGit = Annotated[
    bool,
    typer.Option(
        "--branch-from-git",
        help="The branch of the current git branch (normalized); the manifest's production_branch is prod. "
        "[env: MFPROJ_BRANCH_FROM_GIT]",
    ),
]
Profile = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option("--profile", help="AWS profile. [env: AWS_PROFILE]", show_default=False),
]


class ListByDefault(helptext.Group):
    """A command group whose default subcommand is `list`: anything that is not a subcommand (flow names,
    options) goes to it, so `mfproj runs --tag x` works and `mfproj runs show ID` is its own command."""

    default_command = "list"

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("-h", "--help")):
            args = [self.default_command, *args]
        result: list[str] = super().parse_args(ctx, args)
        return result


def backend_names(values: list[Any] | None) -> list[str] | None:
    """--backend values (enum members or text) as registry names, without duplicates."""
    return registry.normalize([str(getattr(v, "value", v)) for v in values]) if values else None


def backend_label(backend: str) -> str:
    return registry.label(backend)


def token_options(authorize: str | None, authorize_file: Path | None, generate_new: bool) -> Any:
    """--authorize, --authorize-file and --generate-new-token as the use-cases take them."""
    from mfproj.usecases.session import TokenOptions

    return TokenOptions(authorize, authorize_file, generate_new)
