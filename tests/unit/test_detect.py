"""Detector plumbing without models: box mapping for pre-cropped portraits, the fallback chain."""

from __future__ import annotations

import numpy as np
import pytest

from faceindex.types import BBox
from faceindex.vision.base import Detection
from faceindex.vision.detect import FallbackDetector, WholeImageDetector, downscale

pytestmark = pytest.mark.unit


class FixedDetector:
    """A fake that records what it was shown and returns preset boxes."""

    def __init__(self, name: str, boxes: list[BBox]) -> None:
        self.name = name
        self.boxes = boxes
        self.seen: list[tuple[int, ...]] = []

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        self.seen.append(rgb.shape)
        return [Detection(b, 0.5 + i, self.name) for i, b in enumerate(self.boxes)]


def test_portrait_mode_pads_and_maps_back() -> None:
    img = np.zeros((112, 92, 3), dtype=np.uint8)
    pad = int(0.25 * 112)
    refine = FixedDetector(
        "hog", [BBox(5, 5, 20, 20), BBox(pad + 10, pad + 20, pad + 80, pad + 100)]
    )
    found = WholeImageDetector(refine).detect(img)
    assert refine.seen == [(112 + 2 * pad, 92 + 2 * pad, 3)]
    assert [d.bbox for d in found] == [BBox(10, 20, 80, 100)]  # the most confident, shifted


def test_portrait_mode_falls_back_to_the_whole_image() -> None:
    img = np.zeros((112, 92, 3), dtype=np.uint8)
    assert [d.bbox for d in WholeImageDetector(FixedDetector("hog", [])).detect(img)] == [
        BBox(0, 0, 92, 112)
    ]
    assert [d.bbox for d in WholeImageDetector().detect(img)] == [BBox(0, 0, 92, 112)]


def test_fallback_chain_stops_at_the_first_answer() -> None:
    first, second, third = (
        FixedDetector("a", []),
        FixedDetector("b", [BBox(1, 1, 9, 9)]),
        FixedDetector("c", [BBox(2, 2, 8, 8)]),
    )
    found = FallbackDetector([first, second, third]).detect(np.zeros((10, 10, 3), np.uint8))
    assert [d.detector for d in found] == ["b"] and third.seen == []


def test_downscale_factor() -> None:
    small, back = downscale(np.zeros((2000, 1000, 3), np.uint8), 1600)
    assert small.shape[:2] == (1600, 800) and back == pytest.approx(1.25)
    same, one = downscale(np.zeros((100, 50, 3), np.uint8), 1600)
    assert same.shape[:2] == (100, 50) and one == 1.0
