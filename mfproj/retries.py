"""A count of the requests the backends' clients retried (throttling, 5xx, dropped connections), for
the live view: a deploy that is slow because its backend keeps failing says so instead of looking stuck."""

from __future__ import annotations

import threading

_lock = threading.Lock()
_count = [0]


def note(count: int = 1) -> None:
    with _lock:
        _count[0] += count


def total() -> int:
    with _lock:
        return _count[0]
