"""Builders for the catalog contract tests: sources, faces and outcomes from a seed."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np

from faceindex.catalog.base import Catalog, ImageOutcome, NewSource
from faceindex.types import BBox, DetectedFace, FaceQuality

PG_ENV = "FACEINDEX_TEST_PG_URL"
OpenCatalog = Callable[[], Catalog]


def new_source(name: str = "src", **kw: object) -> NewSource:
    base: dict[str, object] = dict(
        name=name,
        kind="folder",
        uri=f"/data/{name}",
        owner="records",
        legal_basis="contract",
        retention_days=30,
    )
    base.update(kw)
    return NewSource(**base)  # type: ignore[arg-type]


def face(seed: int, left: int = 10) -> DetectedFace:
    rng = np.random.default_rng(seed)
    return DetectedFace(
        bbox=BBox(left, 20, left + 50, 70),
        landmarks=((1.5, 2.5), (3.0, 4.0)),
        detector="hog",
        detector_score=float(rng.random()),
        quality=FaceQuality(size=50, sharpness=120.5, pose=0.1, score=0.875),
        embedding=rng.normal(size=128).astype(np.float32),
        thumbnail=f"thumb-{seed}".encode(),
    )


def outcome(
    source_id: int,
    locator: str,
    content: str,
    faces: tuple[DetectedFace, ...] = (),
    error: str | None = None,
) -> ImageOutcome:
    sha = None if error else hashlib.sha256(content.encode()).hexdigest()
    return ImageOutcome(
        source_id=source_id,
        locator=locator,
        size=len(content),
        mtime=1700000000.5,
        sha256=sha,
        width=640,
        height=480,
        faces=faces,
        error=error,
    )
