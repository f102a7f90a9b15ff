"""Verifications, review decisions and case views as plain data: the one shape the CLI's
--json and the HTTP API return (``server/schemas.py`` mirrors it; a test checks they agree).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from faceindex.search.scoring import one_in, pair_words
from faceindex.types import Provenance, Review

if TYPE_CHECKING:
    from faceindex.governance.casework import CaseView
    from faceindex.search.verify import Verification

__all__ = ["case_dict", "meaning", "provenance_dict", "review_dict", "verification_dict"]


def provenance_dict(p: Provenance) -> dict[str, object]:
    """One place an image was found, as every answer shows it (CLI --json and HTTP)."""
    return {
        "source": p.source,
        "locator": p.locator,
        "ingested_at": p.ingested_at,
        "image_id": p.image_id,
    }


def review_dict(r: Review) -> dict[str, object]:
    return {
        "id": r.id,
        "search_id": r.search_id,
        "case_reference": r.case_reference,
        "face_id": r.face_id,
        "decision": r.decision,
        "note": r.note,
        "reviewer": r.reviewer,
        "role": r.role,
        "at": r.at,
    }


def _comparisons(text: str) -> str:
    return text.replace("searches", "comparisons").replace("search", "comparison")


def meaning(v: Verification) -> str:
    """One sentence on what the pair's score means, for a person to read."""
    bound = f"the bound of {_comparisons(one_in(v.match_bound))}"
    rate = pair_words(v.fmr)
    if v.decision == "match":
        return f"The same person: {rate}, below {bound}."
    if v.decision == "possible":
        low = min(f.quality for f in v.faces) < v.match_quality
        why = (
            "a face is of low quality, so the calibration cannot support a match"
            if low
            else f"that is not below {bound}"
        )
        return f"Not established: {rate}; {why}. A pair for a trained examiner to compare."
    far = 1.0 - v.tmr
    return f"Different people: {rate}, and {far:.1%} of same-person pairs are this far apart."


def verification_dict(v: Verification, *, case_reference: str, purpose: str) -> dict[str, object]:
    return {
        "case_reference": case_reference,
        "purpose": purpose,
        "same_person": v.same_person,
        "decision": v.decision,
        "distance": v.distance,
        "fmr": v.fmr,
        "fmr_words": pair_words(v.fmr),
        "tmr": v.tmr,
        "meaning": meaning(v),
        "match_bound": v.match_bound,
        "faces": [
            {
                "box": f.bbox.as_list(),
                "quality": f.quality,
                "faces_found": f.faces_found,
                "chosen": f.chosen,
                "warnings": list(f.warnings),
            }
            for f in v.faces
        ],
    }


def case_dict(c: CaseView) -> dict[str, object]:
    return {
        "case_reference": c.case_reference,
        "searches": [
            {
                "search_id": s.search_id,
                "audit_seq": s.seq,
                "at": s.at,
                "actor": s.actor,
                "role": s.role,
                "purpose": s.purpose,
                "sources": list(s.sources),
                "candidates": s.candidates,
                "outcome": s.outcome,
            }
            for s in c.searches
        ],
        "verifications": [
            {
                "audit_seq": v.seq,
                "at": v.at,
                "actor": v.actor,
                "purpose": v.purpose,
                "decision": v.decision,
                "distance": v.distance,
                "outcome": v.outcome,
            }
            for v in c.verifications
        ],
        "candidates": [
            {
                "face_id": k.face_id,
                "search_ids": list(k.search_ids),
                "held": k.held,
                "provenance": [provenance_dict(p) for p in k.locations],
                "review": review_dict(k.review) if k.review else None,
                "history": [review_dict(r) for r in k.history],
            }
            for k in c.candidates
        ],
    }
