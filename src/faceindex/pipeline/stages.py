"""Pure per-item stages, shared by the local runner and any other runner."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping

import numpy as np

from faceindex.catalog.base import ImageOutcome
from faceindex.errors import FaceIndexError
from faceindex.pipeline.deadline import time_limit
from faceindex.sources.base import ImageSource, SourceItem, printable
from faceindex.types import DetectedFace
from faceindex.vision.analyze import FaceAnalyzer
from faceindex.vision.decode import decode_image
from faceindex.vision.minsize import too_small_for_faces
from faceindex.vision.phash import perceptual_hash

__all__ = ["failed_outcome", "is_refused", "process_item", "refused_outcome", "skipped_outcome"]

log = logging.getLogger(__name__)

REASON_MAX = 500  # characters of a recorded reason


def process_item(
    source: ImageSource,
    source_id: int,
    item: SourceItem,
    analyzer: FaceAnalyzer,
    *,
    max_pixels: int,
    max_bytes: int,
    quality_floor: float = 0.0,
    min_face_size: int = 0,
    detect_max_side: int = 0,
    timeout_s: float = 0.0,
    refuse: Mapping[str, str] | None = None,
) -> ImageOutcome:
    """Read, hash, decode and analyse one item. Never raises for a bad item: the outcome
    carries the reason instead, so the batch goes on. An image too small to hold a face the
    detectors would keep (:func:`too_small_for_faces`) is recorded with no faces, without
    handing it to dlib. Bytes whose sha256 is in ``refuse`` (sha256 -> why: erased content)
    are never decoded: :func:`refused_outcome`. The perceptual hash (photo groups) is taken
    from the same pixels as the faces."""
    if item.skip is not None:
        return skipped_outcome(source_id, item)
    sha = None
    rgb: np.ndarray | None = None
    try:
        with time_limit(timeout_s):
            data = source.read(item)
            sha = hashlib.sha256(data).hexdigest()
            if refuse is not None and (why := refuse.get(sha)) is not None:
                return refused_outcome(source_id, item, sha, why)
            rgb = decode_image(data, max_pixels=max_pixels, max_bytes=max_bytes)
            phash = perceptual_hash(rgb)
            small = too_small_for_faces(
                rgb.shape, min_face_size=min_face_size, detect_max_side=detect_max_side
            )
            found = [] if small is not None else analyzer.analyze(rgb)
    except FaceIndexError as exc:
        return failed_outcome(source_id, item, sha, f"{type(exc).__name__}: {exc}")
    except MemoryError:
        return failed_outcome(source_id, item, sha, f"ImageTooLarge: out of memory ({_size(rgb)})")
    except RuntimeError as exc:  # dlib reports its own failures as RuntimeError
        # dlib's text names its build paths and internals: kept for the debug log only.
        log.debug("face analysis of %s failed: %s", printable(item.locator), exc)
        return failed_outcome(source_id, item, sha, f"face analysis failed ({_size(rgb)})")
    except Exception as exc:  # a bug must cost one item, not the batch; the log has the stack
        log.debug("ingest of %s failed unexpectedly", printable(item.locator), exc_info=True)
        return failed_outcome(source_id, item, sha, f"internal error: {type(exc).__name__}: {exc}")
    return _done(source_id, item, sha, rgb, found, quality_floor, phash)


def _done(
    source_id: int,
    item: SourceItem,
    sha: str | None,
    rgb: np.ndarray,
    found: list[DetectedFace],
    quality_floor: float,
    phash: int | None = None,
) -> ImageOutcome:
    faces = tuple(f for f in found if f.quality.score >= quality_floor)
    h, w = rgb.shape[:2]
    return ImageOutcome(
        source_id,
        item.locator,
        item.size,
        item.mtime,
        sha,
        w,
        h,
        faces,
        below_floor=len(found) - len(faces),
        phash=phash,
    )


def _size(rgb: np.ndarray | None) -> str:
    return "not decoded" if rgb is None else f"{rgb.shape[1]}x{rgb.shape[0]} image"


def failed_outcome(source_id: int, item: SourceItem, sha: str | None, reason: str) -> ImageOutcome:
    why = printable(reason)[:REASON_MAX]
    return ImageOutcome(source_id, item.locator, item.size, item.mtime, sha, error=why)


def skipped_outcome(source_id: int, item: SourceItem) -> ImageOutcome:
    why = printable(item.skip or "skipped")[:REASON_MAX]
    return ImageOutcome(
        source_id, item.locator, item.size, item.mtime, None, error=why, skipped=True
    )


def refused_outcome(source_id: int, item: SourceItem, sha: str, why: str) -> ImageOutcome:
    """Read and hashed, refused before decoding (its bytes were erased): skipped, with the
    sha256 kept so the runner's commit screen re-checks it. Never recorded as an item, so a
    later ingest reads it again (after a lift, it is ingested)."""
    reason = printable(why)[:REASON_MAX]
    return ImageOutcome(
        source_id, item.locator, item.size, item.mtime, sha, error=reason, skipped=True
    )


def is_refused(outcome: ImageOutcome) -> bool:
    """True for a :func:`refused_outcome` (only those are skipped with a sha256)."""
    return outcome.skipped and outcome.sha256 is not None
