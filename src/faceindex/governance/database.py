"""Where governance state lives: the one seam under the audit chain, the governance store,
the API accounts, the search records and the HTTP ingest jobs (``governance/job_records.py``).

``governance_url`` picks it, as ``catalog_url`` picks the catalog:

* empty (the default) or ``sqlite://``: today's files in the engine home, one SQLite file
  per part (``audit.db``, ``governance.db``, ``accounts.db``), WAL, one writer at a time
  (``BEGIN IMMEDIATE``), cross-process locks by ``flock`` beside them: one box.
* ``sqlite:///dir``: the same files in ``dir``.
* ``postgresql://...[?schema=NAME]``: every part's tables in one PostgreSQL database (its
  own schema if named), so every node sees one truth; locks are advisory locks of the
  database, dropped with a dead process's session (``governance/postgres.py``).

Every part is written once, over :class:`Database`: SQL in SQLite's spelling with ``?``
parameters (the PostgreSQL dialect rewrites both), so the SQLite implementation is the
oracle the contract suite (tests/contract/test_governance_store_contract.py) holds the
PostgreSQL one to.
"""

from __future__ import annotations

import contextlib
import fcntl
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from faceindex.catalog.sqlite import connect
from faceindex.errors import ConfigError, MissingDependency, StorageError

__all__ = ["Database", "SqliteDatabase", "Tx", "open_database"]


class Tx(Protocol):
    """One open transaction: ``execute`` returns a cursor (``fetchone``, ``fetchall``,
    ``rowcount``)."""

    def execute(self, sql: str, params: Sequence[object] = ()) -> Any: ...

    def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None: ...


class Database(Protocol):
    """A governance database: SQLite file or PostgreSQL schema.

    ``tx`` serialises writers (SQLite: the file's write lock taken up front; PostgreSQL:
    READ COMMITTED, with the callers locking the rows that order them, see ``audit.py``).
    ``lock`` is a named lock across threads and processes, dropped by a dead holder."""

    dialect: str  # "sqlite" | "postgresql"
    url: str  # without a password: for messages
    errors: tuple[type[Exception], ...]  # the driver's errors
    integrity_errors: tuple[type[Exception], ...]

    def tx(self) -> AbstractContextManager[Tx]: ...

    def rows(self, sql: str, params: Sequence[object] = ()) -> list[Any]: ...

    def ddl(self, statements: Sequence[str]) -> None: ...

    def lock(self, name: str, *, blocking: bool = True) -> AbstractContextManager[bool]: ...

    def checkpoint(self) -> None: ...

    def close(self) -> None: ...


class _SqliteTx:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def execute(self, sql: str, params: Sequence[object] = ()) -> Any:
        return self._db.execute(sql, tuple(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        self._db.executemany(sql, [tuple(r) for r in rows])


class SqliteDatabase:
    """One SQLite file (``secure_delete`` unless told otherwise: freed pages are zeroed)."""

    dialect = "sqlite"
    errors: tuple[type[Exception], ...] = (sqlite3.Error,)
    integrity_errors: tuple[type[Exception], ...] = (sqlite3.IntegrityError,)

    def __init__(self, path: Path | str, *, secure_delete: bool = True) -> None:
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"
        self._lock = threading.RLock()
        self._held: dict[str, threading.Lock] = {}
        try:
            self._db = connect(self.path, secure_delete=secure_delete)
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"cannot open {self.path}: {exc}") from exc

    @property
    def connection(self) -> sqlite3.Connection:
        return self._db

    @contextmanager
    def tx(self) -> Iterator[Tx]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")  # the write lock up front: no upgrade deadlock
            try:
                yield _SqliteTx(self._db)
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    def rows(self, sql: str, params: Sequence[object] = ()) -> list[Any]:
        with self._lock:
            return self._db.execute(sql, tuple(params)).fetchall()

    def ddl(self, statements: Sequence[str]) -> None:
        with self._lock:
            for statement in statements:
                self._db.execute(statement)

    @contextmanager
    def lock(self, name: str, *, blocking: bool = True) -> Iterator[bool]:
        """``flock`` on ``<file stem>.<name>`` beside the database (the kernel drops the lock
        of a killed process), behind a thread lock (flock is per open file, not thread)."""
        with self._lock:
            inner = self._held.setdefault(name, threading.Lock())
        if not inner.acquire(blocking=blocking):
            yield False
            return
        try:
            with open(self.path.with_suffix(f".{name}"), "a") as fh:
                flags = fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB
                try:
                    fcntl.flock(fh, flags)
                except BlockingIOError:
                    yield False
                    return
                try:
                    yield True
                finally:
                    fcntl.flock(fh, fcntl.LOCK_UN)
        finally:
            inner.release()

    def checkpoint(self) -> None:
        with self._lock:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.close()


def open_database(url: str, home: Path, part: str, *, secure_delete: bool = True) -> Database:
    """The database holding one part (``audit``, ``governance``, ``accounts``) of an engine
    home's governance state, by ``governance_url`` (see the module docstring)."""
    parsed = urlparse(url)
    if not url or parsed.scheme == "sqlite":
        raw = (parsed.netloc + parsed.path) if parsed.netloc else parsed.path
        folder = Path(raw) if raw else home
        return SqliteDatabase(folder / f"{part}.db", secure_delete=secure_delete)
    if parsed.scheme in ("postgresql", "postgres"):
        try:
            from faceindex.governance.postgres import PostgresDatabase
        except ImportError as exc:
            raise MissingDependency(
                "governance state on PostgreSQL needs psycopg: pip install 'faceindex[postgres]'"
            ) from exc
        return PostgresDatabase(url)
    raise ConfigError(
        f"unknown governance URL {url!r}: leave it empty (files in the home), "
        "sqlite:///dir or postgresql://..."
    )
