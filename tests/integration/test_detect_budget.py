"""The detection fallback on a pixel budget, with real dlib (issue 9, item 5): the CNN pass
sees a bounded copy whatever the image, and finds faces on it in the image's coordinates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceindex.config import Settings
from faceindex.types import BBox
from faceindex.vision.analyze import FaceAnalyzer
from faceindex.vision.base import Detection
from faceindex.vision.decode import decode_image
from faceindex.vision.detect import (
    BoundedDetector,
    CnnDetector,
    FallbackDetector,
    HogDetector,
    ProbeDetector,
    bounded_fallback,
)

pytestmark = pytest.mark.integration


class SpyCnn:
    """Stands in for the CNN (dlib's or another): records the shape of what it is shown."""

    name = "spy"

    def __init__(self) -> None:
        self.seen: list[tuple[int, ...]] = []

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        self.seen.append(rgb.shape)
        return []


@pytest.mark.parametrize("shape", [(1200, 1600, 3), (200, 150, 3)])
def test_the_fallback_cnn_sees_at_most_its_budget(shape: tuple[int, int, int]) -> None:
    # The default chain before issue 9 upsampled the 1600 px copy for the CNN: 7.7 MP for a
    # 1600x1200 photo (35 s, 7.6 GB). Larger images: tests/unit/test_detect.py.
    spy = SpyCnn()
    chain = bounded_fallback(spy, upsample=1, max_side=1600, min_size=20, cnn_max_pixels=500_000)
    assert chain.detect(np.full(shape, 128, np.uint8)) == []  # a blank image: no face
    (h, w, _) = spy.seen[0]
    assert h * w <= 500_000
    assert (h, w) == (400, 300) if shape[0] == 200 else h * w > 450_000  # small: doubled


def test_the_default_analyzer_bounds_its_cnn_pass() -> None:
    from faceindex.engine import build_analyzer

    settings = Settings.load("/nonexistent-home-for-budget", detect_cnn_max_pixels=300_000)
    detector = build_analyzer(settings).detector
    assert isinstance(detector, FallbackDetector)
    last = detector.chain[-1]
    assert isinstance(last, BoundedDetector) and last.max_pixels == 300_000
    assert last.inner.name == "cnn-u0"  # the policy scales its input (dlib or ORT CNN)
    cnn = build_analyzer(settings.model_copy(update={"detector": "cnn"})).detector
    assert isinstance(cnn, BoundedDetector) and cnn.max_pixels == 300_000


def test_the_bounded_cnn_finds_the_face_where_hog_does(astronaut: np.ndarray) -> None:
    hog = HogDetector(upsample=1).detect(astronaut)
    cnn = BoundedDetector(CnnDetector(upsample=0, max_side=0), max_pixels=300_000, max_scale=2.0)
    found = cnn.detect(astronaut)
    assert len(hog) == 1 and len(found) == 1
    box: BBox = found[0].bbox
    assert box.iou(hog[0].bbox) > 0.4, (box, hog[0].bbox)  # the two models frame faces apart


def test_probes_start_on_their_own_budget_and_ingest_does_not(analyzer: FaceAnalyzer) -> None:
    probe = analyzer.probe_detector
    assert isinstance(probe, ProbeDetector)
    assert probe.max_pixels == Settings.load("/nonexistent-home-for-budget").probe_detect_max_pixels
    assert probe.chain is analyzer.detector  # then the ingest chain, unchanged


def test_a_large_probe_finds_its_face_on_the_small_copy(
    analyzer: FaceAnalyzer, shared_faces: Path
) -> None:
    # A 4 MP single-face photo: the ingest chain scans its 1600x1200 copy (1.9 MP at
    # upsample 1); the probe scans at most its budget, and finds the same face.
    data = (shared_faces / "deepface-pairs" / "images" / "img33.jpg").read_bytes()
    rgb = decode_image(data, max_pixels=60_000_000, max_bytes=1 << 28)
    (ingested,) = analyzer.detector.detect(rgb)
    (probed,) = analyzer.probe_detector.detect(rgb)
    assert ingested.detector == "hog-u1" and probed.detector.startswith("hog-u1@")
    assert ingested.bbox.iou(probed.bbox) > 0.7
    (face,) = analyzer.analyze_image(data, max_pixels=60_000_000, max_bytes=1 << 28).faces
    assert face.detector == probed.detector  # the probe path is the budgeted one
