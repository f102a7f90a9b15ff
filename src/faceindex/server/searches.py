"""Which faces each account has been shown, so images are served only through a result.

A thumbnail or an original is fetched as ``/v1/searches/{search}/faces/{face}/...``: the
search must be the caller's own and the face must have been among its results. Face ids
alone therefore cannot be used to walk the gallery. Kept for ``ttl_s`` (wall-clock
seconds), at most ``max_entries`` (the oldest go first).

The records live in the governance database (``searches`` beside the governance store's
tables: ``governance.db`` or PostgreSQL, ``governance/database.py``), so a link one server
process produced is answered by any other. Without a database (tests, library use) they
are kept in a private in-memory SQLite database, through the same SQL.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable, Iterable

from faceindex.errors import NotFoundError, StorageError
from faceindex.governance.database import Database, SqliteDatabase

__all__ = ["ShownFaces"]

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS searches (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, faces TEXT NOT NULL, at REAL NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS searches_at ON searches (at)",
]


class ShownFaces:
    def __init__(
        self,
        db: Database | None = None,
        *,
        ttl_s: float = 24 * 3600,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._db: Database = db if db is not None else SqliteDatabase(":memory:")
        self._lock = threading.Lock()
        try:
            self._db.ddl(_SCHEMA)
        except self._db.errors as exc:
            raise StorageError(f"cannot open search records in {self._db.url}: {exc}") from exc

    def close(self) -> None:
        self._db.close()

    def record(self, owner: str, face_ids: Iterable[int]) -> str:
        """Remember a result set; returns its id (24 hex digits, as before)."""
        search_id = secrets.token_hex(12)
        faces = json.dumps(sorted({int(f) for f in face_ids}))
        now = self._clock()
        try:
            with self._lock, self._db.tx() as tx:
                tx.execute("INSERT INTO searches VALUES (?,?,?,?)", (search_id, owner, faces, now))
                tx.execute(  # the expired, and the oldest past the cap: one round trip
                    "DELETE FROM searches WHERE at < ? OR at <= (SELECT at FROM searches"
                    " ORDER BY at DESC LIMIT 1 OFFSET ?)",
                    (now - self.ttl_s, self.max_entries),
                )
        except self._db.errors as exc:
            raise StorageError(f"cannot record a search in {self._db.url}: {exc}") from exc
        return search_id

    def check(self, owner: str, search_id: str, face_id: int) -> None:
        """Raise NotFoundError unless ``owner`` was shown ``face_id`` in ``search_id``."""
        try:
            with self._lock:
                rows = self._db.rows(
                    "SELECT owner, faces, at FROM searches WHERE id = ?", (search_id,)
                )
        except self._db.errors as exc:
            raise StorageError(f"cannot read search records in {self._db.url}: {exc}") from exc
        if not rows or str(rows[0][0]) != owner:
            raise NotFoundError(f"no search {search_id!r}")
        if self._clock() - float(rows[0][2]) > self.ttl_s:
            raise NotFoundError(f"no search {search_id!r}")
        if int(face_id) not in json.loads(str(rows[0][1])):
            raise NotFoundError(f"face {face_id} is not among the results of this search")
