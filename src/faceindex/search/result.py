"""The search result as plain data: the one shape the CLI's --json and the HTTP API return.

``server/schemas.py`` mirrors it in pydantic for the OpenAPI schema; a test checks the two
agree. Never includes an embedding.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from faceindex.search.case_result import provenance_dict, review_dict
from faceindex.search.scoring import in_words
from faceindex.types import Match, Review, SearchResult

__all__ = ["Links", "face_dict", "match_dict", "search_dict"]

Links = Callable[[Match], tuple[str | None, str | None]]  # (thumbnail_url, original_url)


def _no_links(_m: Match) -> tuple[str | None, str | None]:
    return None, None


def match_dict(
    m: Match, links: Links = _no_links, review: Review | None = None
) -> dict[str, object]:
    """``review``: the latest decision on this face in the search's case, if any."""
    thumbnail_url, original_url = links(m)
    return {
        "face_id": m.face_id,
        "image_id": m.image_id,
        "decision": m.decision,
        "distance": m.distance,
        "fmr": m.fmr,
        "expected_strangers": m.expected_strangers,
        "stranger_chance": m.stranger_chance,
        "stranger_chance_words": in_words(m.stranger_chance),
        "box": m.bbox.as_list(),
        "quality": m.quality,
        "image_sha256": m.image_sha256,
        "provenance": [provenance_dict(p) for p in m.locations],
        "thumbnail_url": thumbnail_url,
        "original_url": original_url,
        "photo_group": m.group_id,
        "group_face_ids": list(m.group_faces),
        "review": review_dict(review) if review is not None else None,
    }


def face_dict(
    r: SearchResult, links: Links = _no_links, reviews: Mapping[int, Review] | None = None
) -> dict[str, object]:
    decided = reviews or {}
    return {
        "probe": {
            "box": r.probe.bbox.as_list(),
            "quality": r.probe.quality,
            "warnings": list(r.probe.warnings),
        },
        "gallery_size": r.gallery_size,
        "match_bound": r.match_bound,
        "matches": [match_dict(m, links, decided.get(m.face_id)) for m in r.matches],
    }


def search_dict(
    results: Sequence[SearchResult],
    *,
    case_reference: str,
    purpose: str,
    search_id: str | None = None,
    links: Links = _no_links,
    reviews: Mapping[int, Review] | None = None,
) -> dict[str, object]:
    """``reviews``: face id -> the latest decision on it in this case (Governance.decisions)."""
    return {
        "search_id": search_id,
        "case_reference": case_reference,
        "purpose": purpose,
        "faces": [face_dict(r, links, reviews) for r in results],
    }
