"""Erasure, retention and by-source queries, mixed into ``SqlCatalog`` (catalog/sql.py).

Written once for SQLite and PostgreSQL (``?`` placeholders, no dialect functions). The rule
shared by every method: an image lives while at least one item (a location in a registered
source) points at it; when its last item goes, its faces (rows, embeddings, thumbnails) and
the image row go in the same transaction. Retention compares ISO-8601 UTC text, which sorts
as time in both engines.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

import numpy as np

from faceindex.catalog.base import ErasedRows
from faceindex.catalog.sql_changes import log_removals
from faceindex.catalog.sql_persons import settle_persons

__all__ = ["EraseQueries"]

CHUNK = 500


# Live faces of images located in any of the named sources ({} is the IN list).
_FACES_IN_SOURCES = (
    "FROM faces f JOIN items it ON it.image_id = f.image_id"
    " JOIN sources s ON s.id = it.source_id WHERE s.name IN ({})"
)


class _Tx(Protocol):
    generation: int

    def execute(self, sql: str, params: Sequence[object] = ()) -> Any: ...


class _Host(Protocol):
    def query(self, sql: str, params: Sequence[object] = ()) -> list[Any]: ...
    def transaction(self) -> AbstractContextManager[Any]: ...


def _chunks(ids: Sequence[int]) -> Iterator[list[int]]:
    wanted = sorted({int(i) for i in ids})
    for start in range(0, len(wanted), CHUNK):
        yield wanted[start : start + CHUNK]


def _in(n: int) -> str:
    return ",".join("?" * n)


def _select_ids(run: Any, sql: str, ids: Sequence[int]) -> list[int]:
    """``sql`` has one ``IN ({})`` slot; runs it chunk by chunk and returns column 0."""
    out: list[int] = []
    for chunk in _chunks(ids):
        out.extend(int(r[0]) for r in run(sql.format(_in(len(chunk))), chunk))
    return out


def _drop_images(tx: _Tx, image_ids: Sequence[int]) -> tuple[list[int], list[int]]:
    """Delete images with all their faces and items; returns (image ids, face ids)."""

    def run(sql: str, params: Sequence[object]) -> list[Any]:
        return list(tx.execute(sql, params).fetchall())

    faces = _select_ids(run, "SELECT id FROM faces WHERE image_id IN ({})", image_ids)
    images = _select_ids(run, "SELECT id FROM images WHERE id IN ({})", image_ids)
    for chunk in _chunks(images):
        tx.execute(f"DELETE FROM items WHERE image_id IN ({_in(len(chunk))})", chunk)
        where = f"image_id IN ({_in(len(chunk))})"
        log_removals(tx, tx.generation, where, chunk)
        tx.execute(f"DELETE FROM faces WHERE {where}", chunk)
        tx.execute(f"DELETE FROM images WHERE id IN ({_in(len(chunk))})", chunk)
    if faces:
        settle_persons(tx)  # a person whose last face went is deleted with it
    return images, faces


def _drop_items(tx: _Tx, item_ids: Sequence[int]) -> ErasedRows:
    def run(sql: str, params: Sequence[object]) -> list[Any]:
        return list(tx.execute(sql, params).fetchall())

    touched = _select_ids(
        run, "SELECT image_id FROM items WHERE id IN ({}) AND image_id IS NOT NULL", item_ids
    )
    removed = 0
    for chunk in _chunks(item_ids):
        removed += tx.execute(f"DELETE FROM items WHERE id IN ({_in(len(chunk))})", chunk).rowcount
    still = set(_select_ids(run, "SELECT image_id FROM items WHERE image_id IN ({})", touched))
    images, faces = _drop_images(tx, [i for i in set(touched) if i not in still])
    return ErasedRows(tuple(images), tuple(faces), removed)


class EraseQueries:
    """Catalog methods for erasure, retention, subject access and the face ids a search
    restricted to some sources may return (see catalog/base.py)."""

    def face_ids_of_images(self: _Host, image_ids: Sequence[int]) -> list[int]:
        return _select_ids(self.query, "SELECT id FROM faces WHERE image_id IN ({})", image_ids)

    def embeddings(self: _Host, face_ids: Sequence[int]) -> dict[int, np.ndarray]:
        out: dict[int, np.ndarray] = {}
        for chunk in _chunks(face_ids):
            for r in self.query(
                f"SELECT id, embedding FROM faces WHERE id IN ({_in(len(chunk))})", chunk
            ):
                out[int(r[0])] = np.frombuffer(bytes(r[1]), dtype=np.float32)
        return out

    def image_ids_of_source(self: _Host, source_id: int) -> list[int]:
        rows = self.query(
            "SELECT DISTINCT image_id FROM items WHERE source_id = ? AND image_id IS NOT NULL",
            (int(source_id),),
        )
        return sorted(int(r[0]) for r in rows)

    def unheld_images(self: _Host) -> list[int]:
        rows = self.query(
            "SELECT id FROM images im WHERE NOT EXISTS"
            " (SELECT 1 FROM items it WHERE it.image_id = im.id) ORDER BY id"
        )
        return [int(r[0]) for r in rows]

    def face_ids_in_sources(self: _Host, names: Collection[str]) -> np.ndarray:
        wanted = sorted(set(names))
        if not wanted:
            return np.empty(0, dtype=np.int64)
        rows = self.query(
            f"SELECT DISTINCT f.id {_FACES_IN_SOURCES.format(_in(len(wanted)))} ORDER BY f.id",
            wanted,
        )
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def count_faces_in_sources(self: _Host, names: Collection[str]) -> int:
        wanted = sorted(set(names))
        if not wanted:
            return 0
        sql = f"SELECT COUNT(DISTINCT f.id) {_FACES_IN_SOURCES.format(_in(len(wanted)))}"
        return int(self.query(sql, wanted)[0][0])

    def existing_images(self: _Host, image_ids: Sequence[int]) -> list[int]:
        return _select_ids(self.query, "SELECT id FROM images WHERE id IN ({})", image_ids)

    def image_digests(self: _Host, image_ids: Sequence[int]) -> dict[int, str]:
        out: dict[int, str] = {}
        for chunk in _chunks(image_ids):
            sql = f"SELECT id, sha256 FROM images WHERE id IN ({_in(len(chunk))})"
            out.update((int(r[0]), str(r[1])) for r in self.query(sql, chunk))
        return out

    def images_holding(self: _Host, digests: Collection[str]) -> dict[str, int]:
        wanted = sorted(set(digests))
        out: dict[str, int] = {}
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start : start + CHUNK]
            sql = f"SELECT sha256, id FROM images WHERE sha256 IN ({_in(len(chunk))})"
            out.update((str(r[0]), int(r[1])) for r in self.query(sql, chunk))
        return out

    def expired_items(self: _Host, now: datetime | None = None) -> list[tuple[int, str]]:
        """(item id, source name) of every item held longer than its source's retention."""
        now = now or datetime.now(timezone.utc)
        out: list[tuple[int, str]] = []
        for src in self.query("SELECT id, name, retention_days FROM sources ORDER BY id"):
            cutoff = (now - timedelta(days=int(src[2]))).isoformat(timespec="seconds")
            rows = self.query(
                "SELECT id FROM items WHERE source_id = ? AND ingested_at < ? ORDER BY id",
                (int(src[0]), cutoff),
            )
            out.extend((int(r[0]), str(src[1])) for r in rows)
        return out

    def delete_items(self: _Host, item_ids: Sequence[int]) -> ErasedRows:
        with self.transaction() as tx:
            return _drop_items(tx, item_ids)

    def delete_images(self: _Host, image_ids: Sequence[int]) -> ErasedRows:
        with self.transaction() as tx:
            images, faces = _drop_images(tx, image_ids)
        return ErasedRows(tuple(images), tuple(faces), 0)

    def delete_source(self: _Host, source_id: int) -> ErasedRows:
        with self.transaction() as tx:
            rows = tx.execute("SELECT id FROM items WHERE source_id = ?", (int(source_id),))
            erased = _drop_items(tx, [int(r[0]) for r in rows.fetchall()])
            tx.execute("DELETE FROM sources WHERE id = ?", (int(source_id),))
        return erased
