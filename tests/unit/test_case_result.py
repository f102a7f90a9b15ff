"""Review decisions beside a match and the case view: the plain dicts the CLI prints are
exactly what the HTTP models hold."""

from __future__ import annotations

import pytest

from faceindex.governance.casework import CaseCandidate, CaseSearch, CaseVerification, CaseView
from faceindex.search.case_result import case_dict, review_dict
from faceindex.search.result import search_dict
from faceindex.server.schemas import MatchOut, ReviewOut, SearchOut
from faceindex.server.schemas_casework import CaseOut
from faceindex.types import Provenance, Review
from tests.unit.test_search_result import result

pytestmark = pytest.mark.unit

REVIEW = Review(
    id=4,
    search_id="ab" * 12,
    case_reference="C-1",
    face_id=7,
    decision="confirmed",
    note="same scar",
    reviewer="inv-1",
    role="investigator",
    at="2026-12-01T12:00:00.000001+00:00",
)


def test_a_decided_match_carries_its_latest_review() -> None:
    body = search_dict([result()], case_reference="C-1", purpose="p", reviews={7: REVIEW})
    model = SearchOut.model_validate(body)
    assert model.model_dump() == body
    m = body["faces"][0]["matches"][0]  # type: ignore[index]
    assert set(m) == set(MatchOut.model_fields)
    assert m["review"] == review_dict(REVIEW) and m["review"]["decision"] == "confirmed"
    assert set(m["review"]) == set(ReviewOut.model_fields)


def test_an_undecided_match_has_a_null_review() -> None:
    body = search_dict([result()], case_reference="C-1", purpose="p", reviews={8: REVIEW})
    assert body["faces"][0]["matches"][0]["review"] is None  # type: ignore[index]


def test_the_case_dict_is_the_http_model_field_for_field() -> None:
    view = CaseView(
        "C-1",
        (CaseSearch("ab" * 12, 3, "2026-12-01T12:00:00", "inv-1", "investigator", "p",
                    ("press",), 2, "ok"),
         CaseSearch(None, 1, "2026-11-01T12:00:00", "inv-1", "investigator", "p", (), 0,
                    "error")),
        (CaseVerification(5, "2026-12-01T12:05:00", "inv-1", "p", "match", 0.31, "ok"),),
        (CaseCandidate(7, ("ab" * 12,), True, (Provenance("press", "a.jpg", "2026-01-01"),),
                       REVIEW, (REVIEW,)),
         CaseCandidate(9, ("ab" * 12,), False, (), None, ())),
    )  # fmt: skip
    body = case_dict(view)
    assert CaseOut.model_validate(body).model_dump() == body
    assert body["candidates"][1] == {  # type: ignore[index]
        "face_id": 9, "search_ids": ["ab" * 12], "held": False, "provenance": [],
        "review": None, "history": [],
    }  # fmt: skip
