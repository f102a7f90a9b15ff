"""Real dlib models on scikit-image's astronaut(): the same face survives everyday changes
to the photo, and a different person stays apart."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from faceindex.vision.analyze import FaceAnalyzer
from faceindex.vision.decode import decode_image
from faceindex.vision.pack import DLIB_PACK
from tests.conftest import to_jpeg

pytestmark = pytest.mark.integration

THRESHOLD = DLIB_PACK.thresholds.match  # the default model's match distance
LIMITS = {"max_pixels": 60_000_000, "max_bytes": 64 * 1024 * 1024}


def _pil(rgb: np.ndarray) -> Image.Image:
    return Image.fromarray(rgb)


def _scale(f: float) -> Callable[[np.ndarray], np.ndarray]:
    def go(rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        return np.asarray(_pil(rgb).resize((int(w * f), int(h * f)), Image.Resampling.LANCZOS))

    return go


def _rotate(deg: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda rgb: np.asarray(
        _pil(rgb).rotate(deg, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=(0, 0, 0))
    )


def _brightness(f: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda rgb: np.asarray(ImageEnhance.Brightness(_pil(rgb)).enhance(f))


def _crop(rgb: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(rgb[30:300, 100:360])


def _jpeg(q: int) -> Callable[[np.ndarray], np.ndarray]:
    return lambda rgb: decode_image(to_jpeg(rgb, quality=q), **LIMITS)


def _exif_rotated(rgb: np.ndarray) -> np.ndarray:
    # Pixels stored rotated, with the EXIF tag that tells viewers to turn them upright.
    stored = _pil(rgb).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    stored.save(buf, format="JPEG", quality=95, exif=exif)
    return decode_image(buf.getvalue(), **LIMITS)


TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "scale-0.6": _scale(0.6),
    "scale-1.8": _scale(1.8),
    "crop": _crop,
    "rotate+12": _rotate(12),
    "rotate-15": _rotate(-15),
    "darker": _brightness(0.55),
    "brighter": _brightness(1.5),
    "jpeg-q25": _jpeg(25),
    "exif-rotated": _exif_rotated,
}


def _embeddings(analyzer: FaceAnalyzer, rgb: np.ndarray) -> list[np.ndarray]:
    faces = analyzer.analyze(np.ascontiguousarray(rgb))
    assert faces, "no face found"
    return [f.embedding for f in faces]


def _nearest(analyzer: FaceAnalyzer, rgb: np.ndarray, reference: np.ndarray) -> float:
    """Distance from the reference to the closest face found in the image."""
    return min(float(np.linalg.norm(v - reference)) for v in _embeddings(analyzer, rgb))


@pytest.fixture(scope="module")
def reference(analyzer: FaceAnalyzer, astronaut: np.ndarray) -> np.ndarray:
    # HOG also fires weakly on the mission patch; the astronaut is the most confident face.
    faces = analyzer.analyze(astronaut)
    return max(faces, key=lambda f: f.detector_score).embedding


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_transformed_astronaut_matches_itself(
    name: str, analyzer: FaceAnalyzer, astronaut: np.ndarray, reference: np.ndarray
) -> None:
    distance = _nearest(analyzer, TRANSFORMS[name](astronaut), reference)
    assert distance < THRESHOLD, f"{name}: distance {distance:.3f}"


def test_descriptor_is_raw_dlib_scale(reference: np.ndarray) -> None:
    # dlib's descriptors are not unit length (1.28-1.67 measured); we must not normalise them.
    assert reference.shape == (128,)
    assert 1.1 < float(np.linalg.norm(reference)) < 1.8


def test_a_different_person_does_not_match(analyzer: FaceAnalyzer, reference: np.ndarray) -> None:
    from skimage import data

    camera = np.ascontiguousarray(np.stack([data.camera()] * 3, axis=2))
    distance = _nearest(analyzer, camera, reference)
    assert distance > THRESHOLD, f"the cameraman matched the astronaut at {distance:.3f}"


@pytest.mark.needs_faces
def test_real_people_do_not_match_the_astronaut(
    analyzer: FaceAnalyzer, reference: np.ndarray, shared_faces: object
) -> None:
    from pathlib import Path

    root = Path(str(shared_faces)) / "face-recognition-knn"
    photos = sorted(root.glob("*/*.jp*g"))
    assert len(photos) >= 10
    for photo in photos:
        rgb = decode_image(photo.read_bytes(), **LIMITS)
        distance = _nearest(analyzer, rgb, reference)
        assert distance > THRESHOLD, f"{photo.name} matched the astronaut at {distance:.3f}"
