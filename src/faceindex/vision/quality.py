"""Per-face quality: size, sharpness and pose, combined into a score for the indexing floor."""

from __future__ import annotations

import numpy as np

from faceindex.types import BBox, FaceQuality
from faceindex.vision.align import pose_from_landmarks

__all__ = ["assess", "sharpness"]

# Below MIN_SIZE px a dlib descriptor is unreliable; at GOOD_SIZE and up size stops mattering.
MIN_SIZE, GOOD_SIZE = 20, 80
# Laplacian variance of a 150px chip: ~20 is visibly blurred, ~150 and up is sharp.
BLURRED, SHARP = 20.0, 150.0


def sharpness(chip: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian of the grey chip."""
    grey = chip.astype(np.float32).mean(axis=2) if chip.ndim == 3 else chip.astype(np.float32)
    lap = (
        -4 * grey[1:-1, 1:-1] + grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:]
    )
    return float(lap.var())


def _ramp(value: float, lo: float, hi: float) -> float:
    return float(min(1.0, max(0.0, (value - lo) / (hi - lo))))


def assess(
    bbox: BBox,
    landmarks: tuple[tuple[float, float], ...],
    chip: np.ndarray,
    *,
    pose: float | None = None,
) -> FaceQuality:
    """``pose`` where the aligner measured it; else from dlib-layout ``landmarks``."""
    size = min(bbox.width, bbox.height)
    sharp = sharpness(chip)
    pose = pose_from_landmarks(landmarks) if pose is None else pose
    # Geometric mean: one very poor factor pulls the score down; small floors keep it nonzero.
    parts = (
        0.05 + 0.95 * _ramp(size, MIN_SIZE, GOOD_SIZE),
        0.05 + 0.95 * _ramp(sharp, BLURRED, SHARP),
        0.05 + 0.95 * (1.0 - pose),
    )
    score = float(np.prod(parts) ** (1 / 3))
    return FaceQuality(
        size=size, sharpness=round(sharp, 2), pose=round(pose, 3), score=round(score, 4)
    )
