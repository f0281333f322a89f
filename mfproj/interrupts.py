"""Ctrl-C and SIGTERM as one exception, and the short sections that must not be cut by them.

A deploy interrupted half-way rolls back what landed; the rollback itself, the release of locks and
the final keyring write run with signals deferred, so a second Ctrl-C cannot leave a half-state.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (a CI job cancelled, `kill`) is handled like Ctrl-C for the duration."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def deferred(*, reraise: bool = True) -> Iterator[list[int]]:
    """Runs the block with SIGINT and SIGTERM recorded instead of raised. With `reraise`, a signal
    that came in is raised as KeyboardInterrupt once the block is done."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def record(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    saved: dict[signal.Signals, Any] = {}
    for which in (signal.SIGINT, signal.SIGTERM):
        saved[which] = signal.signal(which, record)
    try:
        yield received
    finally:
        for which, handler in saved.items():
            signal.signal(which, handler)
    if received and reraise:
        raise KeyboardInterrupt(signal.Signals(received[0]).name)
