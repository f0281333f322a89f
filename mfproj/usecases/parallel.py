"""Running one function over (flow, backend) pairs concurrently, interruptibly."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from mfproj import interrupts
from mfproj.transaction import Stopped, UndoLog

MAX_WORKERS = 64  # requests wait on the network, not the CPU: flows overlap their round trips
P = TypeVar("P")


def parallel(function: Callable[[P], Any], pairs: list[P], log: UndoLog | None = None) -> list[Any]:
    """Runs `function` over pairs concurrently; re-raises the first failure after all have finished.

    With a `log`, the first failure (or Ctrl-C / SIGTERM in the main thread) stops the log, so the
    workers start no new write; the main thread waits for the writes in flight before raising.
    """
    if len(pairs) <= 1 and log is None:
        return [function(pair) for pair in pairs]
    from concurrent.futures import FIRST_EXCEPTION, wait

    pool = ThreadPoolExecutor(max_workers=max(1, min(MAX_WORKERS, len(pairs))))
    futures: list[Any] = []
    interrupted: BaseException | None = None
    try:
        # Handed out with signals deferred: an interrupt raised inside submit() (while a worker thread
        # starts) would leave a thread writing that neither `futures` nor the pool's shutdown waits for.
        with interrupts.deferred():
            for pair in pairs:
                futures.append(pool.submit(function, pair))
        pending = set(futures)
        while pending:  # short waits, so that Ctrl-C reaches the main thread at once
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_EXCEPTION)
            if log is not None and any(f.exception() is not None for f in done):
                log.stop()
    except KeyboardInterrupt as exc:
        interrupted = exc
        if log is not None:
            log.stop()
    with interrupts.deferred(reraise=False) as late:
        wait(futures)  # the writes in flight land (or fail) before anything is rolled back
        pool.shutdown()
    interrupted = interrupted or (KeyboardInterrupt() if late else None)
    failures = [f.exception() for f in futures if f.exception() is not None]
    first = next((e for e in failures if not isinstance(e, Stopped)), failures[0] if failures else None)
    if interrupted is not None and (first is not None or log is None):
        raise interrupted
    if first is not None:
        raise first
    if interrupted is not None:
        raise AllLanded() from interrupted
    return [f.result() for f in futures]


class AllLanded(KeyboardInterrupt):
    """Interrupted after every write had landed: finish (the keyring), then report the interrupt."""
