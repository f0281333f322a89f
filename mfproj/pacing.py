"""Keeping to the rate a backend grants. AWS throttles each API per account with token buckets shared by
every team of the account; the Kubernetes API server answers 429 under priority and fairness. A throttled
call is not an error of the command: each API is paced (unpaced until it is first throttled, then its
calls spaced out, the spacing lengthened by half on each throttle and eased on each success, shared by the command's
threads), the call is retried, and the command fails for throttling only past a time budget
(`MFPROJ_THROTTLE_BUDGET`, seconds since its first throttle; default 10 minutes)."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

# Error codes meaning "too many requests" (not a quota of resources, which waiting does not fix).
THROTTLE_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
    }
)
DEFAULT_BUDGET = 600.0
MIN_INTERVAL = 0.05  # the first spacing after a throttle: 20 calls a second
MAX_INTERVAL = 8.0  # never slower than one call in 8 seconds: the buckets refill at least that fast
EASE = 0.97  # each success shortens the spacing by 3%; a throttle lengthens it by a tenth (SLOW)
SLOW = 1.1
LABELS = {"sfn": "Step Functions", "eventbridge": "EventBridge", "sts": "STS", "kubernetes": "Kubernetes"}
LABELS["resource-groups-tagging-api"] = "the AWS tagging API"


class Pace:
    """One API's pace."""

    def __init__(self, clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self.interval = 0.0
        self._next = 0.0
        self._slowed_at = float("-inf")

    def wait(self, limit: float | None = None) -> float:
        """Blocks until this API may be called again (at most `limit` seconds); returns how long it waited."""
        with self._lock:
            now = self._clock()
            at = max(now, self._next)
            self._next = at + self.interval
        waited = max(at - now, 0.0) if limit is None else min(max(at - now, 0.0), limit)
        if waited > 0:
            self._sleep(waited)
        return waited

    def throttled(self) -> float:
        """Slows down once per spacing: the throttles of calls sent before the last slow-down (a burst of
        the command's threads) say nothing new about the rate."""
        with self._lock:
            now = self._clock()
            if now - self._slowed_at >= self.interval:
                self.interval = min(MAX_INTERVAL, max(self.interval * SLOW, MIN_INTERVAL))
                self._slowed_at = now
            return self.interval

    def succeeded(self) -> None:
        with self._lock:
            self.interval = self.interval * EASE if self.interval > MIN_INTERVAL / 4 else 0.0


class Throttling:
    """The running command's throttling: a pace per API, the throttles seen (for the live view), the budget."""

    def __init__(
        self,
        budget: float = DEFAULT_BUDGET,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.budget, self._clock, self._sleep = budget, clock, sleep
        self._lock = threading.Lock()
        self._paces: dict[str, Pace] = {}
        self._first: float | None = None
        self.by_service: dict[str, int] = {}

    def remaining(self) -> float:
        with self._lock:
            return self.budget if self._first is None else self.budget - (self._clock() - self._first)

    def wait(self, api: str) -> None:
        """An attempt of `api` waits for its pace, never past the budget."""
        left = self.remaining()
        if left > 0:
            self.pace(api).wait(limit=left)

    def pace(self, api: str) -> Pace:
        with self._lock:
            if api not in self._paces:
                self._paces[api] = Pace(self._clock, self._sleep)
            return self._paces[api]

    def retry_after(self, api: str, *, server_says: float | None = None) -> float | None:
        """A throttle of `api` ("service.Operation"): how long to wait before the retry, or None when the
        budget is spent (the call then fails as any other)."""
        service = api.split(".", 1)[0]
        with self._lock:
            now = self._clock()
            self._first = now if self._first is None else self._first
            self.by_service[service] = self.by_service.get(service, 0) + 1
            spent = now - self._first
        if spent >= self.budget:  # a budget of 0: throttles are not retried at all
            return None
        interval = self.pace(api).throttled()
        # The retry waits for its pace's slot anyway (every attempt does): only a little jitter here, or
        # the server's own word (Retry-After).
        wait = interval * 0.1 * random.random() if server_says is None else server_says
        return min(wait, max(self.budget - spent, 0.0) + MIN_INTERVAL)

    def said(self) -> str | None:
        """`throttled by Step Functions (12), pacing`: for the live view, None before any throttle."""
        with self._lock:
            found = dict(self.by_service)
        if not found:
            return None
        parts = [f"{LABELS.get(service, service)} ({count})" for service, count in sorted(found.items())]
        return f"throttled by {', '.join(parts)}, pacing"


_current = [Throttling()]


def current() -> Throttling:
    return _current[0]


def reset(budget: float = DEFAULT_BUDGET) -> Throttling:
    """A fresh account for a command (the CLI resets it at each command's start)."""
    _current[0] = Throttling(budget)
    return _current[0]
