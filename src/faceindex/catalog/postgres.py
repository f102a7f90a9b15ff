"""PostgreSQL catalog (psycopg 3). The SQL itself lives in sql.py; this is the dialect.

URL: ``postgresql://user:password@host:port/dbname[?schema=NAME&<libpq options>]``. The
optional ``schema`` parameter keeps one engine home's tables in their own schema (created
if missing), so several homes, or test runs, can share one database.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql as pgsql

from faceindex.catalog.schema import postgres_ddl
from faceindex.catalog.sql import Cursor, SqlCatalog, Tx
from faceindex.errors import ConfigError, StorageError

__all__ = ["PostgresCatalog", "redact_url", "split_schema"]

_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
# Any constant works: it only has to be the same for every faceindex process.
_MIGRATION_LOCK = 0x0FACE1DE


def redact_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


def split_schema(url: str) -> tuple[str, str | None]:
    """(libpq URL, schema name or None): takes faceindex's own ``schema`` parameter out."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schemas = [v for k, v in query if k == "schema"]
    rest = [(k, v) for k, v in query if k != "schema"]
    schema = schemas[-1] if schemas else None
    if schema is not None and not _SCHEMA_NAME.match(schema):
        raise ConfigError(f"catalog schema {schema!r}: use letters, digits and '_'")
    scheme = "postgresql" if parts.scheme == "postgres" else parts.scheme
    return urlunsplit(parts._replace(scheme=scheme, query=urlencode(rest))), schema


class _Row:
    """A row that answers by position and by column name, as sqlite3.Row does."""

    __slots__ = ("_names", "_values")

    def __init__(self, values: Sequence[Any], names: dict[str, int]) -> None:
        self._values = values
        self._names = names

    def __getitem__(self, key: int | str) -> Any:
        return self._values[self._names[key]] if isinstance(key, str) else self._values[key]

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def keys(self) -> list[str]:
        return list(self._names)


def _placeholders(sql: str) -> str:
    """The shared SQL's '?' as psycopg's '%s' (and a literal '%' doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


def _row_factory(cursor: Any) -> Any:
    names = {col.name: i for i, col in enumerate(cursor.description or ())}

    def make(values: Sequence[Any]) -> _Row:
        return _Row(values, names)

    return make


class PostgresCatalog(SqlCatalog):
    """The server catalog: several engines and ingest workers may share one database.

    One connection per catalog object, serialised by the base class's lock; transactions
    are READ COMMITTED, and writes that can race (the same image bytes from two workers) are
    written as ``INSERT ... ON CONFLICT``.
    """

    dialect = "postgresql"
    max_params = 30_000  # the protocol allows 65 535 per statement
    integrity_errors = (psycopg.IntegrityError,)
    driver_errors = (psycopg.Error,)

    def __init__(self, url: str, *, schema: str | None = None, connect_timeout: int = 10) -> None:
        super().__init__()
        conninfo, url_schema = split_schema(url)
        self.schema = schema or url_schema
        self.url = redact_url(url)
        try:
            self._conn: psycopg.Connection[Any] = psycopg.connect(
                conninfo,
                autocommit=True,
                row_factory=_row_factory,
                connect_timeout=connect_timeout,
            )
        except psycopg.Error as exc:
            raise StorageError(f"cannot connect to catalog {self.url}: {exc}") from exc
        try:
            if self.schema is not None:
                ident = pgsql.Identifier(self.schema)
                self._conn.execute(pgsql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(ident))
                self._conn.execute(pgsql.SQL("SET search_path TO {}").format(ident))
            self._migrate()
        except BaseException:
            self._conn.close()
            raise

    # -- dialect hooks --------------------------------------------------------------------

    def _execute(self, sql: str, params: Sequence[object]) -> Cursor:
        if params:
            sql = _placeholders(sql)
        return self._conn.execute(sql, tuple(params) or None)

    def _int_tables(self, values: Sequence[int]) -> list[tuple[str, list[object]]]:
        # One array parameter, one statement however long the list (a photo batch's band
        # probes are thousands of values), written as its text literal: psycopg's list
        # adapter costs more than the query. A join, not "= ANY(...)": planning a long
        # ANY estimates every element (7 ms for 9 000 here) and the join's plan does not.
        literal = "{" + ",".join(map(str, map(int, values))) + "}"
        return [("unnest(?::bigint[]) AS v(value)", [literal])]

    def _insert_rows(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[object]]
    ) -> None:
        # COPY: no statement to parse per row or per placeholder (a multi-row VALUES of
        # a thousand placeholders costs psycopg milliseconds to parse, uncached).
        names = pgsql.SQL(", ").join(pgsql.Identifier(c) for c in columns)
        statement = pgsql.SQL("COPY {} ({}) FROM STDIN").format(pgsql.Identifier(table), names)
        with self._conn.cursor() as cur, cur.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)

    def _new_ids(self, table: str, n: int) -> list[int]:
        rows = self._execute(
            "SELECT nextval(pg_get_serial_sequence(?, 'id')) FROM generate_series(1, ?)",
            (table, int(n)),
        ).fetchall()
        return sorted(int(r[0]) for r in rows)

    @contextmanager
    def _begin(self) -> Iterator[None]:
        with self._conn.transaction():
            yield

    def _ddl(self, statement: str) -> str:
        return postgres_ddl(statement)

    def _lock_schema(self, tx: Tx) -> None:
        # Two processes opening a new catalog at once: the second waits, then sees v1.
        tx.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))

    # -- PostgreSQL only ------------------------------------------------------------------

    def checkpoint(self) -> None:
        """VACUUM the tables deletes touch, so removed rows' space is reclaimed and reused."""
        with self._lock:
            for table in ("faces", "items", "images", "persons", "person_faces"):
                self._conn.execute(pgsql.SQL("VACUUM {}").format(pgsql.Identifier(table)))

    def close(self) -> None:
        with self._lock:
            self._conn.close()
