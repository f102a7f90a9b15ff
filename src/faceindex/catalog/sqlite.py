"""SQLite catalog: WAL mode, one writer, secure_delete. The SQL itself lives in sql.py."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

from faceindex.catalog.sql import Cursor, SqlCatalog, marks, utcnow
from faceindex.errors import StorageError

__all__ = ["SqliteCatalog", "utcnow"]

# RETURNING (used for new ids) arrived in SQLite 3.35.0 (2021-03).
MIN_SQLITE = (3, 35, 0)


def connect(path: Path, *, secure_delete: bool) -> sqlite3.Connection:
    """A connection as every faceindex SQLite file is opened: explicit transactions, WAL,
    durable at each commit (synchronous=FULL), shareable between threads (callers lock)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    if secure_delete:
        db.execute("PRAGMA secure_delete=ON")
    return db


class SqliteCatalog(SqlCatalog):
    """The embedded catalog. Safe to share between threads (one connection, one lock)."""

    dialect = "sqlite"
    integrity_errors = (sqlite3.IntegrityError,)
    driver_errors = (sqlite3.Error,)

    def __init__(self, path: Path | str) -> None:
        super().__init__()
        if sqlite3.sqlite_version_info < MIN_SQLITE:
            raise StorageError(
                f"SQLite {sqlite3.sqlite_version} is too old for the catalog (needs 3.35 or later)"
            )
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"
        try:
            # secure_delete: erased rows are overwritten with zeros, leaving no bytes behind.
            self._db = connect(self.path, secure_delete=True)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open catalog {self.path}: {exc}") from exc
        self._migrate()

    # -- dialect hooks --------------------------------------------------------------------

    def _execute(self, sql: str, params: Sequence[object]) -> Cursor:
        return self._db.execute(sql, tuple(params))

    def _insert_rows(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[object]]
    ) -> None:
        # In-process: a statement per row costs no round trip.
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks(len(columns))})"
        self._db.executemany(sql, [tuple(r) for r in rows])

    def _new_ids(self, table: str, n: int) -> list[int]:
        # AUTOINCREMENT's high-water mark; BEGIN IMMEDIATE keeps other writers out until
        # these rows are in (and move the mark past them).
        row = self._db.execute(
            "SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)
        ).fetchone()
        last = int(row[0]) if row else 0
        return list(range(last + 1, last + 1 + int(n)))

    @contextmanager
    def _begin(self) -> Iterator[None]:
        # IMMEDIATE takes the write lock up front: one writer, no upgrade deadlocks.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    # -- SQLite only ----------------------------------------------------------------------

    def checkpoint(self) -> None:
        """Fold the WAL into the main file and truncate it (after physical deletes)."""
        with self._lock:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        with self._lock:
            with suppress(sqlite3.Error):
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.close()
