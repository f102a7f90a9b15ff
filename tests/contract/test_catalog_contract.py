"""One catalog contract, run on SQLite and on PostgreSQL.

PostgreSQL runs where FACEINDEX_TEST_PG_URL names a reachable server
(``export FACEINDEX_TEST_PG_URL=$(bash scripts/start-postgres.sh)``); each test gets a schema
of its own, dropped afterwards. Without one, the PostgreSQL half skips and says why.
"""

from __future__ import annotations

import hashlib
import threading

import numpy as np
import pytest

from faceindex.catalog.base import SCHEMA_VERSION, Catalog
from faceindex.errors import InputError, NotFoundError, StorageError
from faceindex.types import Provenance
from tests.contract.builders import OpenCatalog, face, new_source, outcome

pytestmark = pytest.mark.contract


# -- schema ---------------------------------------------------------------------------------


def test_new_catalog_is_at_current_schema_and_empty(cat: Catalog) -> None:
    assert isinstance(cat, Catalog)  # every method of the protocol is there
    assert cat.schema_version() == SCHEMA_VERSION  # type: ignore[attr-defined]
    assert cat.stats() == {"sources": 0, "images": 0, "locations": 0, "failed": 0, "faces": 0}
    assert cat.count_faces() == 0
    assert len(cat.live_face_ids()) == 0
    assert list(cat.iter_embeddings()) == []


def test_reopen_keeps_schema_and_does_not_migrate_twice(reopen: OpenCatalog) -> None:
    first = reopen()
    first.add_source(new_source())
    first.close()
    again = reopen()
    assert again.schema_version() == SCHEMA_VERSION  # type: ignore[attr-defined]
    assert [s.name for s in again.list_sources()] == ["src"]
    assert len(again.query("SELECT version FROM schema_version")) == 1  # type: ignore[attr-defined]


def test_catalog_newer_than_code_is_refused(reopen: OpenCatalog) -> None:
    cat = reopen()
    with cat.transaction() as tx:  # type: ignore[attr-defined]
        tx.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    cat.close()
    with pytest.raises(StorageError, match="newer"):
        reopen()


