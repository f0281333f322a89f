"""Rendering for the CLI: data on stdout, messages on stderr, colour only where a person watches.

rich is imported only when a table is drawn, so JSON output and errors stay fast.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from mfproj.errors import EXIT_UNEXPECTED, MfprojError
from mfproj.text import printable

_state: dict[str, Any] = {"no_color": False}
# Messages come from worker threads too: one write per line, under one lock, so lines never interleave.
_write_lock = threading.Lock()
_warned: dict[str, int] = {}  # each warning of the running command, and how often it came


def set_no_color(value: bool) -> None:
    _state["no_color"] = value


def wants_json(chosen: str, args: Sequence[str] = ()) -> bool:
    """Whether errors should be JSON: the command chose -o json, or its arguments ask for it (an error
    can come before the command has parsed its options)."""
    if chosen == "json":
        return True
    for index, word in enumerate(args):
        if word in ("-o", "--output") and index + 1 < len(args) and args[index + 1].lower() == "json":
            return True
        if word.lower() in ("--output=json", "-ojson"):
            return True
    return False


class ReaderGone(Exception):
    """stdout's reader went away. Not an OSError on purpose: Click turns a broken pipe (EPIPE) into exit 1
    on its own, and the command should end as other tools do (141, quietly), which `main` does."""


class GuardedStdout:
    """sys.stdout while a command runs: writes to a closed pipe raise ReaderGone."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            raise ReaderGone() from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise ReaderGone() from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


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


def _line(text: str) -> None:
    with _write_lock:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()


def info(message: str) -> None:
    _line(printable(message, keep_newlines=True))


def warn(message: str) -> None:
    """A warning line; the same warning again is not repeated but counted (said by `flush_warnings`)."""
    with _write_lock:
        seen = _warned.get(message, 0)
        _warned[message] = seen + 1
    if not seen:
        _line(_paint("warning:", "33", sys.stderr) + " " + printable(message, keep_newlines=True))


def reset_warnings() -> None:
    """Forgets the warnings counted so far (a command starts afresh; in-process callers run many)."""
    with _write_lock:
        _warned.clear()


def flush_warnings() -> None:
    """At the end of a command: each warning that came more than once, once more with its count."""
    with _write_lock:
        repeated = [(message, count) for message, count in _warned.items() if count > 1]
        _warned.clear()
    for message, count in repeated:
        _line(f"{_paint('warning:', '33', sys.stderr)} {printable(message)} ({count} times in all)")


def report_error(exc: BaseException, *, debug: bool, as_json: bool = False) -> int:
    """The one place errors are shown: an `error:` line and a `hint:` line (a JSON object on stderr under
    -o json), or for unexpected errors how to debug. Every production token is masked here (a backend's
    message or a traceback may quote one)."""
    from mfproj.tokens import mask_text

    if debug:
        import traceback

        sys.stderr.write(mask_text("".join(traceback.format_exception(type(exc), exc, exc.__traceback__))))
    hint: str | None
    if isinstance(exc, MfprojError):
        code, exit_code, message, hint = exc.code, exc.exit_code, exc.message, exc.hint
    else:
        code, exit_code = "unexpected", EXIT_UNEXPECTED
        message = f"unexpected {type(exc).__name__}: {exc}"
        hint = "this is a bug in mfproj: please report it" if debug else "run again with --debug to see the traceback"
    message, hint = mask_text(message), mask_text(hint) if hint else None
    if as_json:
        error = {"code": code, "exit_code": exit_code, "message": message, "hint": hint}
        _line(json.dumps({"error": error}, ensure_ascii=False))
        return exit_code
    _line(_paint("error:", "31;1", sys.stderr) + " " + printable(message, keep_newlines=True))
    if hint:
        _line(_paint("hint:", "36", sys.stderr) + " " + printable(hint, keep_newlines=True))
    return exit_code


def confirm(question: str, *, yes: bool, refusal: str) -> bool:
    """The one confirmation: True with --yes; a [y/N] question on a terminal; without one, an error
    (`refusal` says what needs --yes) rather than a prompt nobody can answer."""
    if yes:
        return True
    if not is_interactive():
        from mfproj.errors import UsageError

        raise UsageError(refusal, hint="pass --yes to confirm")
    info(f"{question} [y/N] ")
    return sys.stdin.readline().strip().lower() in ("y", "yes")


@dataclass
class View:
    """A result as people see it: lines before, a table, lines after (all optional)."""

    columns: Sequence[str] = ()
    rows: Sequence[Sequence[str]] = ()
    before: Sequence[str] = ()
    after: Sequence[str] = ()
    empty: str | None = None  # said instead of an empty table
    ids: Sequence[str] = ()  # columns people copy (ids, names): never wrapped or cut; default ID_COLUMNS
    optional: Sequence[str] = ()  # left out, in this order, where the terminal is too narrow (-o wide: never)
    short: Mapping[str, Callable[[str], str]] = field(default_factory=dict)  # column -> its narrow form
    # The same rows one value per line (columns, rows), shown instead where the table would not fit and
    # its columns are all ids that cannot be cut (`names`: a flow's names on every backend).
    narrow: tuple[Sequence[str], Sequence[Sequence[str]]] | None = None


# Columns whose values are copied into other commands: a terminal table never wraps or cuts them.
ID_COLUMNS = frozenset(
    {"run id", "name", "deployed as", "token prefix", "state machine", "eventbridge rule", "argo workflow template"}
)
# Columns that say what a row is or what happened to it: never cut either (`SUCCE…` says nothing).
WHOLE_COLUMNS = frozenset({"status", "action", "running"})


