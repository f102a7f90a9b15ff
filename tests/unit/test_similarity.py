"""5-point similarity alignment against known landmark positions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from faceindex.vision.arcface import SimilarityAligner
from faceindex.vision.similarity import (
    ARCFACE_112,
    apply,
    estimate_similarity,
    scaled_template,
    warp,
)

pytestmark = pytest.mark.unit

TEMPLATE = np.asarray(ARCFACE_112)


def similarity(scale: float, degrees: float, tx: float, ty: float) -> np.ndarray:
    a = math.radians(degrees)
    r = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return np.hstack([scale * r, [[tx], [ty]]])


def test_landmarks_on_the_template_map_by_identity() -> None:
    m = estimate_similarity(TEMPLATE, TEMPLATE)
    np.testing.assert_allclose(m, [[1, 0, 0], [0, 1, 0]], atol=1e-9)


def test_a_rotated_scaled_shifted_face_maps_back_onto_the_template() -> None:
    known = similarity(2.5, 30.0, 140.0, -20.0)
    seen = apply(known, TEMPLATE)  # where the landmarks lie in the photo
    m = estimate_similarity(seen, TEMPLATE)
    np.testing.assert_allclose(apply(m, seen), TEMPLATE, atol=1e-9)
    inverse = np.linalg.inv(np.vstack([known, [0, 0, 1]]))[:2]
    np.testing.assert_allclose(m, inverse, atol=1e-9)
    assert math.isclose(math.hypot(m[0, 0], m[1, 0]), 1 / 2.5, rel_tol=1e-9)


def test_the_fit_is_a_rotation_never_a_reflection() -> None:
    mirrored = TEMPLATE * [-1.0, 1.0] + [200.0, 0.0]  # the same points seen in a mirror
    m = estimate_similarity(mirrored, TEMPLATE)
    assert np.linalg.det(m[:, :2]) > 0


def test_least_squares_with_noisy_points_beats_nearby_transforms() -> None:
    rng = np.random.default_rng(3)
    seen = apply(similarity(1.7, -12.0, 30.0, 44.0), TEMPLATE) + rng.normal(0, 1.5, (5, 2))
    m = estimate_similarity(seen, TEMPLATE)
    best = float(((apply(m, seen) - TEMPLATE) ** 2).sum())
    for _ in range(200):
        other = m + rng.normal(0, 1e-3, m.shape) * [[1, 1, 100], [1, 1, 100]]
        a, b = other[0, 0], other[1, 0]  # keep it a similarity
        other[:, :2] = [[a, -b], [b, a]]
        assert float(((apply(other, seen) - TEMPLATE) ** 2).sum()) >= best - 1e-9


def test_coincident_points_are_refused() -> None:
    with pytest.raises(ValueError, match="coincide"):
        estimate_similarity(np.ones((5, 2)), TEMPLATE)


def test_warp_by_identity_returns_the_pixels() -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (112, 112, 3), dtype=np.uint8)
    out = warp(img, np.array([[1.0, 0, 0], [0, 1.0, 0]]), 112)
    np.testing.assert_array_equal(out, img)


def test_aligning_a_rotated_scaled_face_recovers_the_chip() -> None:
    """A chip placed into a photo by a known similarity is cut back out of it."""
    rng = np.random.default_rng(1)
    coarse = rng.integers(0, 256, (8, 8, 3)).astype(np.uint8)
    chip = np.kron(coarse, np.ones((14, 14, 1))).astype(np.uint8)  # smooth: resampling-safe
    known = similarity(1.8, 25.0, 120.0, 10.0)  # chip -> photo
    photo = warp(chip, known, 400)
    landmarks = tuple(map(tuple, apply(known, TEMPLATE)))
    got = SimilarityAligner(ARCFACE_112, 112).align(photo, [_box(landmarks)], [landmarks])[0]
    inner = (slice(8, -8), slice(8, -8))  # away from the border blocks' resampled edges
    diff = np.abs(got.chip[inner].astype(int) - chip[inner].astype(int))
    assert np.median(diff) <= 1 and np.percentile(diff, 95) <= 40
    np.testing.assert_allclose(got.landmarks, landmarks)
    assert got.pose is not None and got.pose < 0.05  # the template is frontal


def test_a_box_without_landmarks_fills_the_chip() -> None:
    from faceindex.types import BBox

    img = np.zeros((300, 300, 3), dtype=np.uint8)
    img[100:164, 50:114] = 200
    got = SimilarityAligner(ARCFACE_112, 112).align(img, [BBox(50, 100, 114, 164)])[0]
    assert got.chip.shape == (112, 112, 3)
    assert got.chip[2:-2, 2:-2].min() >= 190  # the box's pixels, edge to edge
    assert got.pose is None
    xs = [x for x, _ in got.landmarks]
    assert min(xs) >= 50 and max(xs) <= 114


def test_template_scales_with_the_chip() -> None:
    np.testing.assert_allclose(scaled_template(ARCFACE_112, 224), TEMPLATE * 2)


def _box(points: tuple[tuple[float, float], ...]) -> object:
    from faceindex.types import BBox

    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return BBox(int(min(xs)) - 20, int(min(ys)) - 30, int(max(xs)) + 20, int(max(ys)) + 20)
