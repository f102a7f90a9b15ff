"""Photo groups: near-duplicate images (one photo re-encoded, resized, cropped, made grey)
linked into one group, mixed into ``SqlCatalog`` (catalog/sql.py) like ``EraseQueries``.

Written once for SQLite and PostgreSQL. The rules: every image is in exactly one group; a new
image joins the group of its nearest held image within :data:`~faceindex.vision.phash.NEAR_BITS`
of its perceptual hash (found through the indexed hash bands: multi-index hashing, never a
scan), else it founds a group of its own, numbered by its id; groups are never merged (one
wrong link would chain whole galleries together); a group goes with its last image.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from faceindex.types import Provenance
from faceindex.vision.phash import (
    BANDS,
    NEAR_BITS,
    band_probes,
    bands,
    from_signed,
    hamming,
    to_signed,
)

__all__ = [
    "GroupQueries",
    "drop_empty_groups",
    "groups_gone",
    "groups_of_images",
    "link_image",
    "tx_rows",
]

CHUNK = 500
Run = Callable[[str, Sequence[object]], list[Any]]


class _Tx(Protocol):
    def execute(self, sql: str, params: Sequence[object] = ()) -> Any: ...


class _Host(Protocol):
    def query(self, sql: str, params: Sequence[object] = ()) -> list[Any]: ...


def _in(n: int) -> str:
    return ",".join("?" * n)


def _chunks(ids: Sequence[int]) -> Iterator[list[int]]:
    wanted = sorted({int(i) for i in ids})
    for start in range(0, len(wanted), CHUNK):
        yield wanted[start : start + CHUNK]


def tx_rows(tx: _Tx) -> Run:
    """A transaction's statements as a function returning rows."""

    def run(sql: str, params: Sequence[object]) -> list[Any]:
        return list(tx.execute(sql, params).fetchall())

    return run


def near(run: Run, phash: int, max_bits: int) -> list[tuple[int, int, int]]:
    """(distance, image id, group id) of the hashed images within ``max_bits``, nearest
    first: candidates from the band indexes, then the full Hamming distance."""
    found: dict[int, tuple[int, int, int]] = {}
    for band, values in enumerate(band_probes(phash, max_bits)):
        for start in range(0, len(values), CHUNK):
            chunk = values[start : start + CHUNK]
            where = f"phash_b{band} IN ({_in(len(chunk))})"
            rows = run(f"SELECT id, phash, group_id FROM images WHERE {where}", chunk)
            for r in rows:
                d = hamming(phash, from_signed(int(r[1])))
                if d <= max_bits:
                    found[int(r[0])] = (d, int(r[0]), int(r[2]))
    return sorted(found.values())


def link_image(tx: _Tx, image_id: int, phash: int | None, now: str) -> int:
    """Hash a new image's row and put it in a group (see the module docstring); returns the
    group id. Called in the transaction that inserted the image, before it holds a hash, so
    it never finds itself."""
    hits = near(tx_rows(tx), phash, NEAR_BITS) if phash is not None else []
    if hits:
        group = hits[0][2]
    else:
        group = int(image_id)
        tx.execute("INSERT INTO photo_groups (id, created_at) VALUES (?,?)", (group, now))
    parts: tuple[object, ...] = (None,) * (1 + BANDS)
    if phash is not None:
        parts = (to_signed(phash), *bands(phash))
    tx.execute(
        "UPDATE images SET phash = ?, phash_b0 = ?, phash_b1 = ?, phash_b2 = ?, phash_b3 = ?,"
        " group_id = ? WHERE id = ?",
        (*parts, group, int(image_id)),
    )
    return group


def groups_of_images(run: Run, image_ids: Sequence[int]) -> list[int]:
    """The distinct groups of these images (erasure: the groups it affects)."""
    out: set[int] = set()
    for chunk in _chunks(image_ids):
        rows = run(
            f"SELECT DISTINCT group_id FROM images WHERE id IN ({_in(len(chunk))})"
            " AND group_id IS NOT NULL",
            chunk,
        )
        out.update(int(r[0]) for r in rows)
    return sorted(out)


def drop_empty_groups(tx: _Tx, group_ids: Sequence[int]) -> list[int]:
    """Delete those of the groups no image is in any more; returns their ids."""
    run = tx_rows(tx)
    gone: list[int] = []
    for chunk in _chunks(group_ids):
        held = {
            int(r[0])
            for r in run(
                f"SELECT DISTINCT group_id FROM images WHERE group_id IN ({_in(len(chunk))})",
                chunk,
            )
        }
        empty = [g for g in chunk if g not in held]
        if empty:
            tx.execute(f"DELETE FROM photo_groups WHERE id IN ({_in(len(empty))})", empty)
            gone.extend(empty)
    return gone


def groups_gone(run: Run, group_ids: Sequence[int]) -> tuple[int, ...]:
    """Those of the groups the catalog no longer has."""
    held: set[int] = set()
    for chunk in _chunks(group_ids):
        sql = f"SELECT id FROM photo_groups WHERE id IN ({_in(len(chunk))})"
        held.update(int(r[0]) for r in run(sql, chunk))
    return tuple(sorted(int(g) for g in set(group_ids) - held))


class GroupQueries:
    """Catalog reads of photo groups (see catalog/base.py)."""

    def near_images(self: _Host, phash: int, max_bits: int = NEAR_BITS) -> list[tuple[int, int]]:
        return [(image, d) for d, image, _ in near(self.query, int(phash), int(max_bits))]

    def image_groups(self: _Host, image_ids: Sequence[int]) -> dict[int, int]:
        out: dict[int, int] = {}
        for chunk in _chunks(image_ids):
            sql = f"SELECT id, group_id FROM images WHERE id IN ({_in(len(chunk))})"
            out.update((int(r[0]), int(r[1])) for r in self.query(sql, chunk) if r[1] is not None)
        return out

    def group_images(self: _Host, group_ids: Sequence[int]) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for chunk in _chunks(group_ids):
            sql = (
                f"SELECT group_id, id FROM images WHERE group_id IN ({_in(len(chunk))}) ORDER BY id"
            )
            for r in self.query(sql, chunk):
                out.setdefault(int(r[0]), []).append(int(r[1]))
        return out

    def group_locations(self: _Host, group_ids: Sequence[int]) -> dict[int, list[Provenance]]:
        out: dict[int, list[Provenance]] = {}
        for chunk in _chunks(group_ids):
            rows = self.query(
                "SELECT im.group_id, it.image_id, s.name, it.locator, it.ingested_at"
                " FROM items it JOIN images im ON im.id = it.image_id"
                " JOIN sources s ON s.id = it.source_id"
                f" WHERE im.group_id IN ({_in(len(chunk))}) ORDER BY it.id",
                chunk,
            )
            for r in rows:
                out.setdefault(int(r[0]), []).append(
                    Provenance(r[2], r[3], r[4], image_id=int(r[1]))
                )
        return out

    def image_hashes(self: _Host, image_ids: Sequence[int]) -> dict[int, int]:
        out: dict[int, int] = {}
        for chunk in _chunks(image_ids):
            sql = f"SELECT id, phash FROM images WHERE id IN ({_in(len(chunk))})"
            out.update(
                (int(r[0]), from_signed(int(r[1])))
                for r in self.query(sql, chunk)
                if r[1] is not None
            )
        return out

    def count_groups(self: _Host) -> int:
        return int(self.query("SELECT COUNT(*) FROM photo_groups")[0][0])
