"""dlib's HOG scanning one image in two threads finds the faces one scan finds: small faces
on the row split, large ones across it, with real dlib (vision/hog_split.py)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from faceindex.vision.detect import HogDetector
from faceindex.vision.hog_split import _merge

pytestmark = pytest.mark.integration


def _pasted(canvas: np.ndarray, face: np.ndarray, scale: float, centre: tuple[int, int]) -> None:
    h, w = face.shape[:2]
    small = np.asarray(Image.fromarray(face).resize((round(w * scale), round(h * scale))))
    y, x = centre[1] - small.shape[0] // 2, centre[0] - small.shape[1] // 2
    canvas[y : y + small.shape[0], x : x + small.shape[1]] = small


def test_split_scan_finds_what_one_scan_finds(astronaut: np.ndarray) -> None:
    face = astronaut[20:240, 130:330]  # Eileen Collins' head and shoulders, 200x220
    canvas = np.full((1100, 1300, 3), 128, np.uint8)
    mid = round(1100 * (1 - (2 * (5 / 6) ** 5 / 2) ** 2) / 2)  # where the bands meet
    _pasted(canvas, face, 0.45, (150, mid))  # small, centred on the split row
    _pasted(canvas, face, 0.45, (400, mid - 30))  # small, just above it
    _pasted(canvas, face, 0.6, (650, 120))  # small, in the top band alone
    _pasted(canvas, face, 2.2, (1000, mid + 20))  # large, across both bands
    _pasted(canvas, face, 0.8, (300, 950))  # medium, in the bottom band
    single = HogDetector(upsample=1, max_side=0).detect(canvas)
    split = HogDetector(upsample=1, max_side=0, threads=2).detect(canvas)
    assert len(single) == 5  # the scene holds what it should for one scan
    assert len(split) == len(single)
    for d in single:
        best = max(split, key=lambda s: d.bbox.iou(s.bbox))
        assert d.bbox.iou(best.bbox) >= 0.7, (d.bbox, best.bbox)


def test_the_same_face_found_twice_is_kept_once() -> None:
    found = [((10, 10, 90, 90), 0.5), ((12, 11, 91, 92), 0.9), ((300, 10, 380, 90), 0.1)]
    assert _merge(found) == [((12, 11, 91, 92), 0.9), ((300, 10, 380, 90), 0.1)]
