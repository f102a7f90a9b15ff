"""The persons queries (catalog/sql_persons.py, schema v3) on SQLite and on PostgreSQL:
placements, labels, pins, and that every erasure path keeps persons consistent (a person
whose last face goes is deleted; a representative is always one of the person's faces)."""

from __future__ import annotations

import pytest

from faceindex.catalog.base import Catalog
from faceindex.errors import InputError, NotFoundError
from faceindex.persons.base import Placement
from tests.contract.builders import face, new_source, outcome

pytestmark = pytest.mark.contract


def _gallery(cat: Catalog) -> list[int]:
    """Three images of two faces each in source 'one'; image 3 also located in 'two'."""
    one = cat.add_source(new_source("one"))
    two = cat.add_source(new_source("two"))
    outs = [
        outcome(one.id, f"{n}.jpg", f"bytes-{n}", (face(10 * n), face(10 * n + 1, left=100)))
        for n in (1, 2, 3)
    ]
    outs.append(outcome(two.id, "copy.jpg", "bytes-3"))
    cat.record(outs, "m")
    return sorted(int(i) for i in cat.live_face_ids())


def test_placements_create_move_and_settle(cat: Catalog) -> None:
    f = _gallery(cat)
    ids = cat.assign_persons([Placement(None, (f[0], f[1], f[2])), Placement(None, (f[3],))])
    assert len(set(ids)) == 2
    a, b = ids
    people = {p.id: p for p in cat.persons()}
    assert people[a].face_ids == (f[0], f[1], f[2]) and people[b].face_ids == (f[3],)
    assert people[a].representative in people[a].face_ids
    # moving b's only face into a deletes b in the same write
    cat.assign_persons([Placement(a, (f[3],))], pinned=True)
    assert [p.id for p in cat.persons()] == [a]
    members = cat.person_memberships()
    assert members[f[3]].pinned and not members[f[0]].pinned
    assert members[f[0]].person_id == a and f[4] not in members


def test_rebuild_clears_only_unpinned(cat: Catalog) -> None:
    f = _gallery(cat)
    a, b = cat.assign_persons([Placement(None, (f[0], f[1])), Placement(None, (f[2],))])
    cat.assign_persons([Placement(a, (f[1],))], pinned=True)
    (c,) = cat.assign_persons([Placement(None, (f[4],))], drop_unpinned=True)
    members = cat.person_memberships()
    assert set(members) == {f[1], f[4]}  # f[0] and f[2] were no user's placement
    assert {p.id for p in cat.persons()} == {a, c}  # b lost its only face
    assert b not in {p.id for p in cat.persons()}


def test_label_and_refusals(cat: Catalog) -> None:
    f = _gallery(cat)
    (a,) = cat.assign_persons([Placement(None, (f[0],))])
    cat.label_person(a, "Case 7 suspect", "ines")
    (p,) = cat.persons([a])
    assert (p.label, p.labelled_by) == ("Case 7 suspect", "ines")
    assert cat.persons([a + 99]) == []
    with pytest.raises(NotFoundError):
        cat.label_person(a + 99, "x", "ines")
    with pytest.raises(NotFoundError):
        cat.assign_persons([Placement(a + 99, (f[1],))])
    with pytest.raises(InputError):
        cat.assign_persons([Placement(None, (max(f) + 1000,))])
    assert cat.person_memberships().keys() == {f[0]}  # the refused writes left nothing


def test_erasure_keeps_persons_consistent(cat: Catalog) -> None:
    f = _gallery(cat)
    a, b, c = cat.assign_persons(
        [
            Placement(None, (f[0], f[2])),  # image 1 and image 2
            Placement(None, (f[1],)),  # image 1 only
            Placement(None, (f[4], f[5])),  # image 3 (held by both sources)
        ]
    )
    rep = cat.persons([a])[0].representative
    assert rep in (f[0], f[2])
    cat.delete_faces([rep])  # erase by face: the representative moves to the other face
    (pa,) = cat.persons([a])
    assert pa.face_ids == tuple(x for x in (f[0], f[2]) if x != rep)
    assert pa.representative == pa.face_ids[0]
    image_1 = cat.faces([f[1]])[f[1]].image_id
    cat.delete_images([image_1])  # erase by image: b's only face goes, and b with it
    assert b not in {p.id for p in cat.persons()}
    one = cat.get_source("one")
    cat.delete_source(one.id)  # image 3 stays (source two holds it): c is untouched
    assert cat.persons([c])[0].face_ids == (f[4], f[5])
    two = cat.get_source("two")
    cat.delete_source(two.id)
    assert cat.persons() == [] and cat.person_memberships() == {}


def test_retention_items_erasure_drops_persons(cat: Catalog) -> None:
    f = _gallery(cat)
    (a,) = cat.assign_persons([Placement(None, (f[0], f[1]))])
    items = {
        r["locator"]: int(r["id"])
        for r in cat.query("SELECT id, locator FROM items")  # type: ignore[attr-defined]
    }
    cat.delete_items([items["1.jpg"]])
    assert cat.persons([a]) == []


def test_an_erased_persons_label_leaves_no_bytes(cat: Catalog, catalog_url: str) -> None:
    import uuid
    from pathlib import Path

    f = _gallery(cat)
    (a,) = cat.assign_persons([Placement(None, (f[0],))])
    marker = "NAME-" + uuid.uuid4().hex
    cat.label_person(a, marker, "ines")
    cat.delete_faces([f[0]])
    cat.checkpoint()  # PostgreSQL: VACUUMs the persons tables too
    assert cat.persons() == []
    if catalog_url.startswith("sqlite:///"):
        db = Path(catalog_url[len("sqlite:///") :])
        for path in (db, db.with_name(db.name + "-wal")):
            assert not path.exists() or marker.encode() not in path.read_bytes()
