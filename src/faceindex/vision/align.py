"""5-point landmarks and aligned chips (dlib), plus the pure landmark geometry."""

from __future__ import annotations

import math

import numpy as np

from faceindex.types import BBox
from faceindex.vision.base import Aligned
from faceindex.vision.models import DLIB_LANDMARKS_5, model_path

__all__ = ["DlibAligner", "pose_from_landmarks"]

CHIP_SIZE = 150  # dlib's ResNet was trained on 150x150 chips with 0.25 padding
CHIP_PADDING = 0.25


class DlibAligner:
    def __init__(self) -> None:
        import dlib

        self._dlib = dlib
        self._predictor = dlib.shape_predictor(str(model_path(DLIB_LANDMARKS_5)))

    def align(self, rgb: np.ndarray, boxes: list[BBox]) -> list[Aligned]:
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
    eye_a = p[0:2].mean(axis=0)
    eye_b = p[2:4].mean(axis=0)
    axis = eye_b - eye_a
    dist = math.hypot(axis[0], axis[1])
    if dist < 1e-6:
        return 1.0
    mid = (eye_a + eye_b) / 2
    offset = abs(float(np.dot(p[4] - mid, axis / dist)))
    return min(1.0, offset / (dist / 2))
