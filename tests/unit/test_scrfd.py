"""SCRFD decoding (anchors, stride units, landmark offsets) and NMS, on hand-made outputs."""

from __future__ import annotations

import numpy as np
import pytest

from faceindex.errors import ModelError
from faceindex.vision.scrfd import STRIDES, decode, letterbox, nms

pytestmark = pytest.mark.unit

SIDE = 64
ANCHORS = 2


def empty_outputs() -> list[np.ndarray]:
    counts = [(SIDE // s) ** 2 * ANCHORS for s in STRIDES]
    return (
        [np.zeros((n, 1), np.float32) for n in counts]
        + [np.zeros((n, 4), np.float32) for n in counts]
        + [np.zeros((n, 10), np.float32) for n in counts]
    )


def test_one_anchor_decodes_to_its_box_and_landmarks() -> None:
    outs = empty_outputs()
    # Stride 16: a 4x4 grid, 2 anchors per cell; row 2 col 1 is cell 9, its second anchor 19.
    row = 9 * ANCHORS + 1
    outs[1][row, 0] = 0.9
    outs[4][row] = [0.5, 1.0, 1.5, 2.0]
    outs[7][row] = np.arange(10) / 10
    boxes, scores, points = decode(outs, SIDE, 0.5)
    cx, cy = 1 * 16, 2 * 16
    np.testing.assert_allclose(boxes, [[cx - 8, cy - 16, cx + 24, cy + 32]])
    np.testing.assert_allclose(scores, [0.9])
    expected = np.array([[cx + 16 * i / 10, cy + 16 * (i + 1) / 10] for i in range(0, 10, 2)])
    np.testing.assert_allclose(points[0], expected, atol=1e-5)


def test_scores_below_the_floor_are_dropped() -> None:
    outs = empty_outputs()
    outs[0][3, 0] = 0.49
    outs[2][0, 0] = 0.51
    boxes, scores, _ = decode(outs, SIDE, 0.5)
    assert len(boxes) == 1 and scores[0] == pytest.approx(0.51)


def test_outputs_with_a_batch_axis_decode_the_same() -> None:
    outs = empty_outputs()
    outs[2][5, 0] = 0.8
    outs[5][5] = [1, 1, 1, 1]
    flat = decode(outs, SIDE, 0.5)
    batched = decode([o[None] for o in outs], SIDE, 0.5)
    for a, b in zip(flat, batched, strict=True):
        np.testing.assert_array_equal(a, b)


def test_wrong_output_counts_are_model_errors() -> None:
    with pytest.raises(ModelError, match="9 outputs"):
        decode(empty_outputs()[:6], SIDE, 0.5)
    outs = empty_outputs()
    outs[0] = outs[0][:-1]
    with pytest.raises(ModelError, match="stride 8"):
        decode(outs, SIDE, 0.5)


def test_nms_keeps_the_best_of_overlapping_boxes() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], dtype=np.float32)
    scores = np.array([0.7, 0.9, 0.6], dtype=np.float32)
    assert nms(boxes, scores, 0.4) == [1, 2]
    assert nms(boxes, scores, 0.9) == [1, 0, 2]  # overlap 0.68 is under 0.9


def test_letterbox_keeps_the_aspect_and_pads_black() -> None:
    img = np.full((50, 100, 3), 255, dtype=np.uint8)
    square, scale = letterbox(img, 64)
    assert scale == pytest.approx(0.64)
    assert square.shape == (64, 64, 3)
    assert square[:32].min() == 255 and square[32:].max() == 0
