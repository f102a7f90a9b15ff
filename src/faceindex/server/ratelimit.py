"""A token bucket per key: ``burst`` requests at once, refilled at ``per_minute``.

Keys are account names for signed-in requests and client addresses for failed sign-ins
(see :mod:`faceindex.server.auth`). A bucket that has refilled is the same as no bucket, so
past ``max_keys`` full ones are dropped: many addresses cannot grow the table without bound.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

__all__ = ["RateLimiter"]


class RateLimiter:
    def __init__(
        self,
        *,
        per_minute: int,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill)
        self._lock = threading.Lock()

    def take(self, key: str) -> int:
        """Spend one request; returns 0 if allowed, else the seconds to wait (>= 1)."""
        now = self._clock()
        with self._lock:
            tokens = self._tokens(key, now)
            allowed = tokens >= 1.0
            self._buckets[key] = (tokens - 1.0 if allowed else tokens, now)
            if len(self._buckets) > self.max_keys:
                self._shrink(now)
            return 0 if allowed else self._wait(tokens)

    def waiting(self, key: str) -> int:
        """The seconds until ``key`` may spend a request (0: now), spending nothing."""
        now = self._clock()
        with self._lock:
            tokens = self._tokens(key, now)
            return 0 if tokens >= 1.0 else self._wait(tokens)

    def _tokens(self, key: str, now: float) -> float:
        tokens, last = self._buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - last) * self.rate)

    def _wait(self, tokens: float) -> int:
        return max(1, math.ceil((1.0 - tokens) / self.rate))

    def _shrink(self, now: float) -> None:
        """Drop the buckets that have refilled; if none has, the least recently used half
        (a dropped key starts again with a full bucket: lenient, never stricter)."""
        full = [k for k in self._buckets if self._tokens(k, now) >= self.burst]
        if not full:
            by_age = sorted(self._buckets, key=lambda k: self._buckets[k][1])
            full = by_age[: len(by_age) // 2]
        for k in full:
            del self._buckets[k]
