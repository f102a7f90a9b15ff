"""Pydantic models of 1:1 verification, review decisions and the case view; they mirror
``search/case_result.py`` field for field (tests/unit/test_case_result.py checks it)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from faceindex.governance.casework import MAX_NOTE
from faceindex.server.schemas import MAX_ID, ProvenanceOut, ReviewOut
from faceindex.types import ReviewDecision

__all__ = [
    "CaseCandidateOut",
    "CaseOut",
    "CaseSearchOut",
    "CaseVerificationOut",
    "FaceVerificationOut",
    "ReviewIn",
    "VerifiedFaceOut",
]

# A note may be empty; if given, one line without control characters.
NOTE_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*$"


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VerifiedFaceOut(_Out):
    box: list[int] = Field(min_length=4, max_length=4, description="left, top, right, bottom")
    quality: float = Field(ge=0, le=1)
    faces_found: int = Field(ge=1, description="faces detected in this photo")
    chosen: int = Field(ge=1, description="which of them was compared (1-based)")
    warnings: list[str]


class FaceVerificationOut(_Out):
    """1:1: ``faceindex verify --json`` and ``POST /v1/verifications``."""

    case_reference: str
    purpose: str
    same_person: bool = Field(description="true only for the match band")
    decision: str = Field(
        description="match: a stranger comes this close in fewer than match_bound of "
        "comparisons and both faces are of good quality; possible: for an examiner to compare; "
        "no-match"
    )
    distance: float = Field(ge=0, description="distance between the descriptors (smaller = closer)")
    fmr: float = Field(ge=0, le=1, description="share of different-person pairs this close (N=1)")
    tmr: float = Field(ge=0, le=1, description="share of same-person pairs at least this close")
    fmr_words: str = Field(examples=["about 1 pair in 4,000 of different people is this close"])
    meaning: str = Field(description="what the score means, in one sentence")
    match_bound: float = Field(gt=0, lt=1)
    faces: list[VerifiedFaceOut] = Field(min_length=2, max_length=2, description="photo A, B")


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    face_id: int = Field(ge=1, le=MAX_ID, description="a candidate the search returned")
    decision: ReviewDecision
    note: str = Field(default="", max_length=MAX_NOTE, pattern=NOTE_PATTERN)


class CaseSearchOut(_Out):
    search_id: str | None = Field(description="null for searches audited before search ids")
    audit_seq: int
    at: str
    actor: str
    role: str
    purpose: str
    sources: list[str] = Field(description="the sources searched")
    candidates: int = Field(ge=0, description="faces returned")
    outcome: str = Field(description="ok | error")


class CaseVerificationOut(_Out):
    audit_seq: int
    at: str
    actor: str
    purpose: str
    decision: str
    distance: float | None
    outcome: str


class CaseCandidateOut(_Out):
    face_id: int
    search_ids: list[str] = Field(description="the searches of this case that returned it")
    held: bool = Field(description="false once the face has been erased")
    provenance: list[ProvenanceOut] = Field(description="where its image is held now")
    review: ReviewOut | None = Field(description="the latest decision")
    history: list[ReviewOut] = Field(description="every decision, oldest first")


class CaseOut(_Out):
    case_reference: str
    searches: list[CaseSearchOut]
    verifications: list[CaseVerificationOut]
    candidates: list[CaseCandidateOut]
