"""Rendering for the CLI: data on stdout, messages on stderr, colour only where a person watches.

rich is imported only when a table is drawn, so JSON output and errors stay fast.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from mfproj.errors import EXIT_UNEXPECTED, MfprojError

_state = {"no_color": False}


def set_no_color(value: bool) -> None:
    _state["no_color"] = value


def use_color(stream: TextIO) -> bool:
    if _state["no_color"] or os.environ.get("NO_COLOR"):
        return False
    return stream.isatty()


def is_interactive() -> bool:
    """Prompts only when a person can answer: stdin is a terminal and CI is not set."""
    return sys.stdin.isatty() and not os.environ.get("CI")


def _paint(text: str, code: str, stream: TextIO) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if use_color(stream) else text


def emit_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def emit_text(text: str) -> None:
    sys.stdout.write(text)


def info(message: str) -> None:
    print(message, file=sys.stderr)


def warn(message: str) -> None:
    print(_paint("warning:", "33", sys.stderr), message, file=sys.stderr)


def report_error(exc: BaseException, *, debug: bool) -> int:
    """The one place errors are shown. Expected errors: one line and a hint; others: say how to debug.

    Every production token is masked here (a backend's message or a traceback may quote one)."""
    from mfproj.tokens import mask_text

    if debug:
        import traceback

        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        sys.stderr.write(mask_text(text))
    if isinstance(exc, MfprojError):
        print(_paint("error:", "31;1", sys.stderr), mask_text(exc.message), file=sys.stderr)
        if exc.hint:
            print(_paint("hint:", "36", sys.stderr), mask_text(exc.hint), file=sys.stderr)
        return exc.exit_code
    message = mask_text(f"unexpected {type(exc).__name__}: {exc}")
    print(_paint("error:", "31;1", sys.stderr), message, file=sys.stderr)
    if not debug:
        print(_paint("hint:", "36", sys.stderr), "run again with --debug to see the traceback", file=sys.stderr)
    return EXIT_UNEXPECTED


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A table for people on stdout; plain aligned text when stdout is not a terminal."""
    if not sys.stdout.isatty():
        widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(columns)]
        lines = [columns, *rows]
        for line in lines:
            sys.stdout.write("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip() + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    console = Console(no_color=not use_color(sys.stdout), highlight=False)
    grid = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        grid.add_column(column, overflow="fold")
    for row in rows:
        grid.add_row(*row)
    console.print(grid)


class ProgressView:
    """A live table of what each flow is doing, on stderr, only where a person watches.

    `update` is called from worker threads; rich's Live refreshes from its own thread.
    """

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty() and not os.environ.get("CI")
        self._states: dict[tuple[str, str], str] = {}
        self._live: Any = None
        import threading

        self._lock = threading.Lock()

    def __enter__(self) -> ProgressView:
        if self.enabled:
            from rich.console import Console
            from rich.live import Live

            self._live = Live(
                self._render(),
                console=Console(stderr=True, no_color=not use_color(sys.stderr)),
                refresh_per_second=8,
                transient=True,
            )
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)

    def _render(self) -> Any:
        from rich.table import Table

        grid = Table.grid(padding=(0, 2))
        for (flow, backend), state in self._states.items():
            grid.add_row(flow, backend.replace("_", " "), state)
        return grid

    def say(self, message: str) -> None:
        """A line for the person watching, above the live view (which would otherwise overwrite it)."""
        with self._lock:
            if self._live is not None:
                self._live.console.print(message, markup=False, highlight=False)
                return
        info(message)

    def update(self, flow: str, backend: str, state: str) -> None:
        if not self.enabled:
            return
        with self._lock:
            self._states[(flow, backend)] = state
            if self._live is not None:
                self._live.update(self._render())
