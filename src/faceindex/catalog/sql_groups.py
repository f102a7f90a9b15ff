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

import numpy as np

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
    "place_images",
    "near_each",
    "tx_rows",
]

CHUNK = 500
ROUND = 32  # images whose band lookups go together (near_each)
_POP8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)
Run = Callable[[str, Sequence[object]], list[Any]]


class _Tx(Protocol):
    def execute(self, sql: str, params: Sequence[object] = ()) -> Any: ...


class _BatchTx(_Tx, Protocol):
    """What placing a batch needs of the transaction (catalog/sql.py's Tx)."""

    def insert_rows(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[object]]
    ) -> None: ...
    def int_tables(self, values: Sequence[int]) -> list[tuple[str, list[object]]]: ...


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


def _popcount(x: np.ndarray) -> np.ndarray:
    """Set bits of each uint64 (numpy >= 1.24 has no bitwise_count)."""
    per_byte = _POP8[np.ascontiguousarray(x).view(np.uint8)]
    return per_byte.reshape(*x.shape, 8).sum(axis=-1, dtype=np.uint8)


def near_each(
    tx: _BatchTx, hashes: Sequence[int], max_bits: int
) -> list[list[tuple[int, int, int]]]:
    """:func:`near` for many hashes at once, in a transaction: per band, one lookup of a
    round of hashes' probe values together, then every candidate's distance to every hash
    of the round in one array. Same answers, a few statements per round of
    :data:`ROUND` images instead of a few per image; the round bounds the candidates held
    at once (each probe matches about one in 65 536 held images)."""
    out: list[list[tuple[int, int, int]]] = []
    for start in range(0, len(hashes), ROUND):
        out.extend(_near_round(tx, hashes[start : start + ROUND], max_bits))
    return out


def _near_round(
    tx: _BatchTx, hashes: Sequence[int], max_bits: int
) -> list[list[tuple[int, int, int]]]:
    if not hashes:
        return []
    flips = np.array(band_probes(0, max_bits)[0], dtype=np.int64)  # the masks within reach
    own = np.array([bands(h) for h in hashes], dtype=np.int64)  # (hashes, BANDS)
    held: dict[int, tuple[int, int]] = {}  # image id -> (signed hash, group id)
    for band in range(BANDS):
        values = np.unique(own[:, band, None] ^ flips[None, :]).tolist()
        for table, params in tx.int_tables(values):
            sql = (
                f"SELECT i.id, i.phash, i.group_id FROM {table}"
                f" JOIN images i ON i.phash_b{band} = v.value"
            )
            rows = tx.execute(sql, params).fetchall()
            held.update((int(r[0]), (int(r[1]), int(r[2]))) for r in rows)
    if not held:
        return [[] for _ in hashes]
    ids = np.fromiter(held, dtype=np.int64, count=len(held))
    groups = np.fromiter((g for _, g in held.values()), dtype=np.int64, count=len(held))
    signed = np.fromiter((h for h, _ in held.values()), dtype=np.int64, count=len(held))
    want = np.array([to_signed(h) for h in hashes], dtype=np.int64).view(np.uint64)
    dist = _popcount(signed.view(np.uint64)[:, None] ^ want[None, :])  # (held, hashes)
    out: list[list[tuple[int, int, int]]] = []
    for k in range(len(hashes)):
        rows = np.nonzero(dist[:, k] <= max_bits)[0]
        out.append(sorted((int(dist[r, k]), int(ids[r]), int(groups[r])) for r in rows))
    return out


def place_images(
    tx: _BatchTx, images: Sequence[tuple[int, int | None]], now: str
) -> list[tuple[object, ...]]:
    """Put new images in groups (see the module docstring) as if one by one in the given
    order: a later image of the batch may join an earlier one's group. ``images`` are (the
    id the image's row will have, its perceptual hash or None). Called in the transaction
    that inserts them, before their rows exist, so the lookup never finds them (the batch
    is compared here instead); inserts the groups they found. Returns each image's
    ``phash, phash_b0..b3, group_id`` column values, for its INSERT."""
    hashed = [h for _, h in images if h is not None]
    held = iter(near_each(tx, hashed, NEAR_BITS))
    earlier: list[tuple[int, int, int]] = []  # (id, hash, group) placed in this batch
    founded: list[tuple[object, ...]] = []
    columns: list[tuple[object, ...]] = []
    for image_id, phash in images:
        parts: tuple[object, ...] = (None,) * (1 + BANDS)
        hits: list[tuple[int, int, int]] = []
        if phash is not None:
            parts = (to_signed(phash), *bands(phash))
            hits = next(held)
            for other, other_hash, other_group in earlier:
                d = hamming(phash, other_hash)
                if d <= NEAR_BITS:
                    hits.append((d, other, other_group))
        group = min(hits)[2] if hits else int(image_id)
        if not hits:
            founded.append((group, now))
        if phash is not None:
            earlier.append((int(image_id), phash, group))
        columns.append((*parts, group))
    tx.insert_rows("photo_groups", ("id", "created_at"), founded)
    return columns


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
