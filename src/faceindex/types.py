"""Frozen value types passed between the pipeline stages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np

__all__ = [
    "BBox",
    "DetectedFace",
    "FaceQuality",
    "IngestSummary",
    "Match",
    "ProbeFace",
    "Provenance",
    "REVIEW_DECISIONS",
    "Review",
    "ReviewDecision",
    "SearchResult",
]


@dataclass(frozen=True)
class BBox:
    """A face box in full-resolution pixel coordinates (right/bottom exclusive)."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def area(self) -> int:
        return max(0, self.width) * max(0, self.height)

    def iou(self, other: BBox) -> float:
        ix = max(0, min(self.right, other.right) - max(self.left, other.left))
        iy = max(0, min(self.bottom, other.bottom) - max(self.top, other.top))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union else 0.0

    def as_list(self) -> list[int]:
        return [self.left, self.top, self.right, self.bottom]


@dataclass(frozen=True)
class FaceQuality:
    """Per-face quality measures; ``score`` in [0, 1] combines them for the indexing floor."""

    size: int  # shorter side of the box, pixels at full resolution
    sharpness: float  # variance of the Laplacian of the aligned grey chip
    pose: float  # 0 = frontal; ~1 = profile (nose offset from the eye midline / eye distance)
    score: float


@dataclass(frozen=True)
class DetectedFace:
    """One face found in an image, embedded and ready for the catalog."""

    bbox: BBox
    landmarks: tuple[tuple[float, float], ...]
    detector: str
    detector_score: float
    quality: FaceQuality
    embedding: np.ndarray = field(repr=False, compare=False)
    thumbnail: bytes = field(repr=False, compare=False)


@dataclass(frozen=True)
class Provenance:
    """Where an image came from: every place it was seen, and under which source."""

    source: str
    locator: str  # path inside the source, or URL
    ingested_at: str  # ISO-8601 UTC
    image_id: int | None = None  # the image found there (a photo group's rows name it)


@dataclass(frozen=True)
class Match:
    """One gallery face returned for one probe face. Never carries the embedding.

    ``fmr``, ``expected_strangers`` and ``stranger_chance`` come from the model's calibration
    and the number of faces searched (search/scoring.py); ``decision`` follows from them."""

    face_id: int
    image_id: int
    distance: float
    fmr: float  # per-comparison false-match rate at this distance
    expected_strangers: float  # different people this close expected in the gallery searched
    stranger_chance: float  # probability the gallery searched holds any stranger this close
    decision: str  # "match" | "possible" | "no-match"
    bbox: BBox
    quality: float
    image_sha256: str
    locations: tuple[Provenance, ...]
    # photo groups: the row stands for every near-duplicate image of its group
    group_id: int | None = None
    group_faces: tuple[int, ...] = ()  # the group's faces among the neighbours, best first


@dataclass(frozen=True)
class ProbeFace:
    bbox: BBox
    quality: float
    warnings: tuple[str, ...] = ()  # e.g. a probe face below the quality the bands assume


@dataclass(frozen=True)
class SearchResult:
    """The matches for one face of the probe image, and what they were decided against."""

    probe: ProbeFace
    matches: tuple[Match, ...]
    gallery_size: int = 0  # live faces in the sources searched (N of the bands)
    match_bound: float = 0.01  # a match: chance of any stranger this close below this


@dataclass
class IngestSummary:
    images_seen: int = 0
    images_new: int = 0
    images_skipped: int = 0  # already ingested (resume) or duplicate bytes
    faces_indexed: int = 0
    faces_below_quality: int = 0
    faces_suppressed: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (locator, reason)
    seconds: float = 0.0
    # ingest hardening: entries listed but not read, and images left without a location
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (locator, why)
    images_unheld: int = 0  # replaced in place; `gc` erases them with a receipt
    watch_alerts: int = 0  # new faces that alerted a live watch (governance/watches.py)
    # privacy: the ingest's governance retires what it displaced (receipt, no tombstone)
    images_retired: int = 0
    retired_receipt: str | None = None


# -- review: an examiner's decision on a search's candidate ---------------------------------

ReviewDecision = Literal["confirmed", "rejected", "inconclusive"]
REVIEW_DECISIONS: tuple[str, ...] = get_args(ReviewDecision)


@dataclass(frozen=True)
class Review:
    """One reviewer's decision on one candidate face of one search, within its case."""

    id: int
    search_id: str
    case_reference: str
    face_id: int
    decision: str  # one of REVIEW_DECISIONS
    note: str
    reviewer: str
    role: str
    at: str  # ISO-8601 UTC