def test_a_new_migration_upgrades_an_existing_catalog_in_place(
    reopen: OpenCatalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The path a future schema change takes: v1 data, then a v2 step, on both engines."""
    import faceindex.catalog.sql as sql_module
    from faceindex.catalog.schema import MIGRATIONS

    old = reopen()
    src = old.add_source(new_source())
    new = old.record([outcome(src.id, "a.jpg", "A", (face(1),))], model="m")
    old.close()
    step = [
        "ALTER TABLE faces ADD COLUMN reviewed INTEGER NOT NULL DEFAULT 0",
        "CREATE INDEX faces_reviewed ON faces (reviewed)",
    ]
    monkeypatch.setitem(MIGRATIONS, SCHEMA_VERSION + 1, step)
    monkeypatch.setattr(sql_module, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    upgraded = reopen()
    assert upgraded.schema_version() == SCHEMA_VERSION + 1  # type: ignore[attr-defined]
    rows = upgraded.query("SELECT id, reviewed FROM faces")  # type: ignore[attr-defined]
    assert [(int(r["id"]), int(r["reviewed"])) for r in rows] == [(new[0][0], 0)]
    assert upgraded.stats()["faces"] == 1
    upgraded.close()
    assert reopen().schema_version() == SCHEMA_VERSION + 1  # type: ignore[attr-defined]


def test_a_failing_migration_leaves_the_catalog_as_it_was(
    reopen: OpenCatalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    import faceindex.catalog.sql as sql_module
    from faceindex.catalog.schema import MIGRATIONS

    reopen().add_source(new_source())
    step = [
        "ALTER TABLE faces ADD COLUMN reviewed INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE no_such_table ADD COLUMN x TEXT",
    ]
    monkeypatch.setitem(MIGRATIONS, SCHEMA_VERSION + 1, step)
    monkeypatch.setattr(sql_module, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(StorageError):
        reopen()
    monkeypatch.undo()
    again = reopen()
    assert again.schema_version() == SCHEMA_VERSION  # type: ignore[attr-defined]
    cols = again.query("SELECT * FROM faces")  # type: ignore[attr-defined]
    assert cols == [] and [s.name for s in again.list_sources()] == ["src"]
    # the failed step's first statement was rolled back with the rest
    with pytest.raises(StorageError):
        again.query("SELECT reviewed FROM faces")  # type: ignore[attr-defined]


# -- sources --------------------------------------------------------------------------------


def test_sources_add_get_list(cat: Catalog) -> None:
    b = cat.add_source(
        new_source(
            "beta", purposes=("fraud", "safety"), jurisdiction="EU", legal_reference="Art. 6(1)(b)"
        )
    )
    a = cat.add_source(new_source("alpha"))
    assert b.id != a.id
    got = cat.get_source("beta")
    assert got == b
    assert (got.kind, got.uri, got.owner, got.legal_basis) == (
        "folder",
        "/data/beta",
        "records",
        "contract",
    )
    assert got.purposes == ("fraud", "safety")
    assert (got.jurisdiction, got.legal_reference, got.retention_days) == ("EU", "Art. 6(1)(b)", 30)
    assert got.created_at.endswith("+00:00")
    assert [s.name for s in cat.list_sources()] == ["alpha", "beta"]


def test_source_errors(cat: Catalog) -> None:
    cat.add_source(new_source("dup"))
    with pytest.raises(InputError, match="already exists"):
        cat.add_source(new_source("dup"))
    with pytest.raises(InputError):
        cat.add_source(new_source("bad name;"))
    with pytest.raises(NotFoundError):
        cat.get_source("absent")
    assert len(cat.list_sources()) == 1  # the failed inserts left nothing behind


# -- recording outcomes ---------------------------------------------------------------------


def test_record_faces_and_read_them_back(cat: Catalog) -> None:
    src = cat.add_source(new_source())
    f1, f2, f3 = face(1, left=5), face(2, left=100), face(3)
    new = cat.record(
        [outcome(src.id, "a.jpg", "A", (f1, f2)), outcome(src.id, "b.jpg", "B", (f3,))],
        model="dlib-v1",
    )
    assert len(new) == 3
    ids = [fid for fid, _ in new]
    assert len(set(ids)) == 3
    for (_, vec), f in zip(new, (f1, f2, f3), strict=True):
        np.testing.assert_array_equal(vec, f.embedding)
    rows = cat.faces(ids)
    assert set(rows) == set(ids)
    r1 = rows[ids[0]]
    assert r1.bbox == f1.bbox
    assert r1.quality == pytest.approx(0.875)
    assert r1.model == "dlib-v1"
    assert not r1.deleted
    assert r1.image_sha256 == hashlib.sha256(b"A").hexdigest()
    assert rows[ids[0]].image_id == rows[ids[1]].image_id != rows[ids[2]].image_id
    assert [(p.source, p.locator) for p in r1.locations] == [("src", "a.jpg")]
    assert cat.thumbnail(ids[2]) == b"thumb-3"
    assert cat.count_faces() == 3
    np.testing.assert_array_equal(cat.live_face_ids(), np.array(sorted(ids), dtype=np.int64))
    assert cat.stats() == {"sources": 1, "images": 2, "locations": 2, "failed": 0, "faces": 3}


def test_duplicate_bytes_at_two_locators_are_one_image_with_two_locations(cat: Catalog) -> None:
    one = cat.add_source(new_source("one"))
    two = cat.add_source(new_source("two"))
    first = cat.record([outcome(one.id, "x/orig.jpg", "SAME", (face(7),))], model="m")
    again = cat.record(
        [
            outcome(one.id, "copy.jpg", "SAME", (face(7),)),
            outcome(two.id, "elsewhere.jpg", "SAME", (face(7),)),
        ],
        model="m",
    )
    assert len(first) == 1 and again == []
    row = cat.faces([first[0][0]])[first[0][0]]
    assert [(p.source, p.locator) for p in row.locations] == [
        ("one", "x/orig.jpg"),
        ("one", "copy.jpg"),
        ("two", "elsewhere.jpg"),
    ]
    assert all(isinstance(p, Provenance) and p.ingested_at for p in row.locations)
    assert cat.stats() == {"sources": 2, "images": 1, "locations": 3, "failed": 0, "faces": 1}


def test_re_recording_the_same_item_is_idempotent(cat: Catalog) -> None:
    src = cat.add_source(new_source())
    batch = [outcome(src.id, "a.jpg", "A", (face(1),))]
    assert len(cat.record(batch, model="m")) == 1
    before = cat.stats()
    assert cat.record(batch, model="m") == []
    assert cat.stats() == before
    assert cat.seen_items(src.id) == {"a.jpg": (1, 1700000000.5)}


def test_failures_are_recorded_and_cleared_by_a_later_success(cat: Catalog) -> None:
    one = cat.add_source(new_source("one"))
    two = cat.add_source(new_source("two"))
    cat.record(
        [
            outcome(one.id, "bad.jpg", "", error="DecodeError: truncated"),
            outcome(two.id, "worse.png", "", error="ImageTooLarge: 9e9 pixels"),
            outcome(two.id, "good.png", "G", (face(4),)),
        ],
        model="m",
    )
    assert cat.failures() == [
        ("one", "bad.jpg", "DecodeError: truncated"),
        ("two", "worse.png", "ImageTooLarge: 9e9 pixels"),
    ]
    assert cat.failures(two.id) == [("two", "worse.png", "ImageTooLarge: 9e9 pixels")]
    assert set(cat.seen_items(two.id)) == {"worse.png", "good.png"}
    assert cat.stats()["failed"] == 2
    cat.record([outcome(one.id, "bad.jpg", "fixed", (face(5),))], model="m")
    assert cat.failures(one.id) == []
    assert cat.stats() == {"sources": 2, "images": 2, "locations": 2, "failed": 1, "faces": 2}


def test_a_failed_batch_records_nothing(cat: Catalog) -> None:
    src = cat.add_source(new_source())
    bad = outcome(src.id + 999, "x.jpg", "X", (face(1),))  # no such source: FK violation
    with pytest.raises(Exception):  # noqa: B017 - each driver raises its own integrity error
        cat.record([outcome(src.id, "ok.jpg", "OK", (face(2),)), bad], model="m")
    assert cat.stats() == {"sources": 1, "images": 0, "locations": 0, "failed": 0, "faces": 0}


# -- embeddings, ids, deletion --------------------------------------------------------------


def test_iter_embeddings_in_id_order_and_batches(cat: Catalog) -> None:
    src = cat.add_source(new_source())
    new = cat.record(
        [outcome(src.id, f"{i}.jpg", f"img{i}", (face(i),)) for i in range(5)], model="m"
    )
    batches = list(cat.iter_embeddings(batch=2))
    assert [len(ids) for ids, _ in batches] == [2, 2, 1]
    ids = np.concatenate([b[0] for b in batches])
    vecs = np.concatenate([b[1] for b in batches])
    assert ids.dtype == np.int64 and vecs.dtype == np.float32 and vecs.shape == (5, 128)
    expected = dict(new)
    assert list(ids) == sorted(expected)
    for i, v in zip(ids, vecs, strict=True):
        np.testing.assert_array_equal(v, expected[int(i)])


def test_delete_faces(cat: Catalog) -> None:
    src = cat.add_source(new_source())
    new = cat.record(
        [outcome(src.id, f"{i}.jpg", f"img{i}", (face(i),)) for i in range(4)], model="m"
    )
    ids = [fid for fid, _ in new]
    assert cat.delete_faces([ids[1], ids[3], 10**9]) == 2
    assert cat.delete_faces([ids[1]]) == 0
    assert cat.delete_faces([]) == 0
    assert set(cat.faces(ids)) == {ids[0], ids[2]}
    assert list(cat.live_face_ids()) == [ids[0], ids[2]]
    assert [int(i) for b, _ in cat.iter_embeddings() for i in b] == [ids[0], ids[2]]
    assert cat.count_faces() == 2
    with pytest.raises(NotFoundError):
        cat.thumbnail(ids[1])
    # A deleted id, even the highest, is never handed to a new face.
    later = cat.record([outcome(src.id, "new.jpg", "new", (face(9),))], model="m")
    assert later[0][0] > max(ids)


def test_faces_lookup_ignores_unknown_ids_and_handles_long_lists(cat: Catalog) -> None:
    src = cat.add_source(new_source())
    new = cat.record([outcome(src.id, "a.jpg", "A", (face(1),))], model="m")
    fid = new[0][0]
    assert cat.faces([]) == {}
    wanted = list(range(fid + 1, fid + 1200)) + [fid]
    assert list(cat.faces(wanted)) == [fid]


def test_everything_survives_reopen(reopen: OpenCatalog) -> None:
    cat = reopen()
    src = cat.add_source(new_source(purposes=("p",)))
    new = cat.record(
        [
            outcome(src.id, "a.jpg", "A", (face(1), face(2))),
            outcome(src.id, "bad.jpg", "", error="DecodeError: x"),
        ],
        model="m",
    )
    cat.delete_faces([new[1][0]])
    stats, sources = cat.stats(), cat.list_sources()
    cat.close()
    again = reopen()
    assert again.stats() == stats
    assert again.list_sources() == sources
    assert list(again.live_face_ids()) == [new[0][0]]
    ((ids, vecs),) = list(again.iter_embeddings())
    np.testing.assert_array_equal(vecs[0], new[0][1])
    assert again.failures() == [("src", "bad.jpg", "DecodeError: x")]
    assert again.thumbnail(new[0][0]) == b"thumb-1"


# -- transactions and concurrent writers ----------------------------------------------------


def test_transaction_rolls_back_on_error_and_rows_answer_by_name(cat: Catalog) -> None:
    cat.add_source(new_source("kept"))
    with pytest.raises(RuntimeError), cat.transaction() as tx:  # type: ignore[attr-defined]
        tx.execute("UPDATE sources SET owner = ? WHERE name = ?", ("changed", "kept"))
        raise RuntimeError("abort")
    rows = cat.query("SELECT name, owner FROM sources")  # type: ignore[attr-defined]
    assert (rows[0]["name"], rows[0]["owner"], rows[0][1]) == ("kept", "records", "records")


def test_two_writers_recording_the_same_bytes_make_one_image(reopen: OpenCatalog) -> None:
    first, second = reopen(), reopen()
    src = first.add_source(new_source())
    barrier = threading.Barrier(2)
    results: dict[str, object] = {}

    def write(name: str, cat: Catalog) -> None:
        barrier.wait()
        try:
            results[name] = cat.record([outcome(src.id, f"{name}.jpg", "SAME", (face(1),))], "m")
        except Exception as exc:  # reported below, with the backend's own message
            results[name] = exc

    threads = [
        threading.Thread(target=write, args=(n, c)) for n, c in (("a", first), ("b", second))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert all(isinstance(r, list) for r in results.values()), results
    assert sorted(len(r) for r in results.values()) == [0, 1]  # type: ignore[arg-type]
    assert first.stats() == {"sources": 1, "images": 1, "locations": 2, "failed": 0, "faces": 1}


def test_live_face_ids_pages_through_every_id(cat: Catalog) -> None:
    src = cat.add_source(new_source())
    new = cat.record([outcome(src.id, f"{i}.jpg", f"img{i}", (face(i),)) for i in range(5)], "m")
    paged = cat.live_face_ids(page=2)  # type: ignore[call-arg]
    assert paged.dtype == np.int64
    assert list(paged) == sorted(fid for fid, _ in new)
