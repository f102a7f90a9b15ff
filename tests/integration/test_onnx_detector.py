"""dlib's MMOD CNN detector on ONNX Runtime finds the faces dlib's CNN finds, on real photos
from ../shared/faces: >= 98% of dlib's boxes at IoU >= 0.8, at most 2% extra boxes.

The default run takes a small sample (dlib's CNN costs seconds an image on this box); the
slow one every multi-face and face-recognition-knn photo, every fourth yale photo, and the
VOC crowd photos upsampled once (att-orl's tight crops leave the CNN's 80-pixel windows
nothing to find).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from faceindex.vision.decode import decode_image
from faceindex.vision.models import DLIB_CNN, model_path
from faceindex.vision.onnx.detector import OnnxCnnDetector
from faceindex.vision.onnx.pyramid import Rect

pytestmark = [pytest.mark.integration, pytest.mark.needs_faces]

Box = tuple[int, int, int, int]


def iou(a: Box, b: Box) -> float:
    iw = min(a[2], b[2]) - max(a[0], b[0]) + 1
    ih = min(a[3], b[3]) - max(a[1], b[1]) + 1
    if iw <= 0 or ih <= 0:
        return 0.0
    inner = iw * ih
    area = lambda r: (r[2] - r[0] + 1) * (r[3] - r[1] + 1)  # noqa: E731
    return inner / (area(a) + area(b) - inner)


def agreement(theirs: list[Box], ours: list[Box]) -> tuple[int, int]:
    """(dlib boxes matched one-to-one at IoU >= 0.8, our boxes left over)."""
    left = list(ours)
    matched = 0
    for t in theirs:
        best = max(left, key=lambda o: iou(t, o), default=None)
        if best is not None and iou(t, best) >= 0.8:
            matched += 1
            left.remove(best)
    return matched, len(left)


def compare(photos: list[Path], upsample: int, max_side: int, cache: Path) -> tuple[int, int, int]:
    import dlib

    from faceindex.vision.detect import downscale

    theirs_net = dlib.cnn_face_detection_model_v1(str(model_path(DLIB_CNN)))
    ours_net = OnnxCnnDetector(upsample=upsample, cache_dir=cache, threads=2)
    total = matched = extra = 0
    for photo in photos:
        rgb = decode_image(photo.read_bytes(), max_pixels=60_000_000, max_bytes=1 << 26)
        small, _ = downscale(rgb, max_side)
        theirs = [
            (d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom())
            for d in theirs_net(small, upsample)
        ]
        ours = [_box(f.rect) for f in ours_net.find(small)]
        m, x = agreement(theirs, ours)
        total, matched, extra = total + len(theirs), matched + m, extra + x
    print(
        f"\n{len(photos)} photos, u{upsample}: dlib {total} boxes, {matched} matched, {extra} extra"
    )
    return total, matched, extra


def _box(r: Rect) -> Box:
    return (r.left, r.top, r.right, r.bottom)


def _check(total: int, matched: int, extra: int) -> None:
    assert total > 0
    assert matched >= 0.98 * total
    assert extra <= 0.02 * total


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


def test_finds_dlibs_faces_on_a_sample(shared_faces: Path, cache: Path) -> None:
    crowds = sorted((shared_faces / "multi-face").glob("*.jp*g"))[:2]
    _check(*compare(crowds, 0, 800, cache))
    portraits = sorted((shared_faces / "yale-faces").rglob("*.gif"))[::20]
    _check(*compare(portraits, 0, 1600, cache))


SETS = {  # name: (folder, glob, every n-th photo, upsample, detection copy's longest side)
    "multi-face": ("multi-face", "*.jp*g", 1, 0, 1024),
    "voc-upsampled": ("multi-face", "dlib_*.jp*g", 1, 1, 1024),  # 500x375, small faces
    "yale": ("yale-faces", "**/*.gif", 4, 0, 1600),
    "knn": ("face-recognition-knn", "*/*.jp*g", 1, 0, 640),
}


@pytest.mark.slow
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("name", list(SETS))
def test_finds_dlibs_faces_on_the_shared_sets(shared_faces: Path, cache: Path, name: str) -> None:
    folder, pattern, step, upsample, max_side = SETS[name]
    photos = sorted((shared_faces / folder).glob(pattern))[::step]
    _check(*compare(photos, upsample, max_side, cache))
