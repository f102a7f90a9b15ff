"""A large JPEG probe decodes at a reduced size (libjpeg's DCT scaling) with real dlib
(issue 9, item 5): the same faces as from the full decode, reported in the image's own
pixels and size, upright where EXIF turns it; chips from the reduced pixels only where
every face there is at least the chip's side; other formats decode as before."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceindex.types import BBox, DetectedFace
from faceindex.vision.analyze import FaceAnalyzer, ImageFaces
from faceindex.vision.base import Aligned, Aligner
from faceindex.vision.decode import decode_image, decode_reduced

pytestmark = pytest.mark.integration

LIMITS = {"max_pixels": 60_000_000, "max_bytes": 1 << 28}
# How far the reduced decode may move a descriptor: well inside the match distance and
# under what re-saving a photo as JPEG q90 does at its 95th percentile (0.143,
# docs/BENCHMARKS.md "Probe budget").
MAX_SHIFT = 0.1


def _encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _strip(astronaut: np.ndarray, analyzer: FaceAnalyzer, enlarge: float) -> np.ndarray:
    """The astronaut's head (not the mission patch HOG also fires on) enlarged, on a grey
    strip a little over twice the detection side long: a JPEG of it decodes at 1/2. Her
    face is ~100 px of the head: ``enlarge`` 4 makes it ~400 px (~200 px decoded, over
    the chip's side), 1.6 ~160 px (~80 px decoded, under it)."""
    head = astronaut[0:280, 60:380]
    w, h = round(head.shape[1] * enlarge), round(head.shape[0] * enlarge)
    big = np.asarray(Image.fromarray(head).resize((w, h), Image.Resampling.BICUBIC))
    canvas = np.full((h, 2 * analyzer.detect_max_side + 200, 3), 128, np.uint8)
    canvas[:, 100 : 100 + w] = big
    return canvas


class SpyAligner:
    """The real aligner, recording the size of the pixels each call cuts chips from."""

    def __init__(self, inner: Aligner) -> None:
        self.inner = inner
        self.sizes: list[tuple[int, int]] = []

    def align(
        self,
        rgb: np.ndarray,
        boxes: list[BBox],
        landmarks: Sequence[tuple[tuple[float, float], ...]] | None = None,
    ) -> list[Aligned]:
        self.sizes.append((rgb.shape[1], rgb.shape[0]))
        return self.inner.align(rgb, boxes, landmarks)


def _spied(analyzer: FaceAnalyzer) -> tuple[FaceAnalyzer, SpyAligner]:
    spy = SpyAligner(analyzer.aligner)
    twin = FaceAnalyzer(
        analyzer.detector,
        spy,
        analyzer.embedder,
        min_face_size=analyzer.min_face_size,
        detect_max_side=analyzer.detect_max_side,
        probe_detector=analyzer.probe_detector,
        chip_size=analyzer.chip_size,
    )
    return twin, spy


def _full_decode_probe(analyzer: FaceAnalyzer, data: bytes) -> ImageFaces:
    """The probe path before the reduced decode: every pixel decoded."""
    rgb = decode_image(data, **LIMITS)
    faces = analyzer.analyze(rgb, thumbnails=False, detector=analyzer.probe_detector)
    return ImageFaces(rgb.shape[1], rgb.shape[0], tuple(faces))


def _assert_same_faces(got: ImageFaces, want: ImageFaces) -> None:
    assert (got.width, got.height) == (want.width, want.height)
    assert len(want.faces) >= 1 and len(got.faces) == len(want.faces)
    for face in want.faces:
        twin: DetectedFace = max(got.faces, key=lambda f: f.bbox.iou(face.bbox))
        assert twin.bbox.iou(face.bbox) > 0.9, (twin.bbox, face.bbox)
        # The shape predictor ran on half the pixels: its points may move a pixel or two
        # of the reduced image, which is twice that in the image's own pixels.
        worst = max(abs(a - b) for p, q in zip(twin.landmarks, face.landmarks, strict=True)
                    for a, b in zip(p, q, strict=True))  # fmt: skip
        assert worst < max(6.0, 0.03 * face.bbox.width), (twin.landmarks, face.landmarks)
        assert abs(twin.quality.size - face.quality.size) <= 0.05 * face.quality.size
        shift = float(np.linalg.norm(twin.embedding - face.embedding))
        assert shift < MAX_SHIFT, shift


@pytest.fixture(
    scope="module",
    params=["generated", pytest.param("shared-photo", marks=pytest.mark.needs_faces)],
)
def big_jpeg(
    request: pytest.FixtureRequest, analyzer: FaceAnalyzer, astronaut: np.ndarray
) -> bytes:
    """A JPEG probe at least twice the detection side long whose faces are larger than the
    chip at half size: the astronaut enlarged (made here), or a real 12.6 MP camera photo
    from ../shared/faces (one face, 1145 px)."""
    if request.param == "shared-photo":
        photo: Path = request.getfixturevalue("shared_faces") / "deepface-pairs/images/img49.jpg"
        return photo.read_bytes()
    return _encode(Image.fromarray(_strip(astronaut, analyzer, 4.0)), "JPEG", quality=92)


@pytest.fixture(scope="module")
def full_decode(analyzer: FaceAnalyzer, big_jpeg: bytes) -> ImageFaces:
    return _full_decode_probe(analyzer, big_jpeg)


def test_a_large_jpeg_probe_gives_the_full_decode_s_faces_in_its_own_pixels(
    analyzer: FaceAnalyzer, big_jpeg: bytes, full_decode: ImageFaces
) -> None:
    reduced = decode_reduced(big_jpeg, **LIMITS, min_side=analyzer.detect_max_side)
    assert max(reduced.rgb.shape[:2]) * 2 <= max(reduced.width, reduced.height)  # reduced
    assert max(reduced.rgb.shape[:2]) >= analyzer.detect_max_side  # the copy still fits
    spied, spy = _spied(analyzer)
    _assert_same_faces(spied.analyze_image(big_jpeg, **LIMITS), full_decode)
    assert spy.sizes == [(reduced.rgb.shape[1], reduced.rgb.shape[0])]  # chips: reduced


def test_a_large_jpeg_probe_s_boxes_are_in_its_own_pixels(
    analyzer: FaceAnalyzer, big_jpeg: bytes, full_decode: ImageFaces
) -> None:
    got = analyzer.detect_image(big_jpeg, **LIMITS)
    assert (got.width, got.height) == (full_decode.width, full_decode.height)
    want = [f.bbox for f in full_decode.faces]  # the probe detector's boxes on every pixel
    assert len(want) >= 1 and len(got.detections) == len(want)
    for box in want:
        assert max(g.bbox.iou(box) for g in got.detections) > 0.9


def test_a_face_under_the_chip_s_side_is_cut_from_the_full_decode(
    analyzer: FaceAnalyzer, astronaut: np.ndarray
) -> None:
    # At half size its ~80 px face would be enlarged into the 150 px chip: the descriptor
    # moves (0.086 here; 0.19 at p50 for 50-100 px faces, docs/BENCHMARKS.md).
    strip = _strip(astronaut, analyzer, 1.6)
    data = _encode(Image.fromarray(strip), "JPEG", quality=92)
    spied, spy = _spied(analyzer)
    got = spied.analyze_image(data, **LIMITS)
    assert spy.sizes == [(strip.shape[1], strip.shape[0])]  # every pixel, for the chips
    _assert_same_faces(got, _full_decode_probe(analyzer, data))


def test_an_exif_turned_large_jpeg_probe_is_upright_in_its_own_pixels(
    analyzer: FaceAnalyzer, astronaut: np.ndarray
) -> None:
    upright = _strip(astronaut, analyzer, 4.0)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned a quarter: rotate 90 degrees clockwise to display
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)
    turned = _encode(stored, "JPEG", quality=92, exif=exif)
    plain = _encode(Image.fromarray(upright), "JPEG", quality=92)
    spied, spy = _spied(analyzer)
    got = spied.analyze_image(turned, **LIMITS)
    assert (got.width, got.height) == (upright.shape[1], upright.shape[0])
    assert spy.sizes == [(upright.shape[1] // 2, upright.shape[0] // 2)]  # reduced, upright
    _assert_same_faces(got, _full_decode_probe(analyzer, plain))


def test_a_large_png_probe_is_analysed_as_before(
    analyzer: FaceAnalyzer, astronaut: np.ndarray
) -> None:
    data = _encode(Image.fromarray(_strip(astronaut, analyzer, 4.0)), "PNG", compress_level=1)
    got = analyzer.analyze_image(data, **LIMITS)
    want = _full_decode_probe(analyzer, data)
    assert (got.width, got.height) == (want.width, want.height)
    assert [f.bbox for f in got.faces] == [f.bbox for f in want.faces] != []
    for a, b in zip(got.faces, want.faces, strict=True):
        assert a.landmarks == b.landmarks
        np.testing.assert_array_equal(a.embedding, b.embedding)
