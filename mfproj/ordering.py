"""Runs in the order people read them: the newest first, from streams too long to hold."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")


def newest_first(runs: Iterable[T], limit: int, started: Callable[[T], _dt.datetime | None]) -> list[T]:
    """The newest `limit` of `runs`, newest first, keeping at most `limit` in memory (a bounded heap)."""
    import heapq

    kept: list[tuple[float, int, T]] = []
    for order, run in enumerate(runs):
        moment = started(run)
        entry = (moment.timestamp() if moment else 0.0, -order, run)
        if len(kept) < limit:
            heapq.heappush(kept, entry)
        elif entry[:2] > kept[0][:2]:
            heapq.heapreplace(kept, entry)
    return [run for _, _, run in sorted(kept, key=lambda e: e[:2], reverse=True)]
