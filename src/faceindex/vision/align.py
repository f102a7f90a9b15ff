"""5-point landmarks and aligned chips (dlib), plus the pure landmark geometry."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from faceindex.types import BBox
from faceindex.vision.base import Aligned
from faceindex.vision.models import DLIB_LANDMARKS_5, DLIB_RESNET, model_path

__all__ = ["DlibAligner", "pose_from_eyes_nose", "pose_from_landmarks"]

CHIP_SIZE = DLIB_RESNET.input_size  # dlib's ResNet: 150x150 chips with 0.25 padding
CHIP_PADDING = 0.25


class DlibAligner:
    def __init__(self) -> None:
        import dlib

        self._dlib = dlib
        self._predictor = dlib.shape_predictor(str(model_path(DLIB_LANDMARKS_5)))

    def align(
        self,
        rgb: np.ndarray,
        boxes: list[BBox],
        landmarks: Sequence[tuple[tuple[float, float], ...]] | None = None,
    ) -> list[Aligned]:
        # dlib's shape predictor finds its own 5 points; a detector's would be another layout.
        dlib = self._dlib
        out = []
        for box in boxes:
            rect = dlib.rectangle(box.left, box.top, box.right - 1, box.bottom - 1)
            shape = self._predictor(rgb, rect)
            points = tuple((float(p.x), float(p.y)) for p in shape.parts())
            chip = dlib.get_face_chip(rgb, shape, size=CHIP_SIZE, padding=CHIP_PADDING)
            out.append(Aligned(points, np.ascontiguousarray(chip)))
        return out


def pose_from_landmarks(points: tuple[tuple[float, float], ...]) -> float:
    """A yaw proxy from dlib's 5 points: 0 frontal, 1 when the nose sits under one eye.

    Points 0-1 are one eye's corners, 2-3 the other's, 4 the base of the nose. The nose's
    distance from the perpendicular bisector of the eye centres, over half the eye distance.
    """
    if len(points) < 5:
        return 0.0
    p = np.asarray(points, dtype=np.float64)
    return pose_from_eyes_nose(p[0:2].mean(axis=0), p[2:4].mean(axis=0), p[4])


def pose_from_eyes_nose(eye_a: np.ndarray, eye_b: np.ndarray, nose: np.ndarray) -> float:
    """The yaw proxy from two eye centres and the nose (any landmark layout that has them)."""
    axis = eye_b - eye_a
    dist = math.hypot(axis[0], axis[1])
    if dist < 1e-6:
        return 1.0
    mid = (eye_a + eye_b) / 2
    offset = abs(float(np.dot(nose - mid, axis / dist)))
    return min(1.0, offset / (dist / 2))
