"""Pydantic models of the HTTP boundary: what goes in and out. Never an embedding."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from faceindex.governance.roles import Permission, Role
from faceindex.sources.base import LegalBasis
from faceindex.types import ReviewDecision

__all__ = [
    "MAX_ID",
    "AuditEntryOut",
    "AuditOut",
    "EraseIds",
    "GcOut",
    "HoldingOut",
    "OptOutOut",
    "ReceiptCheckOut",
    "ReceiptOut",
    "SuppressionOut",
    "VerificationOut",
    "Health",
    "IngestJobOut",
    "IngestJobRequest",
    "MatchOut",
    "Me",
    "ProbeBoxOut",
    "ProbeFaceOut",
    "ProbeOut",
    "Problem",
    "ProvenanceOut",
    "ReviewOut",
    "SearchFaceOut",
    "SearchOut",
    "SourceIn",
    "SourceOut",
    "AlertOut",
    "WatchOut",
    # privacy
    "AnchorOut",
    "AnchorsIn",
    "ExportIn",
    "ExportOut",
    "LiftIn",
    "LiftOut",
    "TombstoneOut",
]

NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
MAX_ID = 2**53 - 1  # ids stay exact in JSON numbers (JavaScript's safe integers)
# One line of text: at least one non-blank character, and no control character (C0, DEL,
# C1: a NUL or a newline in a case reference would reach the audit log and its exports).
TEXT_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Problem(_Out):
    type: str = Field(examples=["urn:faceindex:problem:not-found"])
    title: str
    status: int
    detail: str


class Health(_Out):
    status: str = Field(examples=["ok"])
    version: str
    faces: int


class Me(_Out):
    name: str
    role: Role
    permissions: list[Permission]


class SourceOut(_Out):
    name: str
    kind: str
    owner: str
    legal_basis: str
    legal_reference: str
    purposes: list[str]
    retention_days: int
    jurisdiction: str
    created_at: str


class SourceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    path: str = Field(min_length=1, max_length=4096, description="folder on the server")
    owner: str = Field(min_length=1, max_length=200, pattern=TEXT_PATTERN)
    legal_basis: LegalBasis
    retention_days: int = Field(ge=1, le=36500)
    legal_reference: str = Field(default="", max_length=500)
    purposes: list[str] = Field(default_factory=list, max_length=20)
    jurisdiction: str = Field(default="", max_length=50)


class ProvenanceOut(_Out):
    source: str
    locator: str = Field(description="path inside the source")
    ingested_at: str
    image_id: int | None = Field(
        description="the image at this location: one of the photo group's near-duplicates"
    )


class ReviewOut(_Out):
    """A reviewer's decision on a candidate; mirrors ``search/case_result.py:review_dict``."""

    id: int
    search_id: str = Field(description="the search whose candidate this was")
    case_reference: str
    face_id: int
    decision: ReviewDecision
    note: str
    reviewer: str
    role: str
    at: str


class MatchOut(_Out):
    """One gallery face; mirrors ``search/result.py:match_dict`` field for field."""

    face_id: int
    image_id: int
    decision: str = Field(
        description="match: the chance of any stranger this close in the gallery searched is "
        "below match_bound; possible: investigative candidate; no-match"
    )
    distance: float = Field(description="L2 distance between the descriptors (smaller = closer)")
    fmr: float = Field(ge=0, le=1, description="per-comparison false-match rate at this distance")
    expected_strangers: float = Field(
        ge=0, description="different people this close expected among the faces searched"
    )
    stranger_chance: float = Field(
        ge=0, le=1, description="probability the gallery searched holds any stranger this close"
    )
    stranger_chance_words: str = Field(
        examples=["about 1 search in 40 of a gallery this size shows a stranger this close"]
    )
    box: list[int] = Field(min_length=4, max_length=4, description="left, top, right, bottom")
    quality: float = Field(ge=0, le=1, description="gallery face quality (size, sharpness, pose)")
    image_sha256: str
    provenance: list[ProvenanceOut]
    thumbnail_url: str | None = Field(description="null outside the HTTP API")
    original_url: str | None = Field(description="null unless the role may view originals")
    photo_group: int | None = Field(
        description="the photo group this row stands for: near-duplicate images (re-encoded, "
        "resized copies of one photo); provenance lists every location of every image in it"
    )
    group_face_ids: list[int] = Field(
        description="the group's faces among the nearest, best first (face_id is the first)"
    )
    review: ReviewOut | None = Field(
        default=None, description="the latest review decision on this face in this case"
    )


