"""Live views on stderr, only where a person watches (a terminal, CI unset), and gone when done.

`ProgressView` follows many deployments: one row per flow and backend with how long it has been in its
state; when the rows would not fit the terminal it collapses to counts (`12/60 done, 2 waiting on a
lock, 1 failed`) plus the rows still moving, so nothing scrolls away and no stale row stays behind.
`RunWatch` follows one run (`trigger --wait`): its status and the time since it started.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mfproj import pacing, retries
from mfproj.cli.output import info, use_color
from mfproj.text import printable

DONE = frozenset({"created", "updated", "unchanged", "deleted", "put back", "not put back"})
WAITING = "waiting on a lock"
ROLLBACK = frozenset({"rolling back", "put back", "not put back"})


def watching() -> bool:
    return sys.stderr.isatty() and not os.environ.get("CI")


def elapsed(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m"


@dataclass
class _Row:
    flow: str
    backend: str
    state: str
    since: float


class ProgressView:
    """Rows are updated from worker threads; rich's Live redraws from its own thread (the clock ticks)."""

    def __init__(self, *, enabled: bool, clock: Callable[[], float] = time.monotonic) -> None:
        self.enabled = enabled and watching()
        self.clock = clock
        self.started = clock()
        self.retries_before = retries.total()
        self._rows: dict[tuple[str, str], _Row] = {}
        self._live: Any = None
        self._lock = threading.Lock()

    def __enter__(self) -> ProgressView:
        if self.enabled:
            from rich.console import Console
            from rich.live import Live

            console = Console(stderr=True, no_color=not use_color(sys.stderr))
            self._live = Live(
                get_renderable=lambda: self.render(console.size.height),
                console=console,
                refresh_per_second=4,
                transient=True,
                vertical_overflow="crop",
            )
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)

    def update(self, flow: str, backend: str, state: str) -> None:
        with self._lock:  # kept even when not shown: cheap, and the summary can be asked for
            row = self._rows.get((flow, backend))
            if row is None or row.state != state:
                self._rows[(flow, backend)] = _Row(flow, backend, state, self.clock())

    def say(self, message: str) -> None:
        """A line for the person watching, above the live view (which would otherwise overwrite it)."""
        with self._lock:
            if self._live is not None:
                self._live.console.print(printable(message, keep_newlines=True), markup=False, highlight=False)
                return
        info(message)

    def summary(self) -> str:
        with self._lock:
            rows = list(self._rows.values())
        rolling = [r for r in rows if r.state in ROLLBACK]
        if rolling:  # after a failure: how far the rollback is, not a count of what failed
            back = sum(r.state != "rolling back" for r in rolling)
            parts = [f"rolling back after a failure: {back}/{len(rolling)} put back or checked"]
            retried = retries.total() - self.retries_before
            if retried:
                parts.append(f"{retried} {'retry' if retried == 1 else 'retries'}")
            return ", ".join(parts) + f" · {elapsed(self.clock() - self.started)}"
        done = sum(r.state in DONE for r in rows)
        parts = [f"{done}/{len(rows)} done"]
        waiting = sum(r.state == WAITING for r in rows)
        failed = sum(r.state == "failed" for r in rows)
        if waiting:
            parts.append(f"{waiting} waiting on a lock")
        if failed:
            parts.append(f"{failed} failed")
        retried = retries.total() - self.retries_before
        if retried:
            parts.append(f"{retried} {'retry' if retried == 1 else 'retries'}")
        throttled = pacing.current().said()
        if throttled:
            parts.append(throttled)
        return ", ".join(parts) + f" · {elapsed(self.clock() - self.started)}"

    def lines(self, height: int) -> list[tuple[str, str, str, str]]:
        """The rows to show in `height` lines: all of them, or (collapsed) the ones still moving, longest
        in their state first, with one line saying how many more there are."""
        now = self.clock()
        with self._lock:
            rows = list(self._rows.values())
        shown = rows
        room = max(height - 3, 1)  # the summary line, the "more" line, and the prompt's line below
        if len(shown) > room:
            shown = sorted((r for r in rows if r.state not in DONE), key=lambda r: r.since)
            if len(shown) > room:
                hidden = len(shown) - (room - 1)
                shown = shown[: room - 1]
                table = [(r.flow, r.backend, r.state, elapsed(now - r.since)) for r in shown]
                return [*table, (f"… and {hidden} more in progress", "", "", "")]
        return [(r.flow, r.backend, r.state, elapsed(now - r.since)) for r in shown]

    def render(self, height: int) -> Any:
        from rich.table import Table
        from rich.text import Text

        from mfproj.backends import registry

        grid = Table.grid(padding=(0, 2))
        grid.add_row(Text(self.summary()))
        inner = Table.grid(padding=(0, 2))
        for flow, backend, state, for_how_long in self.lines(height):
            cells = (flow, registry.label(backend) if backend else "", state, for_how_long)
            inner.add_row(*(Text(printable(cell)) for cell in cells))
        grid.add_row(inner)
        return grid


class RunWatch:
    """`trigger --wait` on a terminal: one live line with the run's status and the time it has taken;
    elsewhere (CI logs) a line each time the status changes."""

    def __init__(self, run_id: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.run_id = run_id
        self.clock = clock
        self.started = clock()
        self.status = "PENDING"
        self.live = watching()
        self._view: Any = None

    def line(self, width: int = 10_000) -> str:
        """The status line, never wider than `width` (a wrapped live line leaves its first half behind):
        the run id's short form and a shorter note where the whole does not fit."""
        from mfproj.backends import registry

        took = elapsed(self.clock() - self.started)
        for run_id, note in (
            (self.run_id, " (Ctrl-C stops waiting, not the run)"),
            (registry.short_run_id(self.run_id), " (Ctrl-C stops waiting, not the run)"),
            (registry.short_run_id(self.run_id), " (Ctrl-C: stop waiting)"),
            (registry.short_run_id(self.run_id), ""),
        ):
            text = f"{run_id} {self.status} · {took}{note}"
            if len(text) < width:
                return text
        return text[: max(width - 2, 1)] + "…"

    def __enter__(self) -> RunWatch:
        if self.live:
            from rich.console import Console
            from rich.live import Live
            from rich.text import Text

            console = Console(stderr=True, no_color=not use_color(sys.stderr))
            self._view = Live(
                get_renderable=lambda: Text(self.line(console.width), no_wrap=True, overflow="ellipsis"),
                console=console,
                transient=True,
            )
            self._view.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._view is not None:
            self._view.__exit__(None, None, None)

    def poll(self, run: Any) -> None:
        if run.status != self.status:
            self.status = run.status
            if not self.live:
                info(f"{self.run_id} {self.status} after {elapsed(self.clock() - self.started)}")
