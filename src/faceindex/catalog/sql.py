"""The catalog's SQL, written once for SQLite and PostgreSQL.

:class:`SqlCatalog` holds every query. A subclass is a thin dialect adapter: it opens the
connection and supplies a handful of hooks (how a transaction begins, how a statement runs,
how the shared DDL of :mod:`faceindex.catalog.schema` is rewritten, which driver errors mean
what). Statements here use ``?`` placeholders and the SQL both engines accept; new ids come
back through ``RETURNING id`` (SQLite >= 3.35). Never put a literal ``?`` inside a statement.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timezone
from typing import Any, ClassVar, NoReturn, Protocol

import numpy as np

from faceindex.catalog import sql_changes, sql_persons
from faceindex.catalog.base import (
    SCHEMA_VERSION,
    CatalogChanges,
    FaceRow,
    ImageOutcome,
    NewSource,
)
from faceindex.catalog.schema import MIGRATIONS
from faceindex.catalog.sql_erase import EraseQueries
from faceindex.catalog.sql_groups import GroupQueries, place_images
from faceindex.catalog.sql_reviews import ReviewQueries
from faceindex.catalog.sql_rows import face_values, insert_faces, source_record
from faceindex.catalog.sql_watches import WatchQueries
from faceindex.errors import InputError, NotFoundError, StorageError
from faceindex.persons.base import Membership, Person, Placement
from faceindex.sources.base import SourceRecord
from faceindex.types import BBox, Provenance

__all__ = ["Cursor", "Row", "SqlCatalog", "Tx", "marks", "utcnow"]

log = logging.getLogger(__name__)

CHUNK = 500  # ids per IN (...) list: under SQLite's variable limit, cheap for PostgreSQL
OWN_KEPT = 100_000  # own generations remembered until someone asks past them


def utcnow() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _item_values(out: ImageOutcome, now: str) -> tuple[tuple[object, ...], str | None]:
    """An item row's values but its image id, and the digest that finds that id."""
    sha = out.sha256 if out.error is None else None
    values = (
        int(out.source_id),
        out.locator,
        out.sha256,
        "skipped" if out.skipped else "failed" if out.error else "ok",
        out.error,
        None if out.size is None else int(out.size),
        None if out.mtime is None else float(out.mtime),
        now,
    )
    return values, sha


def marks(n: int) -> str:
    """``?,?,...`` for an ``IN (...)`` list of n values."""
    return ",".join("?" * n)


