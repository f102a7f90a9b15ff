"""The catalog contract for record()'s batching, on SQLite and PostgreSQL: one batch mixing
every kind of outcome (new images with several faces, bytes repeated within the batch and
from an earlier batch, failed and skipped items, a locator written twice, near-duplicates of
the batch and of an earlier one) lands exactly as recording its outcomes one at a time does:
each face id with its own image, box, embedding and thumbnail, each item on its own image."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from faceindex.backends import open_catalog
from faceindex.catalog.base import Catalog, ImageOutcome
from faceindex.catalog.postgres import split_schema
from faceindex.types import DetectedFace
from tests.contract.builders import face, new_source, outcome

pytestmark = pytest.mark.contract

BASE = 0x9F3C_51A2_7E08_C4D6
FAR = BASE ^ 0xFFFF_FFFF_0000_0000  # 32 bits from BASE
OTHER = BASE ^ 0x0000_0000_FFFF_FFFF  # 32 bits from BASE, 64 from FAR
LOW = 0x0123_4567_89AB_CDEF  # about 32 bits from each of the above


def flip(h: int, *bits: int) -> int:
    for b in bits:
        h ^= 1 << b
    return h


HIGH = flip(LOW, *range(0, 64, 4))  # 16 bits from LOW: a group of its own
BETWEEN = flip(LOW, *range(0, 24, 4))  # 6 from LOW, 10 from HIGH: LOW's group
NEAR_HIGH = flip(LOW, *range(16, 64, 4))  # 12 from LOW, 4 from HIGH: HIGH's group


def _sha(content: str) -> str:
    return hashlib.sha256(content.encode()).hexdigest()


def _out(
    source_id: int,
    locator: str,
    content: str,
    faces: tuple[DetectedFace, ...] = (),
    phash: int | None = None,
) -> ImageOutcome:
    return replace(outcome(source_id, locator, content, faces), phash=phash)


def _first_batch(source_id: int) -> list[ImageOutcome]:
    return [
        _out(source_id, "old/a.jpg", "OLD-A", (face(1),), BASE),
        _out(source_id, "old/b.jpg", "OLD-B", (face(2), face(3, left=200)), FAR),
        _out(source_id, "old/c.jpg", "OLD-C", (face(4),), LOW),
    ]


def _mixed_batch(source_id: int) -> list[ImageOutcome]:
    failed_with_digest = replace(
        outcome(source_id, "bad-decode.jpg", "", error="DecodeError: truncated"),
        sha256=_sha("BROKEN"),
    )
    skipped = replace(outcome(source_id, "pipe", "", error="a FIFO, not a file"), skipped=True)
    return [
        _out(source_id, "new/two.jpg", "NEW-2", (face(10), face(11, left=150)), BASE ^ 0b111),
        _out(source_id, "again/a.jpg", "OLD-A", (face(12),), BASE),  # held since batch 1
        outcome(source_id, "bad.jpg", "", error="ImageTooLarge: 9e9 pixels"),
        _out(source_id, "new/zero.jpg", "NEW-0", (), OTHER),
        _out(source_id, "copy/two.jpg", "NEW-2", (face(13),), BASE ^ 0b111),  # repeat in batch
        skipped,
        _out(source_id, "new/three.jpg", "NEW-3", (face(14), face(15, 90), face(16, 170)), None),
        failed_with_digest,
        _out(source_id, "new/near-zero.jpg", "NEW-NZ", (face(17),), OTHER ^ 0b11),
        _out(source_id, "new/near-far.jpg", "NEW-NF", (face(18),), FAR ^ (1 << 63)),
        _out(source_id, "twice.jpg", "TWICE-1", (face(19),), None),
        _out(source_id, "twice.jpg", "TWICE-2", (face(20),), None),  # same locator: last wins
        # each joins the nearest group within reach: one of batch 1, one of this batch
        _out(source_id, "new/high.jpg", "NEW-HIGH", (face(21),), HIGH),
        _out(source_id, "new/between.jpg", "NEW-BETWEEN", (face(22),), BETWEEN),
        _out(source_id, "new/near-high.jpg", "NEW-NH", (face(23),), NEAR_HIGH),
    ]


def _face_rows(cat: Catalog, new: list[tuple[int, np.ndarray]]) -> list[tuple[Any, ...]]:
    """What each returned face is, by content (ids differ between engines' sequences)."""
    rows = cat.faces([fid for fid, _ in new])
    stored = {}
    for ids, vecs in cat.iter_embeddings():
        stored.update(zip(ids.tolist(), vecs, strict=True))
    out = []
    for fid, vec in new:
        np.testing.assert_array_equal(stored[fid], vec)
        r = rows[fid]
        out.append((r.image_sha256, r.bbox, vec.tobytes(), cat.thumbnail(fid)))
    return out


def _items(cat: Catalog) -> dict[str, tuple[Any, ...]]:
    """locator -> (image's digest or None, the item's digest, status, reason)."""
    rows = cat.query(  # type: ignore[attr-defined]
        "SELECT it.locator, im.sha256, it.sha256, it.status, it.reason FROM items it"
        " LEFT JOIN images im ON im.id = it.image_id ORDER BY it.locator"
    )
    return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}


