"""Review decisions in the catalog, the same on SQLite and PostgreSQL: recorded with their
time and id, never overwritten, read back per case (and per face), and kept across reopen."""

from __future__ import annotations

import pytest

from faceindex.catalog.base import Catalog, NewReview
from faceindex.errors import InputError
from tests.contract.builders import OpenCatalog

pytestmark = pytest.mark.contract


def review(face_id: int, decision: str, case: str = "C-1", **kw: str) -> NewReview:
    fields = {"search_id": "a" * 24, "note": "", "reviewer": "inv-1", "role": "investigator"}
    fields.update(kw)
    return NewReview(
        case_reference=case,
        face_id=face_id,
        decision=decision,
        **fields,  # type: ignore[arg-type]
    )


def test_a_decision_is_recorded_with_its_id_and_time(cat: Catalog) -> None:
    got = cat.add_review(review(7, "confirmed", note="same scar on the left brow"))
    assert got.id >= 1 and got.at.endswith("+00:00")
    assert (got.face_id, got.decision, got.note) == (7, "confirmed", "same scar on the left brow")
    assert cat.reviews("C-1") == [got]


def test_later_decisions_are_new_rows_in_order(reopen: OpenCatalog) -> None:
    cat = reopen()
    first = cat.add_review(review(7, "inconclusive"))
    second = cat.add_review(review(7, "rejected", reviewer="inv-2"))
    cat.add_review(review(8, "confirmed"))
    cat.add_review(review(7, "confirmed", case="C-2"))
    rows = reopen().reviews("C-1", [7])
    assert [r.id for r in rows] == [first.id, second.id]
    assert rows[-1].decision == "rejected" and rows[-1].reviewer == "inv-2"
    assert {r.face_id for r in cat.reviews("C-1")} == {7, 8}
    assert [r.case_reference for r in cat.reviews("C-2")] == ["C-2"]
    assert cat.reviews("C-3") == [] and cat.reviews("C-1", []) == []


def test_many_face_ids_are_read_in_chunks(cat: Catalog) -> None:
    for face in (3, 1200):
        cat.add_review(review(face, "confirmed"))
    assert [r.face_id for r in cat.reviews("C-1", range(1, 1500))] == [3, 1200]


def test_an_unknown_decision_is_refused(cat: Catalog) -> None:
    with pytest.raises(InputError, match="one of: confirmed, rejected, inconclusive"):
        cat.add_review(review(7, "maybe"))
    assert cat.reviews("C-1") == []
