"""Pure per-item stages, shared by the local runner and any other runner."""

from __future__ import annotations

import hashlib

from faceindex.catalog.base import ImageOutcome
from faceindex.errors import FaceIndexError
from faceindex.sources.base import ImageSource, SourceItem
from faceindex.vision.analyze import FaceAnalyzer
from faceindex.vision.decode import decode_image

__all__ = ["process_item"]


def process_item(
    source: ImageSource,
    source_id: int,
    item: SourceItem,
    analyzer: FaceAnalyzer,
    *,
    max_pixels: int,
    max_bytes: int,
    quality_floor: float = 0.0,
) -> ImageOutcome:
    """Read, hash, decode and analyse one item. Never raises for a bad image: the outcome
    carries the reason instead, so the batch goes on."""
    sha = None
    try:
        data = source.read(item)
        sha = hashlib.sha256(data).hexdigest()
        rgb = decode_image(data, max_pixels=max_pixels, max_bytes=max_bytes)
        found = analyzer.analyze(rgb)
    except FaceIndexError as exc:
        return _failed(source_id, item, sha, f"{type(exc).__name__}: {exc}")
    except (MemoryError, RuntimeError, ValueError) as exc:  # dlib raises RuntimeError
        return _failed(source_id, item, sha, f"analysis failed: {type(exc).__name__}: {exc}")
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
    )


def _failed(source_id: int, item: SourceItem, sha: str | None, reason: str) -> ImageOutcome:
    return ImageOutcome(source_id, item.locator, item.size, item.mtime, sha, error=reason)