def _groups(cat: Catalog) -> set[frozenset[str]]:
    """The photo groups as sets of image digests."""
    rows = cat.query("SELECT sha256, group_id FROM images")  # type: ignore[attr-defined]
    by_group: dict[int, set[str]] = {}
    for r in rows:
        by_group.setdefault(int(r[1]), set()).add(r[0])
    return {frozenset(g) for g in by_group.values()}


@pytest.fixture
def twin(catalog_url: str) -> Iterator[Catalog]:
    """A second fresh catalog of the same kind: the one-at-a-time oracle."""
    if catalog_url.startswith("sqlite"):
        url = catalog_url.replace("catalog.db", "twin.db")
    else:
        url = catalog_url + "_twin"
    cat = open_catalog(url)
    yield cat
    cat.close()
    if not catalog_url.startswith("sqlite"):
        import psycopg

        conninfo, schema = split_schema(url)
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_a_mixed_batch_maps_every_face_and_item_to_its_own_image(cat: Catalog) -> None:
    src = cat.add_source(new_source())
    first = cat.record(_first_batch(src.id), "m")
    batch = _mixed_batch(src.id)
    new = cat.record(batch, "m")
    # Only the first occurrence of new bytes brings faces, in the batch's order.
    expected = [
        (_sha("NEW-2"), face(10)),
        (_sha("NEW-2"), face(11, left=150)),
        (_sha("NEW-3"), face(14)),
        (_sha("NEW-3"), face(15, 90)),
        (_sha("NEW-3"), face(16, 170)),
        (_sha("NEW-NZ"), face(17)),
        (_sha("NEW-NF"), face(18)),
        (_sha("TWICE-1"), face(19)),
        (_sha("TWICE-2"), face(20)),
        (_sha("NEW-HIGH"), face(21)),
        (_sha("NEW-BETWEEN"), face(22)),
        (_sha("NEW-NH"), face(23)),
    ]
    assert [fid for fid, _ in new] == sorted(fid for fid, _ in new)
    assert min(fid for fid, _ in new) > max(fid for fid, _ in first)
    got = _face_rows(cat, new)
    want = [(sha, f.bbox, f.embedding.tobytes(), f.thumbnail) for sha, f in expected]
    assert got == want
    assert cat.stats() == {"sources": 1, "images": 13, "locations": 14, "failed": 2, "faces": 16}

    items = _items(cat)
    assert items["again/a.jpg"] == (_sha("OLD-A"), _sha("OLD-A"), "ok", None)
    assert (
        items["new/two.jpg"] == items["copy/two.jpg"] == (_sha("NEW-2"), _sha("NEW-2"), "ok", None)
    )
    assert items["new/zero.jpg"] == (_sha("NEW-0"), _sha("NEW-0"), "ok", None)
    assert items["bad.jpg"] == (None, None, "failed", "ImageTooLarge: 9e9 pixels")
    assert items["bad-decode.jpg"] == (None, _sha("BROKEN"), "failed", "DecodeError: truncated")
    assert items["pipe"] == (None, None, "skipped", "a FIFO, not a file")
    assert items["twice.jpg"] == (_sha("TWICE-2"), _sha("TWICE-2"), "ok", None)
    assert cat.images_holding([_sha("BROKEN")]) == {}

    # Near-duplicates join the group of an earlier batch's image and of this batch's own.
    assert _groups(cat) == {
        frozenset({_sha("OLD-A"), _sha("NEW-2")}),
        frozenset({_sha("OLD-B"), _sha("NEW-NF")}),
        frozenset({_sha("NEW-0"), _sha("NEW-NZ")}),
        frozenset({_sha("NEW-3")}),
        frozenset({_sha("TWICE-1")}),
        frozenset({_sha("TWICE-2")}),
        frozenset({_sha("OLD-C"), _sha("NEW-BETWEEN")}),
        frozenset({_sha("NEW-HIGH"), _sha("NEW-NH")}),
    }
    held = cat.images_holding([_sha("OLD-A"), _sha("NEW-0")])
    groups = cat.image_groups(list(held.values()))
    assert groups[held[_sha("OLD-A")]] == held[_sha("OLD-A")]  # numbered by its first image
    assert groups[held[_sha("NEW-0")]] == held[_sha("NEW-0")]


