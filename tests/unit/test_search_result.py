"""One result schema: the plain dicts the CLI prints are exactly what the HTTP model holds."""

from __future__ import annotations

import pytest

from faceindex.search.result import search_dict
from faceindex.server.schemas import MatchOut, SearchFaceOut, SearchOut
from faceindex.types import BBox, Match, ProbeFace, Provenance, SearchResult

pytestmark = pytest.mark.unit


def result() -> SearchResult:
    match = Match(
        face_id=7,
        image_id=3,
        distance=0.412,
        fmr=2.5e-5,
        expected_strangers=0.08,
        stranger_chance=0.0769,
        decision="possible",
        bbox=BBox(1, 2, 30, 40),
        quality=0.81,
        image_sha256="ab" * 32,
        locations=(Provenance("press", "a/b.jpg", "2026-01-01T00:00:00+00:00"),),
    )
    probe = ProbeFace(BBox(0, 0, 10, 10), 0.2, ("probe face quality 0.20 is low",))
    return SearchResult(probe, (match,), gallery_size=3200, match_bound=0.01)


def test_the_cli_dict_validates_as_the_http_model_field_for_field() -> None:
    body = search_dict([result()], case_reference="C-1", purpose="check")
    model = SearchOut.model_validate(body)  # extra="forbid": a renamed field fails here
    assert model.model_dump() == body
    face = body["faces"][0]  # type: ignore[index]
    assert set(face) == set(SearchFaceOut.model_fields)
    m = face["matches"][0]
    assert set(m) == set(MatchOut.model_fields)
    assert m["provenance"] == [
        {
            "source": "press",
            "locator": "a/b.jpg",
            "ingested_at": "2026-01-01T00:00:00+00:00",
            "image_id": None,
        }
    ]
    assert m["stranger_chance_words"].startswith("about 1 search in 13 ")
    assert face["probe"]["warnings"] == ["probe face quality 0.20 is low"]
    assert face["gallery_size"] == 3200 and "similarity" not in m


def test_http_links_fill_the_url_fields() -> None:
    body = search_dict(
        [result()],
        case_reference="C-1",
        purpose="check",
        search_id="0" * 24,
        links=lambda m: (f"/t/{m.face_id}", None),
    )
    m = body["faces"][0]["matches"][0]  # type: ignore[index]
    assert (m["thumbnail_url"], m["original_url"]) == ("/t/7", None)
    assert SearchOut.model_validate(body).search_id == "0" * 24
