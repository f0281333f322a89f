"""`parallel` with an undo log: a Ctrl-C or SIGTERM that comes while the pairs are being handed to the
threads still finds every write that started, waited for and in the log, before anything is rolled back.

The window is real: a signal is handled in the main thread between two bytecodes, and starting a worker
thread waits for it to run; a KeyboardInterrupt raised there left a thread writing that nobody waited
for (seen in CI: a flow at the new definition after a rollback that could not know of it)."""

from __future__ import annotations

import signal
import threading
import time
from typing import Any

import pytest

from mfproj.transaction import UndoLog
from mfproj.usecases.parallel import parallel


def test_a_signal_while_the_threads_start_still_waits_for_every_write_that_started(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_start = threading.Thread.start
    started_threads: list[threading.Thread] = []
    log = UndoLog()
    began: list[int] = []
    landed: list[int] = []
    lock = threading.Lock()

    def start(thread: threading.Thread) -> None:
        real_start(thread)
        if thread.name.startswith("ThreadPoolExecutor"):
            started_threads.append(thread)
            if len(started_threads) == 2:  # SIGINT as the second worker has begun its write (a loaded machine)
                for _ in range(200):
                    with lock:
                        if len(began) == 2:
                            break
                    time.sleep(0.01)
                signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(threading.Thread, "start", start)

    def write(number: int) -> None:
        log.check()
        with lock:
            began.append(number)
        time.sleep(1.0 if number == 2 else 0.3)  # the second write is in flight longest
        log.push(str(number), "wrote", lambda: None)
        with lock:
            landed.append(number)

    with pytest.raises(KeyboardInterrupt):
        parallel(write, [1, 2, 3], log)
    with lock:
        in_flight = sorted(set(began) - set(landed))
    assert in_flight == [], f"parallel raised while {in_flight} were still writing"
    logged = log.keys()  # every write that landed is in the log, for the rollback to put back
    assert sorted(int(key) for key in logged) == sorted(landed)
    for thread in started_threads:
        thread.join(timeout=5)


def test_a_signal_during_submission_is_raised_once_the_threads_are_waited_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without a log too: the interrupt is not lost, it comes once everything handed out has ended."""
    calls: list[Any] = []
    real_start = threading.Thread.start

    def start(thread: threading.Thread) -> None:
        real_start(thread)
        if thread.name.startswith("ThreadPoolExecutor") and not calls:
            calls.append(thread)
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(threading.Thread, "start", start)
    with pytest.raises(KeyboardInterrupt):
        parallel(lambda n: time.sleep(0.2), [1, 2, 3], UndoLog())
