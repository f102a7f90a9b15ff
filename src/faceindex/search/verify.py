"""1:1 verification: is the face in one photo the same person as the face in another?

The same calibrated decision a search makes, with N = 1: one comparison, so the chance that
a stranger comes this close is the per-comparison false-match rate ``fmr(d)`` itself
(search/scoring.py). ``match`` (same person) needs ``fmr(d)`` below the match bound and both
faces at or above the match quality; ``possible`` is a pair for a person to examine;
``no-match`` otherwise. Distances are the index's: Euclidean between the stored vectors
(a cosine pack's vectors are unit, so this ranks as cosine does).

A photo with several faces: the largest is compared unless a face is chosen by its number
(1-based, in the order ``POST /v1/probe/faces`` lists them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from faceindex.errors import InputError, NoFaceError
from faceindex.search.scoring import Decider
from faceindex.types import BBox, DetectedFace
from faceindex.vision.analyze import Analyzer

__all__ = ["Verification", "VerifyFace", "compare_faces", "pick_face", "verify_photos"]


@dataclass(frozen=True)
class VerifyFace:
    """The face compared in one photo."""

    bbox: BBox
    quality: float
    faces_found: int  # faces detected in the photo
    chosen: int  # which of them (1-based, in detection order)
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Verification:
    faces: tuple[VerifyFace, VerifyFace]
    distance: float
    fmr: float  # per-comparison false-match rate at this distance (= stranger chance, N = 1)
    tmr: float  # share of same-person pairs at least this close (calibration)
    decision: str  # "match" | "possible" | "no-match"
    match_bound: float
    match_quality: float

    @property
    def same_person(self) -> bool:
        return self.decision == "match"


def pick_face(faces: Sequence[DetectedFace], number: int | None, label: str) -> int:
    """The 0-based position of the face to compare: ``number`` (1-based), else the largest."""
    if not faces:
        raise NoFaceError(f"no face found in photo {label}")
    if number is None:
        return max(range(len(faces)), key=lambda i: faces[i].bbox.area)
    if not 1 <= number <= len(faces):
        raise InputError(
            f"photo {label} has {len(faces)} face(s): choose a face from 1 to {len(faces)}, "
            f"not {number}"
        )
    return number - 1


def compare_faces(
    faces_a: Sequence[DetectedFace],
    faces_b: Sequence[DetectedFace],
    decider: Decider,
    *,
    face_a: int | None = None,
    face_b: int | None = None,
) -> Verification:
    """Compare the chosen (or largest) face of each photo; pure, no model."""
    picked = []
    for faces, number, label in ((faces_a, face_a, "A"), (faces_b, face_b, "B")):
        i = pick_face(faces, number, label)
        picked.append((faces[i], i + 1, len(faces)))
    (a, _, _), (b, _, _) = picked
    va = np.asarray(a.embedding, dtype=np.float32)
    vb = np.asarray(b.embedding, dtype=np.float32)
    if va.shape != vb.shape:
        raise InputError(f"the two faces were embedded differently ({va.shape} vs {vb.shape})")
    distance = float(np.linalg.norm(va - vb))
    quality = min(a.quality.score, b.quality.score)
    assessed = decider.assess(distance, 1, quality)
    described = []
    for face, chosen, found in picked:
        q = face.quality.score
        warnings: tuple[str, ...] = ()
        if q < decider.match_quality:
            warnings = (
                f"face quality {q:.2f} is below {decider.match_quality:.2f}: strangers come "
                "this close more often than for good faces, so the pair is not called a match",
            )
        if found > 1:
            warnings += (f"{found} faces in this photo: face {chosen} was compared",)
        described.append(VerifyFace(face.bbox, round(q, 4), found, chosen, warnings))
    return Verification(
        faces=(described[0], described[1]),
        distance=round(distance, 4),
        fmr=float(f"{assessed.fmr:.4g}"),
        tmr=round(decider.calibration.tmr_at(distance), 4),
        decision=assessed.decision,
        match_bound=decider.match_bound,
        match_quality=decider.match_quality,
    )


def verify_photos(
    analyzer: Analyzer,
    photo_a: bytes,
    photo_b: bytes,
    decider: Decider,
    *,
    max_pixels: int,
    max_bytes: int,
    face_a: int | None = None,
    face_b: int | None = None,
) -> Verification:
    """Decode and analyse both photos, then :func:`compare_faces`."""
    found = []
    for data, label in ((photo_a, "A"), (photo_b, "B")):
        try:
            found.append(analyzer.analyze_image(data, max_pixels=max_pixels, max_bytes=max_bytes))
        except NoFaceError as exc:
            raise NoFaceError(f"photo {label}: {exc}") from exc
        except InputError as exc:
            raise type(exc)(f"photo {label}: {exc}") from exc
    return compare_faces(found[0].faces, found[1].faces, decider, face_a=face_a, face_b=face_b)
