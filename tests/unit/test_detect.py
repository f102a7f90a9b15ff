"""Detector plumbing without models: box mapping for pre-cropped portraits, the fallback chain."""

from __future__ import annotations

import numpy as np
import pytest

from faceindex.types import BBox
from faceindex.vision.base import Detection
from faceindex.vision.detect import (
    BoundedDetector,
    FallbackDetector,
    ProbeDetector,
    WholeImageDetector,
    downscale,
    rescale,
)

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


def test_probe_budget_answers_from_its_small_pass_when_it_finds_a_face() -> None:
    first = FixedDetector("small", [BBox(10, 10, 110, 110)])  # 100 px: 46 px where it looked
    ingest = FixedDetector("ingest", [BBox(0, 0, 5, 5)])
    probe = ProbeDetector(
        FallbackDetector([ingest], max_side=800), first, max_pixels=100_000, floor=10
    )
    found = probe.detect(np.zeros((1200, 1600, 3), np.uint8))  # the 800 px copy: 0.48 MP
    assert first.seen == [(600, 800, 3)] and ingest.seen == []
    assert [(d.bbox, d.detector) for d in found] == [(BBox(20, 20, 220, 220), "small")]


def test_probe_budget_falls_back_to_the_ingest_chain_on_the_same_copy() -> None:
    first = FixedDetector("small", [])
    ingest = FixedDetector("ingest", [BBox(1, 2, 30, 40)])
    probe = ProbeDetector(
        FallbackDetector([ingest], max_side=800), first, max_pixels=100_000, floor=10
    )
    found = probe.detect(np.zeros((1200, 1600, 3), np.uint8))
    assert first.seen == [(600, 800, 3)] and ingest.seen == [(600, 800, 3)]
    assert [(d.bbox, d.detector) for d in found] == [(BBox(2, 4, 60, 80), "ingest")]


def test_probe_budget_rescans_where_its_faces_are_near_its_floor() -> None:
    # The small pass sees 0.1 of the 800x600 copy's pixels: its copy is 0.316 of the copy,
    # so a 40 px face there was 12.6 px where it looked, under twice its 10 px floor: a
    # crowd, whose smaller faces it may have missed. The ingest chain answers.
    first = FixedDetector("small", [BBox(10, 10, 200, 200), BBox(300, 300, 340, 340)])
    ingest = FixedDetector("ingest", [BBox(1, 2, 30, 40)])
    probe = ProbeDetector(
        FallbackDetector([ingest], max_side=800), first, max_pixels=48_000, floor=10
    )
    found = probe.detect(np.zeros((1200, 1600, 3), np.uint8))
    assert ingest.seen == [(600, 800, 3)] and [d.detector for d in found] == ["ingest"]
    first.boxes = [BBox(10, 10, 200, 200), BBox(300, 300, 370, 370)]  # 70 px: 22 px there
    assert [d.detector for d in probe.detect(np.zeros((1200, 1600, 3), np.uint8))] == 2 * ["small"]


def test_probe_budget_skips_its_pass_where_the_ingest_copy_is_within_it() -> None:
    first = FixedDetector("small", [BBox(10, 10, 50, 50)])
    ingest = FixedDetector("ingest", [])
    probe = ProbeDetector(
        FallbackDetector([ingest], max_side=800), first, max_pixels=480_000, floor=10
    )
    assert probe.detect(np.zeros((1200, 1600, 3), np.uint8)) == []  # copy = 480 000 px
    assert first.seen == [] and ingest.seen == [(600, 800, 3)]
    with pytest.raises(ValueError, match="positive"):
        ProbeDetector(FallbackDetector([ingest]), first, max_pixels=0, floor=10)


def test_downscale_factor() -> None:
    small, back = downscale(np.zeros((2000, 1000, 3), np.uint8), 1600)
    assert small.shape[:2] == (1600, 800) and back == pytest.approx(1.25)
    same, one = downscale(np.zeros((100, 50, 3), np.uint8), 1600)
    assert same.shape[:2] == (100, 50) and one == 1.0


def test_bounded_detector_never_shows_more_than_its_budget() -> None:
    # The 7700x7700 probe of issue 9: the inner detector sees at most max_pixels, whatever
    # the image, and boxes found on the copy come back in the image's coordinates.
    inner = FixedDetector("cnn", [BBox(100, 200, 150, 250)])
    bounded = BoundedDetector(inner, max_pixels=1_000_000, max_scale=2.0)
    found = bounded.detect(np.zeros((7700, 7700, 3), np.uint8))
    (h, w, _) = inner.seen[0]
    assert h * w <= 1_000_000 and (h, w) == (1000, 1000)
    assert [d.bbox for d in found] == [BBox(770, 1540, 1155, 1925)]
    assert found[0].detector == "cnn@1mp"


def test_bounded_detector_enlarges_small_images_up_to_its_scale() -> None:
    inner = FixedDetector("cnn", [BBox(20, 20, 60, 60), BBox(0, 0, 10, 10)])
    found = BoundedDetector(inner, max_pixels=1_000_000, max_scale=2.0, min_size=20).detect(
        np.zeros((300, 400, 3), np.uint8)
    )
    assert inner.seen == [(600, 800, 3)]  # doubled: 0.48 MP, inside the budget
    assert [d.bbox for d in found] == [BBox(10, 10, 30, 30)]  # the 5 px box is dropped


def test_rescale_keeps_every_limit() -> None:
    img = np.zeros((1200, 1600, 3), np.uint8)
    copy, back = rescale(img, max_side=1000, max_pixels=2_000_000, max_scale=2.0)
    assert copy.shape[:2] == (750, 1000) and back == pytest.approx(1.6)
    copy, back = rescale(img, max_pixels=480_000)
    assert copy.shape[:2] == (600, 800) and back == pytest.approx(2.0)
    same, one = rescale(img)
    assert same is img and one == 1.0