def test_a_batch_lands_as_its_outcomes_one_at_a_time(cat: Catalog, twin: Catalog) -> None:
    src, twin_src = cat.add_source(new_source()), twin.add_source(new_source())
    assert src.id == twin_src.id
    new = cat.record(_first_batch(src.id), "m") + cat.record(_mixed_batch(src.id), "m")
    one_by_one: list[tuple[int, np.ndarray]] = []
    for out in _first_batch(src.id) + _mixed_batch(src.id):
        one_by_one += twin.record([out], "m")
    assert _face_rows(cat, new) == _face_rows(twin, one_by_one)
    assert _items(cat) == _items(twin)
    assert _groups(cat) == _groups(twin)
    assert cat.stats() == twin.stats()
    assert cat.count_groups() == twin.count_groups()


def test_a_batch_longer_than_one_statement_keeps_every_mapping(cat: Catalog) -> None:
    # 300 images, 2 faces each: more rows than one statement's parameters take on SQLite,
    # so the batch goes as several statements per table, and its hashes' lookups as
    # several rounds; a late one is a near-duplicate of an image held before.
    src = cat.add_source(new_source())
    cat.record([_out(src.id, "held.jpg", "HELD", (), LOW)], "m")
    rng = np.random.default_rng(5)
    hashes = [int(h) for h in rng.integers(0, 2**63, size=300, dtype=np.int64)]
    hashes[250] = LOW ^ 0b101
    batch = [
        _out(src.id, f"{i:03d}.jpg", f"bulk-{i}", (face(2 * i), face(2 * i + 1, 300)), hashes[i])
        for i in range(300)
    ]
    new = cat.record(batch, "m")
    want = [
        (_sha(f"bulk-{i}"), f.bbox, f.embedding.tobytes(), f.thumbnail)
        for i in range(300)
        for f in (face(2 * i), face(2 * i + 1, 300))
    ]
    assert _face_rows(cat, new) == want
    items = _items(cat)
    assert len(items) == 301
    assert all(items[f"{i:03d}.jpg"][0] == _sha(f"bulk-{i}") for i in range(300))
    assert frozenset({_sha("HELD"), _sha("bulk-250")}) in _groups(cat)
    assert cat.count_groups() == 300
