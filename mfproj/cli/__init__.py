"""The command line. `main` tries the fast path first (no Typer import), then the full Typer app."""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    from mfproj.cli import fastpath

    try:
        code = fastpath.try_run(args)
        if code is None:
            from mfproj.cli.app import run

            code = run(args)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`mfproj runs | head -1`): end quietly, as other tools do (128 + SIGPIPE).

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 141
    sys.exit(code)
