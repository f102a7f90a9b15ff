"""Governance state on PostgreSQL (psycopg 3): a :class:`~.database.Database` dialect.

URL as the catalog's: ``postgresql://user:password@host:port/dbname[?schema=NAME]``. Every
part (audit chain, store, accounts, search records) opens its own connection to the same
database and schema. SQL arrives in SQLite's spelling; ``?`` becomes ``%s`` and schema
statements get PostgreSQL's types (:func:`~faceindex.catalog.schema.postgres_ddl`).

Locks are session advisory locks on a connection of their own, keyed by the schema and
the lock's name: another home in another schema of the same database never waits on
them, and a killed process's session ends, which drops its locks.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql as pgsql

from faceindex.catalog.postgres import redact_url, split_schema
from faceindex.catalog.schema import postgres_ddl
from faceindex.errors import StorageError

__all__ = ["PostgresDatabase"]

# Schema statements of every part run under this transaction lock: two processes opening a
# new home at once would otherwise race on CREATE ... IF NOT EXISTS.
_DDL_LOCK = 0x60FE5701


def _sql(sql: str, params: Sequence[object]) -> str:
    return sql.replace("%", "%%").replace("?", "%s") if params else sql


class _PgTx:
    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[object] = ()) -> Any:
        return self._conn.execute(_sql(sql, params), tuple(params) or None)

    def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        if rows:
            with self._conn.cursor() as cur:
                cur.executemany(_sql(sql, rows[0]), [tuple(r) for r in rows])


class PostgresDatabase:
    dialect = "postgresql"
    errors: tuple[type[Exception], ...] = (psycopg.Error,)
    integrity_errors: tuple[type[Exception], ...] = (psycopg.IntegrityError,)

    def __init__(self, url: str, *, connect_timeout: int = 10) -> None:
        self._conninfo, self.schema = split_schema(url)
        self.url = redact_url(url)
        self._timeout = connect_timeout
        self._lock = threading.RLock()
        self._locks: dict[str, threading.Lock] = {}
        self._conn = self._connect()

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            conn = psycopg.connect(self._conninfo, autocommit=True, connect_timeout=self._timeout)
        except psycopg.Error as exc:
            raise StorageError(f"cannot connect to governance database {self.url}: {exc}") from exc
        try:
            if self.schema is not None:
                ident = pgsql.Identifier(self.schema)
                conn.execute(pgsql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(ident))
                conn.execute(pgsql.SQL("SET search_path TO {}").format(ident))
        except psycopg.Error as exc:
            conn.close()
            raise StorageError(f"governance database {self.url}: {exc}") from exc
        return conn

    @contextmanager
    def tx(self) -> Iterator[_PgTx]:
        with self._lock, self._conn.transaction():
            yield _PgTx(self._conn)

    def rows(self, sql: str, params: Sequence[object] = ()) -> list[Any]:
        with self._lock:
            return self._conn.execute(_sql(sql, params), tuple(params) or None).fetchall()

    def ddl(self, statements: Sequence[str]) -> None:
        with self._lock, self._conn.transaction():
            self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (_DDL_LOCK,))
            for statement in statements:
                self._conn.execute(postgres_ddl(statement))

    def lock_key(self, name: str) -> int:
        """The advisory lock id of ``name`` in this schema (a signed 64-bit integer)."""
        text = f"faceindex-governance\n{self.schema or 'public'}\n{name}".encode()
        return int.from_bytes(hashlib.sha256(text).digest()[:8], "big", signed=True)

    @contextmanager
    def lock(self, name: str, *, blocking: bool = True) -> Iterator[bool]:
        with self._lock:
            inner = self._locks.setdefault(name, threading.Lock())
        if not inner.acquire(blocking=blocking):
            yield False
            return
        try:
            # A connection of its own: waiting here must not hold the shared one.
            conn = self._connect()
            try:
                key = self.lock_key(name)
                if blocking:
                    conn.execute("SELECT pg_advisory_lock(%s)", (key,))
                else:
                    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
                    if not (row and row[0]):
                        yield False
                        return
                try:
                    yield True
                finally:
                    conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
            finally:
                conn.close()
        finally:
            inner.release()

    def checkpoint(self) -> None:
        """Nothing to fold: PostgreSQL's VACUUM reclaims freed rows on its own schedule."""

    def close(self) -> None:
        with self._lock:
            self._conn.close()
