"""dlib's networks on ONNX Runtime give dlib's answers, on real chips from ../shared/faces.

The descriptor: max |diff| <= 1e-4 against dlib itself, and every probe ranks the others
in the same order (so the model tag, and every home built with dlib, stays valid).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceindex.vision.align import DlibAligner
from faceindex.vision.decode import decode_image
from faceindex.vision.detect import HogDetector
from faceindex.vision.embed import DlibEmbedder, descriptor_name
from faceindex.vision.onnx.embedder import OnnxDlibEmbedder

pytestmark = [pytest.mark.integration, pytest.mark.needs_faces]

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def chips(shared_faces: Path) -> list[np.ndarray]:
    """Aligned 150x150 chips as ingest makes them: HOG boxes, dlib's 5-point alignment."""
    photos = sorted((shared_faces / "deepface-pairs" / "images").glob("*.jp*g"))[:20]
    photos += sorted((shared_faces / "face-recognition-knn").glob("*/*.jp*g"))[:4]
    detector, aligner = HogDetector(upsample=1, max_side=800), DlibAligner()
    out: list[np.ndarray] = []
    for photo in photos:
        rgb = decode_image(photo.read_bytes(), max_pixels=60_000_000, max_bytes=1 << 26)
        boxes = [d.bbox for d in detector.detect(rgb)]
        out += [a.chip for a in aligner.align(rgb, boxes)]
    assert len(out) >= 20, f"only {len(out)} faces found in {len(photos)} photos"
    return out


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


def test_descriptors_equal_dlibs(chips: list[np.ndarray], cache: Path) -> None:
    """Raw descriptors of the chips and of their mirror images, then the mirror averages."""
    ours = OnnxDlibEmbedder(mirror=False, cache_dir=cache, threads=2)
    theirs = DlibEmbedder(mirror=False)
    for mirror in (False, True):
        assert OnnxDlibEmbedder(mirror=mirror, cache_dir=cache).name == descriptor_name(
            mirror=mirror, jitters=0
        )
    assert (ours.version, ours.dim, ours.metric) == (theirs.version, theirs.dim, theirs.metric)
    both = chips + [np.ascontiguousarray(c[:, ::-1]) for c in chips]
    a, b = ours.embed(both), theirs.embed(both)
    assert a.shape == b.shape == (len(both), theirs.dim)
    n = len(chips)
    for label, x, y in (
        ("raw", a, b),
        ("mirror-averaged", (a[:n] + a[n:]) / 2, (b[:n] + b[n:]) / 2),
    ):
        diff = float(np.abs(x - y).max())
        print(f"\n{len(x)} descriptors, {label}: max |onnx - dlib| = {diff:.2e}")
        assert diff <= TOLERANCE
        # every probe ranks the other faces in the same order under both runtimes
        dx = np.linalg.norm(x[:, None] - x[None], axis=2)
        dy = np.linalg.norm(y[:, None] - y[None], axis=2)
        np.testing.assert_array_equal(np.argsort(dx, axis=1), np.argsort(dy, axis=1))


def test_the_mirror_embedder_averages_in_one_batch(chips: list[np.ndarray], cache: Path) -> None:
    """Batched with others or alone, mirrored in the same batch: the same descriptor."""
    emb = OnnxDlibEmbedder(cache_dir=cache)
    together = emb.embed(chips[:8])
    alone = np.concatenate([emb.embed([c]) for c in chips[:8]])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    raw = OnnxDlibEmbedder(mirror=False, cache_dir=cache)
    flipped = [np.ascontiguousarray(c[:, ::-1]) for c in chips[:8]]
    np.testing.assert_allclose(together, (raw.embed(chips[:8]) + raw.embed(flipped)) / 2, atol=1e-5)
