"""The watchlist half of the catalog (schema v4), the same on SQLite and PostgreSQL."""

from __future__ import annotations

import numpy as np
import pytest

from faceindex.catalog.base import Catalog
from faceindex.catalog.watch_rows import NewAlert, NewWatch
from faceindex.errors import InputError
from faceindex.types import Provenance
from tests.contract.builders import OpenCatalog, face, new_source, outcome

pytestmark = pytest.mark.contract


def _watch(owner: str = "ann", k: int = 2, sources: tuple[str, ...] = ()) -> NewWatch:
    rng = np.random.default_rng(k)
    return NewWatch(
        owner=owner,
        case_reference="C-7",
        purpose="find a missing person",
        kind="photo",
        model="m@1",
        expires_at="2099-01-01T00:00:00+00:00",
        templates=rng.normal(size=(k, 128)).astype(np.float32),
        qualities=tuple(0.5 + i / 10 for i in range(k)),
        sources=sources,
        probe_sha256="ab" * 32,
    )


def _alert(watch_id: int, face_id: int, distance: float = 0.3) -> NewAlert:
    return NewAlert(
        watch_id=watch_id,
        face_id=face_id,
        image_id=1,
        image_sha256="cd" * 32,
        locations=(Provenance("press", "a/b.jpg", "2026-01-01T00:00:00+00:00"),),
        distance=distance,
        band="match",
        stranger_chance=0.001,
        compared=40,
    )


def test_a_watch_round_trips_without_showing_its_templates(cat: Catalog) -> None:
    new = _watch(k=3, sources=("press", "web"))
    rec = cat.add_watch(new)
    assert (rec.owner, rec.case_reference, rec.purpose, rec.kind) == (
        "ann",
        "C-7",
        "find a missing person",
        "photo",
    )
    assert rec.sources == ("press", "web") and rec.templates == 3 and rec.state == "live"
    assert rec.expires_at == new.expires_at and rec.person_id is None
    assert not hasattr(rec, "vectors")
    held = cat.watch_templates([rec.id])[rec.id]
    assert np.array_equal(held.vectors, new.templates)
    assert np.allclose(held.qualities, new.qualities)
    assert [w.id for w in cat.watches(owner="ann")] == [rec.id]
    assert cat.watches(owner="bob") == []
    assert cat.watches([]) == []


def test_a_watch_needs_a_quality_per_template(cat: Catalog) -> None:
    bad = _watch(k=2)
    with pytest.raises(InputError):
        cat.add_watch(NewWatch(**{**bad.__dict__, "qualities": (0.5,)}))
    assert cat.watches() == []


def test_a_watch_screens_from_the_generation_it_was_made_at(cat: Catalog) -> None:
    src = cat.add_source(new_source())
    cat.record([outcome(src.id, "a.jpg", "a", (face(1),))], "m@1")
    before = cat.generation()
    rec = cat.add_watch(_watch())
    assert rec.from_generation == before
    cat.record([outcome(src.id, "b.jpg", "b", (face(2),))], "m@1")
    added = cat.faces_added_between(rec.from_generation, cat.generation())
    assert len(added) == 1 and added[0][1] == cat.generation()


def test_ending_a_watch_drops_its_templates_and_keeps_its_alerts(cat: Catalog) -> None:
    rec = cat.add_watch(_watch())
    first = cat.add_alerts([_alert(rec.id, 5)])
    assert cat.end_watch(rec.id, "purged")
    assert not cat.end_watch(rec.id, "removed")  # already ended
    after = cat.watches([rec.id])[0]
    assert after.state == "purged" and after.templates == 0 and after.ended_at
    assert cat.watch_templates([rec.id]) == {}
    assert [a.id for a in cat.alerts([rec.id])] == [first[0].id]
    with pytest.raises(InputError):
        cat.end_watch(rec.id, "paused")


def test_a_face_alerts_once_per_watch(reopen: OpenCatalog) -> None:
    one, two = reopen(), reopen()  # two nodes screening the same new face
    w = one.add_watch(_watch())
    other = one.add_watch(_watch(owner="bob"))
    made = one.add_alerts([_alert(w.id, 9), _alert(other.id, 9)])
    again = two.add_alerts([_alert(w.id, 9, distance=0.1), _alert(w.id, 10)])
    assert len(made) == 2 and [a.face_id for a in again] == [10]
    kept = one.alerts([w.id])
    assert [(a.face_id, a.distance) for a in kept] == [(9, pytest.approx(0.3)), (10, 0.3)]
    assert kept[0].locations == (Provenance("press", "a/b.jpg", "2026-01-01T00:00:00+00:00"),)
    assert kept[0].band == "match" and kept[0].compared == 40 and kept[0].audit_seq is None


def test_alerts_are_marked_audited(cat: Catalog) -> None:
    w = cat.add_watch(_watch())
    a, b = cat.add_alerts([_alert(w.id, 1), _alert(w.id, 2)])
    cat.set_alert_audit(a.id, 17)
    assert [x.id for x in cat.alerts(unaudited=True)] == [b.id]
    assert cat.alerts(ids=[a.id])[0].audit_seq == 17


def test_the_screening_cursor_only_moves_forward(reopen: OpenCatalog) -> None:
    cat = reopen()
    src = cat.add_source(new_source())
    cat.record([outcome(src.id, "a.jpg", "a", (face(1),))], "m@1")
    start = cat.watch_cursor()
    assert start == 0  # a new catalog: nothing screened yet
    cat.advance_watch_cursor(5)
    cat.advance_watch_cursor(3)
    assert reopen().watch_cursor() == 5
