"""The undo log of one change: every write a backend makes pushes how to put it back.

A deploy that fails (or is interrupted) rolls the whole log back, newest first, and then reads back
what is deployed: "nothing was changed" is said only when that read shows it. Both backends push
onto the same log, so the use-case rolls back every flow and backend in one place.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field


class Stopped(Exception):
    """Raised in a worker asked not to start another write (after a failure or an interrupt)."""


@dataclass
class Step:
    key: str  # the deployment it belongs to: "<flow> on <backend label>"
    what: str  # what was done, for the report: "updated the definition"
    undo: Callable[[], None]


@dataclass
class RollbackResult:
    undone: list[str] = field(default_factory=list)  # keys whose every step was put back
    failed: dict[str, list[str]] = field(default_factory=dict)  # key -> what could not be put back, with why


class UndoLog:
    """Thread-safe: flows apply concurrently and push as their writes land."""

    def __init__(self) -> None:
        self._steps: list[Step] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def push(self, key: str, what: str, undo: Callable[[], None]) -> None:
        with self._lock:
            self._steps.append(Step(key, what, undo))

    def stop(self) -> None:
        """No new writes from now on: `check` raises in the workers."""
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def check(self) -> None:
        if self._stop.is_set():
            raise Stopped("stopped before this write")

    def keys(self) -> list[str]:
        with self._lock:
            return list(dict.fromkeys(step.key for step in self._steps))

    def __len__(self) -> int:
        with self._lock:
            return len(self._steps)

    def rollback(self) -> RollbackResult:
        """Every step, newest first; a failed step does not stop the others, and is reported."""
        with self._lock:
            steps, self._steps = list(self._steps), []
        result = RollbackResult()
        for step in reversed(steps):
            try:
                step.undo()
            except Exception as exc:  # reported per deployment, never swallowed
                result.failed.setdefault(step.key, []).append(_short(exc))
        result.undone = [key for key in dict.fromkeys(s.key for s in steps) if key not in result.failed]
        return result


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
