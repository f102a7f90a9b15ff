"""The catalog's change log (schema v2), on SQLite and PostgreSQL: every write takes a
generation, and another catalog object (another process) learns exactly which faces came
and went after the generation it last saw."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from faceindex.catalog.base import SCHEMA_VERSION, Catalog
from tests.contract.builders import OpenCatalog, face, new_source, outcome

pytestmark = pytest.mark.contract


def _faces(cat: Catalog, source_id: int, names: str, seed: int = 0) -> list[int]:
    batch = [
        outcome(source_id, f"{n}.jpg", f"{n}-{seed}", (face(seed + i),))
        for i, n in enumerate(names)
    ]
    return [fid for fid, _ in cat.record(batch, model="m")]


def test_every_write_takes_the_next_generation(cat: Catalog) -> None:
    start = cat.generation()
    src = cat.add_source(new_source())
    assert cat.generation() == start + 1
    ids = _faces(cat, src.id, "ab")
    assert cat.generation() == start + 2  # one batch, one transaction, one generation
    cat.delete_faces(ids[:1])
    assert cat.generation() == start + 3
    cat.faces(ids)  # reads take none
    cat.live_face_ids()
    assert cat.generation() == start + 3


def test_another_catalog_sees_the_faces_added_and_removed(reopen: OpenCatalog) -> None:
    writer, reader = reopen(), reopen()
    src = writer.add_source(new_source())
    seen = reader.generation()
    added = _faces(writer, src.id, "abcd")
    changes = reader.changes_since(seen)
    assert changes.complete and changes.generation == writer.generation()
    assert changes.added.tolist() == sorted(added) and len(changes.removed) == 0

    seen = changes.generation
    writer.delete_faces(added[:1])
    writer.delete_images([writer.faces(added[1:2])[added[1]].image_id])
    later = _faces(writer, src.id, "e", seed=10)
    changes = reader.changes_since(seen)
    assert sorted(changes.removed.tolist()) == sorted(added[:2])
    assert changes.added.tolist() == later
    assert reader.changes_since(changes.generation).added.tolist() == []


def test_a_face_added_and_removed_in_between_is_only_a_removal(reopen: OpenCatalog) -> None:
    writer, reader = reopen(), reopen()
    src = writer.add_source(new_source())
    seen = reader.generation()
    ids = _faces(writer, src.id, "ab")
    writer.delete_faces(ids[:1])
    changes = reader.changes_since(seen)
    assert changes.added.tolist() == ids[1:]
    assert changes.removed.tolist() == ids[:1]


def test_own_changes_are_left_out_unless_asked_for(reopen: OpenCatalog) -> None:
    """The process that wrote them has applied them to its index already."""
    cat, other = reopen(), reopen()
    src = cat.add_source(new_source())
    seen = cat.generation()
    mine = _faces(cat, src.id, "ab")
    theirs = _faces(other, src.id, "cd", seed=5)
    cat.delete_faces(mine[:1])
    changes = cat.changes_since(seen)
    assert changes.added.tolist() == theirs and len(changes.removed) == 0
    everything = cat.changes_since(seen, include_own=True)
    assert everything.added.tolist() == sorted(mine[1:] + theirs)
    assert everything.removed.tolist() == mine[:1]


def test_an_unknown_generation_is_not_complete(cat: Catalog) -> None:
    cat.add_source(new_source())
    assert not cat.changes_since(cat.generation() + 5).complete
    assert not cat.changes_since(-1).complete
    assert cat.changes_since(cat.generation()).complete


def test_a_rolled_back_write_takes_no_generation(cat: Catalog) -> None:
    src = cat.add_source(new_source())
    before = cat.generation()
    bad = outcome(src.id, "x.jpg", "X", (face(1),))
    with pytest.raises(Exception):  # noqa: B017 - each driver raises its own integrity error
        cat.record([bad, outcome(src.id + 999, "y.jpg", "Y")], model="m")  # no such source
    assert cat.generation() == before
    assert cat.changes_since(before - 1, include_own=True).added.tolist() == []


def test_concurrent_writers_commit_in_generation_order(reopen: OpenCatalog) -> None:
    """Two writers at once: a reader that saw generation g has seen every face of every
    generation up to g, so asking from g later misses nothing."""
    writers = [reopen(), reopen()]
    reader = reopen()
    src = writers[0].add_source(new_source())
    seen = reader.generation()
    collected: list[int] = []
    expected: list[int] = []
    lock = threading.Lock()

    def write(w: int) -> None:
        for n in range(15):
            ids = _faces(writers[w], src.id, f"w{w}n{n}", seed=100 * w + n)
            with lock:
                expected.extend(ids)

    threads = [threading.Thread(target=write, args=(w,)) for w in (0, 1)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        changes = reader.changes_since(seen)
        collected.extend(changes.added.tolist())
        seen = changes.generation
    for t in threads:
        t.join()
    collected.extend(reader.changes_since(seen).added.tolist())
    assert sorted(collected) == sorted(expected)
    assert len(set(collected)) == len(collected)


def test_a_v1_catalog_upgrades_with_its_faces_at_generation_zero(reopen: OpenCatalog) -> None:
    assert SCHEMA_VERSION >= 3
    old = reopen()
    src = old.add_source(new_source())
    ids = _faces(old, src.id, "ab")
    with old.transaction(bump=False) as tx:  # type: ignore[attr-defined]
        for statement in (  # back to the v1 schema, faces and all
            "DROP TABLE person_faces",  # v3 (persons)
            "DROP TABLE persons",
            "DROP TABLE reviews",  # v4 (review decisions)
            "DROP INDEX faces_generation",
            "ALTER TABLE faces DROP COLUMN generation",
            "DROP TABLE face_removals",
            "DROP TABLE catalog_state",
            "UPDATE schema_version SET version = 1",
        ):
            tx.execute(statement)
    old.close()
    upgraded = reopen()
    assert upgraded.schema_version() == SCHEMA_VERSION  # type: ignore[attr-defined]
    assert upgraded.persons() == []  # v3 ran too
    assert upgraded.generation() == 0
    assert upgraded.live_face_ids().tolist() == ids
    other = reopen()
    newer = _faces(upgraded, src.id, "c", seed=3)
    changes = other.changes_since(0)
    assert changes.added.tolist() == newer and upgraded.generation() == 1
    assert np.array_equal(other.live_face_ids(), np.asarray(ids + newer))