def _narrow_forms() -> dict[str, Callable[[str], str]]:
    """The forms every narrow table uses: backends as sfn/argo, run ids in their short form."""
    from mfproj.backends import registry

    return {"backend": lambda label: registry.SHORT_LABELS.get(label, label), "run id": registry.short_run_id}


def show(fmt: str, document: Any, view: View) -> None:
    """The one renderer: the JSON document on stdout, or the view (messages on stderr, the table on stdout)."""
    if fmt == "json":
        emit_json(document)
        return
    for line in view.before:
        info(line)
    if view.columns and view.rows:
        columns, rows = view.columns, view.rows
        if view.narrow and fmt != "wide" and sys.stdout.isatty() and not _fits(columns, rows):
            columns, rows = view.narrow
        ids = view.ids or [c for c in columns if c in ID_COLUMNS]
        table(columns, rows, ids=ids, optional=view.optional, wide=fmt == "wide", short=view.short)
    elif view.empty:
        info(view.empty)
    for line in view.after:
        info(line)


def table(
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    ids: Sequence[str] = (),
    optional: Sequence[str] = (),
    wide: bool = False,
    short: Mapping[str, Callable[[str], str]] | None = None,
) -> None:
    """A table for people on stdout; plain aligned text (nothing cut) when stdout is not a terminal.

    On a terminal the table fits its width: values take their narrow forms (`short`, and sfn/argo for
    backends, short run ids), `optional` columns are left out while it would not fit, `ids` and
    WHOLE_COLUMNS keep their whole values, and the other columns are cut with "…", not below their
    header while the header can fit. `wide` shows every column and value in full, however wide.
    """
    rows = [[printable(cell) for cell in row] for row in rows]  # backend text: shown literally, on one line
    widths = _widths(columns, rows)
    if not sys.stdout.isatty():
        for line in [columns, *rows]:
            sys.stdout.write("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip() + "\n")
        return
    import shutil

    terminal = shutil.get_terminal_size().columns
    narrowed = not wide and sum(widths) + 2 * (len(widths) - 1) > terminal
    if narrowed:
        forms = {**_narrow_forms(), **(short or {})}
        shorten = [forms.get(column) for column in columns]
        rows = [[f(cell) if f else cell for f, cell in zip(shorten, row, strict=True)] for row in rows]
        widths = _widths(columns, rows)
    keep = list(range(len(columns)))
    if not wide:  # the optional columns go first, so that the others can be shown whole
        for name in optional:
            if sum(widths[i] for i in keep) + 2 * (len(keep) - 1) <= terminal:
                break
            keep = [i for i in keep if columns[i] != name]
    kept_widths = [widths[i] for i in keep]
    fixed = [columns[i] in ids or columns[i] in WHOLE_COLUMNS for i in keep]
    available = terminal - 2 * (len(keep) - 1)
    headers = [len(columns[i]) for i in keep]
    sizes = kept_widths if wide else fit(kept_widths, fixed, available, floors=headers)
    _draw([columns[i] for i in keep], [[r[i] for i in keep] for r in rows], sizes)
    if narrowed or len(keep) < len(columns) or sizes != kept_widths:
        info("(cut to fit the terminal: -o wide shows every column in full)")


_NARROWEST = 6  # a column cut below this says nothing


def _fits(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> bool:
    import shutil

    widths = _widths(columns, [[printable(cell) for cell in row] for row in rows])
    return sum(widths) + 2 * (len(widths) - 1) <= shutil.get_terminal_size().columns


def _widths(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> list[int]:
    return [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(columns)]


def fit(
    widths: Sequence[int], fixed: Sequence[bool], available: int, *, floors: Sequence[int] | None = None
) -> list[int]:
    """Column widths that fit `available`: fixed columns whole, the others from their floor (the header's
    width, when every floor fits; else _NARROWEST) up, the room left shared out evenly (a column never
    gets more than it needs)."""
    least = [max(_NARROWEST, floor) for floor in floors or [0] * len(widths)]
    headed = [w if keep else min(w, low) for w, keep, low in zip(widths, fixed, least, strict=True)]
    if sum(headed) <= available:
        sizes = headed
    else:
        sizes = [w if keep else min(w, _NARROWEST) for w, keep in zip(widths, fixed, strict=True)]
    room = available - sum(sizes)
    waiting = sorted((i for i, keep in enumerate(fixed) if not keep), key=lambda i: widths[i] - sizes[i])
    for position, index in enumerate(waiting):
        share = max(room, 0) // (len(waiting) - position)
        given = min(widths[index] - sizes[index], share)
        sizes[index] += given
        room -= given
    return sizes


def _draw(columns: Sequence[str], rows: Sequence[Sequence[str]], sizes: list[int]) -> None:
    import shutil

    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    needed = sum(sizes) + 2 * (len(sizes) - 1)
    terminal = shutil.get_terminal_size().columns
    console = Console(no_color=not use_color(sys.stdout), highlight=False, width=max(terminal, needed))
    grid = Table(box=None, header_style="bold", padding=(0, 1), pad_edge=False, show_edge=False)
    for column, size in zip(columns, sizes, strict=True):
        grid.add_column(column, no_wrap=True, overflow="ellipsis", width=size)
    for row in rows:
        grid.add_row(*(Text(cell) for cell in row))  # Text: '[/bold]' in an owner is not markup
    console.print(grid, crop=False)
