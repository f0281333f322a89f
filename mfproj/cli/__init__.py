"""The command line. `main` tries the fast path first (no Typer import), then the full Typer app."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    from mfproj.cli import fastpath

    code = fastpath.try_run(args)
    if code is None:
        from mfproj.cli.app import run

        code = run(args)
    sys.exit(code)
