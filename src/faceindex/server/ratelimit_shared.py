"""Token buckets kept in the governance database: one budget per key for every server
process of a home (``rate_limit_scope = "home"``).

The same buckets as :class:`~faceindex.server.ratelimit.RateLimiter` (``burst`` at once,
refilled at ``per_minute``), one row per key, read and written in one transaction: SQLite's
``BEGIN IMMEDIATE`` or a PostgreSQL row lock orders the processes. The cost is a database
write per request (docs/SCALING.md, "Several server processes"). Buckets idle long enough
to have refilled are the same as none and are dropped now and then.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

from faceindex.errors import StorageError
from faceindex.governance.database import Database, Tx

__all__ = ["SharedRateLimiter"]

_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS rate_buckets (key TEXT PRIMARY KEY, tokens REAL NOT NULL,"
    " last REAL NOT NULL)"
]
_PRUNE_EVERY = 256  # takes per process between sweeps of refilled buckets


class SharedRateLimiter:
    def __init__(
        self,
        db: Database,
        *,
        per_minute: int,
        burst: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self._db = db
        self._clock = clock
        self._lock = threading.Lock()
        self._takes = 0
        self._for_update = " FOR UPDATE" if db.dialect == "postgresql" else ""
        try:
            db.ddl(_SCHEMA)
        except db.errors as exc:
            raise StorageError(f"cannot open rate limits in {db.url}: {exc}") from exc

    def close(self) -> None:
        self._db.close()

    def take(self, key: str) -> int:
        """Spend one request; returns 0 if allowed, else the seconds to wait (>= 1)."""
        now = self._clock()
        try:
            with self._lock, self._db.tx() as tx:
                tokens = self._tokens(tx, key, now)
                allowed = tokens >= 1.0
                tx.execute(
                    "UPDATE rate_buckets SET tokens = ?, last = ? WHERE key = ?",
                    (tokens - 1.0 if allowed else tokens, now, key),
                )
                self._takes += 1
                if self._takes % _PRUNE_EVERY == 0:
                    tx.execute(
                        "DELETE FROM rate_buckets WHERE last < ?", (now - self.burst / self.rate,)
                    )
        except self._db.errors as exc:
            raise StorageError(f"rate limits in {self._db.url}: {exc}") from exc
        return 0 if allowed else self._wait(tokens)

    def waiting(self, key: str) -> int:
        """The seconds until ``key`` may spend a request (0: now), spending nothing."""
        now = self._clock()
        try:
            with self._lock:
                rows = self._db.rows("SELECT tokens, last FROM rate_buckets WHERE key = ?", (key,))
        except self._db.errors as exc:
            raise StorageError(f"rate limits in {self._db.url}: {exc}") from exc
        tokens = self._refilled(rows[0][0], rows[0][1], now) if rows else self.burst
        return 0 if tokens >= 1.0 else self._wait(tokens)

    def _tokens(self, tx: Tx, key: str, now: float) -> float:
        tx.execute(
            "INSERT INTO rate_buckets VALUES (?,?,?) ON CONFLICT DO NOTHING", (key, self.burst, now)
        )
        row = tx.execute(
            "SELECT tokens, last FROM rate_buckets WHERE key = ?" + self._for_update, (key,)
        ).fetchone()
        return self._refilled(row[0], row[1], now)

    def _refilled(self, tokens: Any, last: Any, now: float) -> float:
        elapsed = max(0.0, now - float(last))
        return min(self.burst, float(tokens) + elapsed * self.rate)

    def _wait(self, tokens: float) -> int:
        return max(1, math.ceil((1.0 - tokens) / self.rate))