class ProbeFaceOut(_Out):
    box: list[int] = Field(min_length=4, max_length=4)
    quality: float = Field(ge=0, le=1)
    warnings: list[str] = Field(description="e.g. a probe face of low quality")


class ProbeBoxOut(_Out):
    box: list[int] = Field(min_length=4, max_length=4, description="left, top, right, bottom")
    score: float


class ProbeOut(_Out):
    width: int
    height: int
    faces: list[ProbeBoxOut]


class SearchFaceOut(_Out):
    probe: ProbeFaceOut
    gallery_size: int = Field(ge=0, description="live faces in the sources searched (N)")
    match_bound: float = Field(gt=0, lt=1, description="the bound the match band used")
    matches: list[MatchOut]


class SearchOut(_Out):
    """One search; mirrors ``search/result.py:search_dict`` (the CLI's --json)."""

    search_id: str | None = Field(
        description="the id its candidates are reviewed by (POST /v1/searches/{id}/reviews)"
    )
    case_reference: str
    purpose: str
    faces: list[SearchFaceOut]


class IngestJobRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str = Field(pattern=NAME_PATTERN)


class IngestJobOut(_Out):
    id: str
    source: str
    status: str = Field(description="queued | running | done | failed")
    created_at: str
    finished_at: str | None
    total: int
    done: int
    faces: int
    failed: int
    error: str | None


# -- governance ---------------------------------------------------------------------------


class ReceiptOut(_Out):
    id: str
    kind: str = Field(description="face | image | source | person | opt-out | retention | replaced")
    target: str
    faces_deleted: int
    images_deleted: int
    actor: str
    role: str
    at: str
    faces_digest: str = Field(description="sha256 over the sorted deleted face ids")
    reason: str
    exports: list[str] = Field(description="registered exports that copied the data")
    audit_seq: int
    recovered: bool = Field(
        default=False, description="finished on a later open, after the erasing process died"
    )
    photo_groups: list[int] = Field(
        default=[], description="photo groups that lost an image or a location"
    )
    photo_groups_removed: list[int] = Field(
        default=[], description="of those, the groups that lost their last image (gone)"
    )


class ReceiptCheckOut(_Out):
    receipt: ReceiptOut
    ok: bool
    faces_remaining: list[int]
    images_remaining: list[int]
    vectors_remaining: list[int]
    probe_matches: list[int]
    probe_checked: bool
    digest_ok: bool
    content_held: list[int] = Field(
        default=[], description="images holding the erased images' bytes again"
    )
    problems: list[str]
    near_duplicates_held: list[int] = Field(
        default=[], description="images near an erased image's perceptual hash, held again"
    )


