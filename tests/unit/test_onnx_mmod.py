"""The MMOD detector's numpy halves: dlib's tiled pyramid layout, pyramid_up, the output to
input mapping, and the decoding with dlib's non-max suppression."""

from __future__ import annotations

import numpy as np
import pytest

from faceindex.vision.onnx.dlib_format import DetectorWindow, LossMmod, read_network
from faceindex.vision.onnx.mmod import OutputMapping, _overlaps, decode, output_mapping, rect_down
from faceindex.vision.onnx.networks import MMOD_FACE_DETECTOR
from faceindex.vision.onnx.pyramid import (
    Rect,
    build_tiled_pyramid,
    pyramid_up,
    resize_bilinear,
    tiled_layout,
)

pytestmark = pytest.mark.unit

LOSS = LossMmod((DetectorWindow(80, 80, ""),), 1, 1, 0.5, 0.3383, 1.0, 0.5, 1.0, True, False)


def test_tiled_layout_follows_dlib() -> None:
    layout = tiled_layout(480, 640, padding=10, outer_padding=11)
    r = layout.rects
    assert r[0] == Rect(11, 11, 11 + 640 - 1, 11 + 480 - 1)
    # each level floor(5/6) of the one before, down to 5 rows
    sizes = [(x.height, x.width) for x in r]
    for (h0, w0), (h1, w1) in zip(sizes, sizes[1:], strict=False):
        assert (h1, w1) == (int(5 / 6 * h0), int(5 / 6 * w0))
    assert sizes[-1][0] >= 5 and int(5 / 6 * sizes[-1][0]) < 5 or len(sizes) < 30
    # the first column stacks levels 10 rows apart; later ones go up the right-hand side
    assert r[1].left == 11 and r[1].top == r[0].bottom + 1 + 10
    second = [x for x in r[1:] if x.right == 11 + 640 - 1 and x.left > 11]
    assert second, "a 640x480 pyramid uses a second column"
    for a in range(len(r)):
        assert r[a].left >= 0 and r[a].right < layout.cols and r[a].bottom < layout.rows
        for b in range(a + 1, len(r)):
            assert not r[a].intersects(r[b])
    assert layout.cols == 640 + 22


def test_tiled_pyramid_levels_are_resized_copies() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, size=(60, 80, 3), dtype=np.uint8)
    layout = tiled_layout(60, 80, padding=10, outer_padding=11)
    t = build_tiled_pyramid(rgb, (122.782, 117.001, 104.298), layout)[0]
    r0, r1 = layout.rects[0], layout.rects[1]
    level0 = t[:, r0.top : r0.bottom + 1, r0.left : r0.right + 1]
    np.testing.assert_allclose(level0[0], (rgb[:, :, 0] - 122.782) / 256, atol=1e-6)
    level1 = t[:, r1.top : r1.bottom + 1, r1.left : r1.right + 1]
    np.testing.assert_allclose(level1, resize_bilinear(level0, r1.height, r1.width), atol=1e-6)
    outside = np.ones(t.shape[1:], dtype=bool)
    for r in layout.rects:
        outside[r.top : r.bottom + 1, r.left : r.right + 1] = False
    assert not t[:, outside].any()  # zero (the mean colour) between the levels


def test_resize_maps_corners_to_corners() -> None:
    src = np.arange(12, dtype=np.float32).reshape(1, 3, 4)
    out = resize_bilinear(src, 5, 7)
    assert out[0, 0, 0] == 0 and out[0, -1, -1] == 11
    np.testing.assert_allclose(out[0, 2, 3], 5.5)  # the centre of the source


def test_pyramid_up_has_dlibs_odd_size_and_maps_back() -> None:
    rgb = np.full((7, 10, 3), 200, dtype=np.uint8)
    up = pyramid_up(rgb)
    assert up.shape == (15, 22, 3)  # rect_up of (0,0)-(9,6): ((p + (1.25, 0.75)) * 2)
    assert (up == 200).all()
    assert rect_down(Rect(100, 60, 179, 139), 1) == Rect(49, 29, 88, 69)


def test_detections_map_out_of_the_pyramid() -> None:
    layout = tiled_layout(480, 640, padding=10, outer_padding=11)
    r2 = layout.rects[2]
    left, top, right, bottom = layout.to_image(
        np.array([r2.left + 10.0]),
        np.array([r2.top + 20.0]),
        np.array([r2.left + 89.0]),
        np.array([r2.top + 99.0]),
    )
    # two levels up: p -> p * 6/5 + 0.3, twice
    up2 = lambda p: (p * 1.2 + 0.3) * 1.2 + 0.3  # noqa: E731
    assert (left[0], top[0], right[0], bottom[0]) == pytest.approx(
        (up2(10.0), up2(20.0), up2(89.0), up2(99.0))
    )


def test_the_real_networks_output_maps_by_eight() -> None:
    from faceindex.vision.models import DLIB_CNN, model_path

    net = read_network(model_path(DLIB_CNN).read_bytes(), MMOD_FACE_DETECTOR)
    m = output_mapping(net.layers)
    # three 5x5 stride-2 unpadded convs: p -> 2p + 2, three times; the rest keep p
    assert m.scale == (8, 8) and m.offset == (14, 14)


def test_nms_keeps_the_best_of_overlapping_windows() -> None:
    layout = tiled_layout(300, 300, padding=10, outer_padding=11)
    by8 = OutputMapping((8, 8), (14, 14))
    scores = np.full((1, 30, 30), -1.0, dtype=np.float32)
    scores[0, 10, 5] = 0.5  # two windows 8 px apart: heavy overlap
    scores[0, 10, 6] = 0.9
    scores[0, 10, 20] = 0.2  # 112 px away: kept
    found = decode(scores, LOSS, by8, layout, threshold=0.0)
    assert [round(f.score, 1) for f in found] == [0.9, 0.2]
    best = found[0].rect  # centred on 8 * (6, 10) + 14 in the full-size level
    assert (best.width, best.left, best.top) == (80, round(62 - 39.5 - 11), round(94 - 39.5 - 11))
    raised = decode(scores, LOSS, by8, layout, threshold=0.3)
    assert [round(f.score, 1) for f in raised] == [0.9]


def test_overlap_is_dlibs_bounding_rectangle_ratio() -> None:
    a, b = Rect(0, 0, 9, 9), Rect(5, 5, 14, 14)
    # inner 25, bounding rectangle 225: 0.111 (a true IoU would be 25/175 = 0.143)
    assert not _overlaps(a, b, 0.12, 1.0)
    assert _overlaps(a, b, 0.11, 1.0)
    assert _overlaps(Rect(0, 0, 9, 9), Rect(2, 2, 5, 5), 0.9, 0.99)  # covered
    assert not _overlaps(Rect(0, 0, 9, 9), Rect(10, 0, 19, 9), 0.0, 0.0)
