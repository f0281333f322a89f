"""Options shared by several commands, declared once (Typer side only)."""

from __future__ import annotations

import enum
from typing import Annotated, Optional

import typer


class OutputFormat(str, enum.Enum):
    table = "table"
    json = "json"


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
Output = Annotated[
    OutputFormat,
    typer.Option("--output", "-o", help="table for people, json for scripts.", case_sensitive=False),
]


def manifest_path(ctx: typer.Context) -> str | None:
    root = ctx.find_root()
    obj = root.obj if isinstance(root.obj, dict) else {}
    value = obj.get("manifest")
    return str(value) if value else None