class EraseIds(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(min_length=1, max_length=10_000)
    reason: str = Field(min_length=1, max_length=500, pattern=TEXT_PATTERN)


class SuppressionOut(_Out):
    id: str
    created_at: str
    actor: str
    reference: str
    templates: int = Field(description="how many photos it was made from (never the templates)")


class OptOutOut(_Out):
    suppression: SuppressionOut
    receipt: ReceiptOut


class HoldingOut(_Out):
    face_id: int
    image_id: int
    distance: float
    box: list[int] = Field(min_length=4, max_length=4)
    source: str
    locator: str
    ingested_at: str
    image_sha256: str
    thumbnail_url: str | None = Field(
        default=None, description="the face's thumbnail, for the caller who made this request"
    )


class GcOut(_Out):
    items_expired: int
    images_deleted: int
    faces_deleted: int
    suppressed_faces_deleted: int
    probes_dropped: int
    receipt_id: str | None
    per_source: dict[str, int]
    unheld_images_deleted: int = Field(
        default=0, description="images no location held any more (files replaced in place)"
    )
    erased_again: int = Field(default=0, description="images holding erased bytes again")
    watches_purged: int = Field(default=0, description="expired watches purged")


class VerificationOut(_Out):
    ok: bool
    entries: int
    first_bad: int | None = Field(description="seq of the first bad entry, if any")
    reason: str
    head_hash: str
    legacy: int = Field(default=0, description="entries from before the log was keyed")
    keyed: bool = Field(default=False, description="checked with the audit key")
    anchors: int = Field(default=0, description="exported heads compared")


class AuditEntryOut(_Out):
    seq: int
    at: str
    action: str
    actor: str
    role: str
    case: str
    purpose: str
    probe_sha256: str
    sources: list[str]
    face_ids: list[int]
    outcome: str
    details: dict[str, Any]
    prev: str
    hash: str


class AuditOut(_Out):
    verification: VerificationOut
    total: int
    entries: list[AuditEntryOut] = Field(description="newest first")
    next_before: int | None = Field(
        default=None, description="pass as `before` for the next, older page; null: no more"
    )


# -- persons (server/routes/persons.py; mirrors persons/view.py:person_dict) ---------------

LABEL_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*$"  # one line of text, may be empty (clears it)


class PersonFaceOut(_Out):
    face_id: int
    image_id: int
    image_sha256: str
    box: list[int] = Field(min_length=4, max_length=4, description="left, top, right, bottom")
    quality: float = Field(ge=0, le=1)
    thumbnail_url: str | None = Field(description="null outside the HTTP API")
    provenance: list[ProvenanceOut]


class PersonOut(_Out):
    """A person: faces clustered (or placed by a user) as one individual."""

    id: int
    label: str = Field(description="a name or case label given by an authorised user")
    labelled_by: str
    representative: int | None = Field(description="the face shown for the person")
    representative_url: str | None
    face_count: int = Field(ge=0)
    sources: list[str]
    created_at: str
    updated_at: str
    faces: list[PersonFaceOut]


class PersonsOut(_Out):
    persons: list[PersonOut]


class PersonBuildIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rebuild: bool = Field(
        default=False, description="re-cluster every face no user placed (default: new faces)"
    )


class PersonBuildOut(_Out):
    method: str
    rebuild: bool
    faces_placed: int
    links: int
    persons_created: int
    persons_joined: int
    persons: int
    edge: float = Field(description="link distance (from the model's calibration)")
    gate: float


class PersonLabelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = Field(max_length=200, pattern=LABEL_PATTERN, description="'' clears it")


class PersonMergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    other: int = Field(ge=1, le=MAX_ID, description="the person whose faces move in")


class PersonSplitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    face_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(
        min_length=1, max_length=10_000, description="faces that move to a new person"
    )


# -- watchlists (governance/watches.py) ---------------------------------------------------


class WatchOut(_Out):
    id: int
    owner: str
    case_reference: str
    purpose: str
    kind: str = Field(description="photo (probe photos' faces) or person")
    person_id: int | None
    probe_sha256: str = Field(description="sha256 of each probe photo (the photos are not kept)")
    sources: list[str] = Field(description="watched sources; empty: all the purpose allows")
    model: str
    created_at: str
    expires_at: str
    state: str = Field(description="live | removed | purged")
    ended_at: str | None
    templates: int = Field(description="face descriptors held (never the descriptors)")


class AlertOut(_Out):
    id: int
    watch_id: int
    case_reference: str
    purpose: str
    owner: str
    face_id: int
    image_id: int
    image_sha256: str
    locations: list[ProvenanceOut] = Field(description="where the face was when it alerted")
    distance: float
    band: str = Field(description="match | possible")
    stranger_chance: float
    compared: int = Field(description="N of the decision: templates x faces in scope")
    created_at: str
    held: bool = Field(description="the face is still in the gallery")
    thumbnail: str | None = Field(description="the face's thumbnail while it is held")


# -- privacy: tombstones, anchors, exports over HTTP, the auditor's filters -----------------


class TombstoneOut(_Out):
    sha256: str = Field(description="the erased image's content hash; every ingest refuses it")
    receipt_id: str
    since: str


class LiftIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target: str = Field(
        pattern=r"^([0-9a-fA-F]{64}|rcp-[0-9a-f]{16})$",
        description="an erased image's sha256, or a receipt id (every image it erased)",
    )
    reason: str = Field(min_length=1, max_length=500, pattern=TEXT_PATTERN)


class LiftOut(_Out):
    lifted: list[str] = Field(description="sha256s whose bytes may be ingested again")


class AnchorOut(_Out):
    seq: int
    hash: str
    keyed_from: int
    key_id: str
    mac: str
    line: str = Field(description="the head as `audit verify --anchor` reads it; keep it elsewhere")


class AnchorsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    anchors: list[Annotated[str, Field(min_length=1, max_length=2000)]] = Field(
        min_length=1, max_length=1000, description="heads from earlier anchors, one per item"
    )


class ExportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str = Field(pattern=NAME_PATTERN)
    case_reference: str = Field(min_length=1, max_length=200, pattern=TEXT_PATTERN)
    purpose: str = Field(min_length=1, max_length=200, pattern=TEXT_PATTERN)


class ExportOut(_Out):
    id: str
    at: str
    actor: str
    kind: str = Field(description="results | source")
    path: str = Field(description="where the CSV was written (on the server)")
    rows: int
    sha256: str
    sources: list[str]
    case: str
    purpose: str