class Row(Protocol):
    """A result row: by column position or by column name."""

    def __getitem__(self, key: Any) -> Any: ...


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class Tx:
    """The handle a transaction body works through (dialect-neutral, ``?`` placeholders)."""

    def __init__(self, catalog: SqlCatalog, generation: int = 0) -> None:
        self._catalog = catalog
        self.generation = generation  # this write's (0 while migrating)

    def execute(self, sql: str, params: Sequence[object] = ()) -> Cursor:
        return self._catalog._execute(sql, params)

    def insert(self, sql: str, params: Sequence[object] = ()) -> int | None:
        """Run an INSERT and return the new row's id (None when ON CONFLICT DO NOTHING hit)."""
        row = self._catalog._execute(sql + " RETURNING id", params).fetchone()
        return None if row is None else int(row[0])

    def int_tables(self, values: Sequence[int]) -> list[tuple[str, list[object]]]:
        """FROM items, each with its parameters, that together list ``values`` as the column
        ``v.value`` (join against them): as few statements as the dialect allows."""
        return self._catalog._int_tables(values) if values else []

    def new_ids(self, table: str, n: int) -> list[int]:
        """``n`` ids ``table`` has never used, ascending, for rows this transaction inserts
        with explicit ids (so each row's id is known before, in order, on both engines)."""
        return self._catalog._new_ids(table, n) if n else []

    def insert_rows(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[object]]
    ) -> None:
        """Insert rows that cannot conflict (fresh ids) in the dialect's fastest bulk way."""
        if rows:
            self._catalog._insert_rows(table, columns, rows)

    def execute_values(
        self,
        sql: str,
        rows: Sequence[Sequence[object]],
        *,
        fetch: bool = False,
    ) -> list[Any]:
        """Run ``sql`` with ``{rows}`` replaced by a multi-row VALUES list of ``rows``: one
        statement per chunk of rows under the dialect's parameter limit, not one per row.
        The rows must not hit the same conflict key twice. With ``fetch``, the rows
        RETURNING gave, in no promised order."""
        if not rows:
            return []
        width = len(rows[0])
        template = f"({marks(width)})"
        per = max(1, self._catalog.max_params // width)
        out: list[Any] = []
        for start in range(0, len(rows), per):
            chunk = rows[start : start + per]
            statement = sql.replace("{rows}", ",".join([template] * len(chunk)))
            cursor = self._catalog._execute(statement, [v for r in chunk for v in r])
            if fetch:
                out.extend(cursor.fetchall())
        return out


class SqlCatalog(EraseQueries, WatchQueries, GroupQueries, ReviewQueries):
    """Every catalog query, over the hooks a dialect subclass supplies.

    Safe to share between threads: one connection, one re-entrant lock around each
    transaction and query.
    """

    dialect: ClassVar[str] = "sql"
    max_params: ClassVar[int] = 999  # per statement: SQLite's limit in every build
    integrity_errors: ClassVar[tuple[type[BaseException], ...]] = ()
    driver_errors: ClassVar[tuple[type[BaseException], ...]] = ()

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._own: set[int] = set()  # generations this object committed (not yet asked about)

    # -- dialect hooks --------------------------------------------------------------------

    def _execute(self, sql: str, params: Sequence[object]) -> Cursor:
        """Run one statement written with ``?`` placeholders."""
        raise NotImplementedError

    def _int_tables(self, values: Sequence[int]) -> list[tuple[str, list[object]]]:
        """VALUES lists of CHUNK values at a time (SQLite's variable limit)."""
        out: list[tuple[str, list[object]]] = []
        for start in range(0, len(values), CHUNK):
            chunk: list[object] = [int(v) for v in values[start : start + CHUNK]]
            rows = ",".join(["(?)"] * len(chunk))
            out.append((f"(SELECT column1 AS value FROM (VALUES {rows})) AS v", chunk))
        return out

    def _insert_rows(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[object]]
    ) -> None:
        """Insert rows no constraint can refuse but a foreign key (see Tx.insert_rows)."""
        raise NotImplementedError

    def _new_ids(self, table: str, n: int) -> list[int]:
        """``n`` fresh ids of ``table``, ascending (see :meth:`Tx.new_ids`)."""
        raise NotImplementedError

    def _begin(self) -> AbstractContextManager[object]:
        """A context that commits on normal exit and rolls back on an exception."""
        raise NotImplementedError

    def _ddl(self, statement: str) -> str:
        """The shared schema statement in this dialect."""
        return statement

    def _lock_schema(self, tx: Tx) -> None:
        """Serialise concurrent migrations (SQLite's write lock already does)."""

    # -- plumbing -------------------------------------------------------------------------

    def _reraise(self, exc: BaseException) -> NoReturn:
        """A driver failure as a StorageError; integrity errors pass (callers map those)."""
        if isinstance(exc, self.integrity_errors):
            raise exc
        raise StorageError(f"{self.dialect} catalog: {exc}") from exc

    @contextmanager
    def transaction(self, *, bump: bool = True) -> Iterator[Tx]:
        """One atomic unit of work; the catalog's lock is held throughout. It takes the next
        generation first (see :mod:`faceindex.catalog.sql_changes`)."""
        with self._lock:
            try:
                with self._begin():
                    tx = Tx(self)
                    if bump:
                        tx.generation = sql_changes.next_generation(tx)
                    yield tx
                if tx.generation:
                    self._own.add(tx.generation)
                    if len(self._own) > OWN_KEPT:  # forgotten ones are re-applied: harmless
                        self._own = set(sorted(self._own)[OWN_KEPT // 2 :])
            except self.driver_errors as exc:
                self._reraise(exc)

    def query(self, sql: str, params: Sequence[object] = ()) -> list[Any]:
        """Rows of one read statement (``?`` placeholders); rows index by position or name."""
        with self._lock:
            try:
                return list(self._execute(sql, params).fetchall())
            except self.driver_errors as exc:
                self._reraise(exc)

    def _migrate(self) -> None:
        with self.transaction(bump=False) as tx:
            self._lock_schema(tx)
            tx.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = tx.execute("SELECT version FROM schema_version").fetchone()
            current = int(row[0]) if row else 0
            if current > SCHEMA_VERSION:
                raise StorageError(
                    f"catalog schema v{current} is newer than this faceindex (v{SCHEMA_VERSION})"
                )
            for version in range(current + 1, SCHEMA_VERSION + 1):
                log.info("catalog: migrating schema to v%d", version)
                for statement in MIGRATIONS[version]:
                    tx.execute(self._ddl(statement))
            if row is None:
                tx.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
            elif current != SCHEMA_VERSION:
                tx.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))

    def schema_version(self) -> int:
        return int(self.query("SELECT version FROM schema_version")[0][0])

    # -- sources --------------------------------------------------------------------------

    def add_source(self, src: NewSource) -> SourceRecord:
        if not src.name or not src.name.replace("-", "").replace("_", "").isalnum():
            raise InputError(f"source name {src.name!r}: use letters, digits, '-' and '_'")
        try:
            with self.transaction() as tx:
                tx.execute(
                    "INSERT INTO sources (name, kind, uri, owner, legal_basis, legal_reference,"
                    " purposes, retention_days, jurisdiction, created_at)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (
                        src.name,
                        src.kind,
                        src.uri,
                        src.owner,
                        src.legal_basis,
                        src.legal_reference,
                        json.dumps(list(src.purposes)),
                        int(src.retention_days),
                        src.jurisdiction,
                        utcnow(),
                    ),
                )
        except self.integrity_errors as exc:
            raise InputError(f"a source named {src.name!r} already exists") from exc
        return self.get_source(src.name)

    def get_source(self, name: str) -> SourceRecord:
        rows = self.query("SELECT * FROM sources WHERE name = ?", (name,))
        if not rows:
            raise NotFoundError(f"no source named {name!r}")
        return source_record(rows[0])

    def list_sources(self) -> list[SourceRecord]:
        return [source_record(r) for r in self.query("SELECT * FROM sources ORDER BY name")]

    # -- ingest ---------------------------------------------------------------------------

    def seen_items(self, source_id: int) -> dict[str, tuple[int | None, float | None]]:
        rows = self.query(
            "SELECT locator, size, mtime FROM items WHERE source_id = ?", (source_id,)
        )
        return {r["locator"]: (r["size"], r["mtime"]) for r in rows}

    def record(self, outcomes: Sequence[ImageOutcome], model: str) -> list[tuple[int, np.ndarray]]:
        # A statement per table per batch, not per row: every writer queues on the
        # generation row for its whole transaction, so the rows are built before it starts.
        now = utcnow()
        images: dict[str, ImageOutcome] = {}  # sha256 -> its first outcome in the batch
        for out in outcomes:
            if out.error is None and out.sha256 is not None:
                images.setdefault(out.sha256, out)
        faces = {
            sha: [face_values(f, model, now) for f in out.faces] for sha, out in images.items()
        }
        # One row per location: the last outcome's values at the first one's place, as
        # writing them one by one leaves it (a statement may not upsert a key twice).
        items: dict[tuple[int, str], tuple[tuple[object, ...], str | None]] = {}
        for out in outcomes:
            items[(int(out.source_id), out.locator)] = _item_values(out, now)
        with self.transaction() as tx:
            # Which bytes are held already cannot change under us: every writer of images
            # holds the generation row (PostgreSQL) or the write lock (SQLite) till commit.
            image_ids = self._image_ids(tx, list(images))
            fresh = [sha for sha in images if sha not in image_ids]
            image_ids.update(zip(fresh, tx.new_ids("images", len(fresh)), strict=True))
            groups = place_images(tx, [(image_ids[sha], images[sha].phash) for sha in fresh], now)
            # ON CONFLICT: two writers of the same bytes end in our error, not the driver's.
            inserted = tx.execute_values(
                "INSERT INTO images (id, sha256, width, height, created_at, phash, phash_b0,"
                " phash_b1, phash_b2, phash_b3, group_id) VALUES {rows}"
                " ON CONFLICT (sha256) DO NOTHING RETURNING id",
                [
                    (image_ids[sha], sha, int(images[sha].width), int(images[sha].height), now)
                    + cols
                    for sha, cols in zip(fresh, groups, strict=True)
                ],
                fetch=True,
            )
            if len(inserted) != len(fresh):
                raise StorageError("another writer catalogued the same image bytes meanwhile")
            new = insert_faces(tx, [(image_ids[sha], f) for sha in fresh for f in faces[sha]])
            tx.execute_values(
                "INSERT INTO items (source_id, locator, image_id, sha256, status, reason,"
                " size, mtime, ingested_at) VALUES {rows}"
                " ON CONFLICT (source_id, locator) DO UPDATE SET image_id = excluded.image_id,"
                " sha256 = excluded.sha256, status = excluded.status, reason = excluded.reason,"
                " size = excluded.size, mtime = excluded.mtime,"
                " ingested_at = excluded.ingested_at",
                [
                    (v[0], v[1], None if sha is None else image_ids[sha], *v[2:])
                    for v, sha in items.values()
                ],
            )
        return new

    @staticmethod
    def _image_ids(tx: Tx, digests: Sequence[str]) -> dict[str, int]:
        """The ids of those of the digests' images the catalog already holds."""
        out: dict[str, int] = {}
        for start in range(0, len(digests), CHUNK):
            chunk = list(digests[start : start + CHUNK])
            rows = tx.execute(
                f"SELECT id, sha256 FROM images WHERE sha256 IN ({marks(len(chunk))})", chunk
            ).fetchall()
            out.update((r[1], int(r[0])) for r in rows)
        return out

    # -- reads ----------------------------------------------------------------------------

    def faces(self, ids: Sequence[int]) -> dict[int, FaceRow]:
        wanted = [int(i) for i in ids]
        out: dict[int, FaceRow] = {}
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start : start + CHUNK]
            rows = self.query(
                "SELECT f.id, f.image_id, i.sha256, f.box_left, f.box_top, f.box_right,"
                " f.box_bottom, f.quality, f.model, f.created_at FROM faces f"
                f" JOIN images i ON i.id = f.image_id WHERE f.id IN ({marks(len(chunk))})",
                chunk,
            )
            locs = self._locations(sorted({int(r["image_id"]) for r in rows}))
            for r in rows:
                out[int(r["id"])] = FaceRow(
                    id=int(r["id"]),
                    image_id=int(r["image_id"]),
                    image_sha256=r["sha256"],
                    bbox=BBox(r["box_left"], r["box_top"], r["box_right"], r["box_bottom"]),
                    quality=float(r["quality"]),
                    model=r["model"],
                    created_at=r["created_at"],
                    deleted=False,
                    locations=tuple(locs.get(int(r["image_id"]), ())),
                )
        return out

    def _locations(self, image_ids: Sequence[int]) -> dict[int, list[Provenance]]:
        out: dict[int, list[Provenance]] = {}
        for start in range(0, len(image_ids), CHUNK):
            chunk = list(image_ids[start : start + CHUNK])
            rows = self.query(
                "SELECT it.image_id, s.name, it.locator, it.ingested_at FROM items it"
                f" JOIN sources s ON s.id = it.source_id WHERE it.image_id IN ({marks(len(chunk))})"
                " ORDER BY it.id",
                chunk,
            )
            for r in rows:
                out.setdefault(int(r["image_id"]), []).append(
                    Provenance(r["name"], r["locator"], r["ingested_at"])
                )
        return out

    def thumbnail(self, face_id: int) -> bytes:
        rows = self.query("SELECT thumbnail FROM faces WHERE id = ?", (int(face_id),))
        if not rows or rows[0][0] is None:
            raise NotFoundError(f"no face {face_id}")
        return bytes(rows[0][0])

    def iter_embeddings(self, batch: int = 10000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        last = 0
        while True:
            rows = self.query(
                "SELECT id, embedding FROM faces WHERE id > ? ORDER BY id LIMIT ?", (last, batch)
            )
            if not rows:
                return
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            vecs = np.frombuffer(b"".join(bytes(r[1]) for r in rows), dtype=np.float32)
            last = int(ids[-1])
            yield ids, vecs.reshape(len(rows), -1)

    def live_face_ids(self, page: int = 200_000) -> np.ndarray:
        # Paged by id so that 100M faces cost their int64 array, not 100M row objects.
        parts: list[np.ndarray] = []
        last = 0
        while True:
            rows = self.query("SELECT id FROM faces WHERE id > ? ORDER BY id LIMIT ?", (last, page))
            if not rows:
                break
            parts.append(np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)))
            last = int(parts[-1][-1])
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)

    def count_faces(self) -> int:
        return int(self.query("SELECT COUNT(*) FROM faces")[0][0])

    def generation(self) -> int:
        return sql_changes.read_generation(self.query)

    def changes_since(self, generation: int, *, include_own: bool = False) -> CatalogChanges:
        with self._lock:
            changes = sql_changes.changes_since(
                self.query, generation, self._own, include_own=include_own
            )
            if changes.complete:  # asked past them: forget own generations up to here
                self._own = {g for g in self._own if g > changes.generation}
        return changes

    def stats(self) -> dict[str, int]:
        row = self.query(
            "SELECT (SELECT COUNT(*) FROM sources), (SELECT COUNT(*) FROM images),"
            " (SELECT COUNT(*) FROM items WHERE status = 'ok'),"
            " (SELECT COUNT(*) FROM items WHERE status = 'failed'),"
            " (SELECT COUNT(*) FROM faces)"
        )[0]
        keys = ("sources", "images", "locations", "failed", "faces")
        return {k: int(row[i]) for i, k in enumerate(keys)}

    def failures(
        self, source_id: int | None = None, *, skipped: bool = False
    ) -> list[tuple[str, str, str]]:
        sql = (
            "SELECT s.name, it.locator, it.reason FROM items it JOIN sources s"
            " ON s.id = it.source_id WHERE it.status = ?"
        )
        params: tuple[object, ...] = ("skipped" if skipped else "failed",)
        if source_id is not None:
            sql += " AND it.source_id = ?"
            params = (*params, int(source_id))
        return [(r[0], r[1], r[2]) for r in self.query(sql + " ORDER BY it.id", params)]

    # -- deletion -------------------------------------------------------------------------

    def delete_faces(self, ids: Sequence[int]) -> int:
        wanted = [int(i) for i in ids]
        removed = 0
        with self.transaction() as tx:
            for start in range(0, len(wanted), CHUNK):
                chunk = wanted[start : start + CHUNK]
                where = f"id IN ({marks(len(chunk))})"
                sql_changes.log_removals(tx, tx.generation, where, chunk)
                removed += tx.execute(
                    f"DELETE FROM faces WHERE id IN ({marks(len(chunk))})", chunk
                ).rowcount
            sql_persons.settle_persons(tx)
        return removed

    # -- persons (catalog/sql_persons.py) -------------------------------------------------

    def persons(self, ids: Sequence[int] | None = None) -> list[Person]:
        return sql_persons.persons(self.query, ids)

    def person_memberships(self) -> dict[int, Membership]:
        return sql_persons.person_memberships(self.query)

    def assign_persons(
        self,
        placements: Sequence[Placement],
        *,
        pinned: bool = False,
        drop_unpinned: bool = False,
    ) -> list[int]:
        with self.transaction() as tx:
            return sql_persons.assign_persons(
                tx, placements, utcnow(), pinned=pinned, drop_unpinned=drop_unpinned
            )

    def label_person(self, person_id: int, label: str, by: str) -> None:
        with self.transaction() as tx:
            sql_persons.label_person(tx, person_id, label, by, utcnow())
