"""dlib's MMOD loss layer at inference, in numpy: score map -> boxes in the image.

As ``loss_mmod_::to_label`` does: every output location scoring above the threshold becomes
a detector window centred where that location maps to in the input tensor (through each
con layer's stride, padding and kernel centre), carried out of the tiled pyramid into the
image, rounded to integer corners, sorted by score, then greedily kept unless it overlaps
a kept box (dlib's ``test_box_overlap``: intersection over the area of the two boxes'
bounding rectangle above the IoU threshold, or either box covered beyond the covered one).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from faceindex.vision.onnx.dlib_format import (
    Affine,
    Conv,
    DlibFormatError,
    Layer,
    LossMmod,
    Relu,
)
from faceindex.vision.onnx.pyramid import Rect, TiledPyramid

__all__ = ["Found", "OutputMapping", "decode", "output_mapping", "rect_down"]


@dataclass(frozen=True)
class OutputMapping:
    """Input-tensor coordinate of output location p: ``scale * p + offset`` on each axis."""

    scale: tuple[int, int]  # (x, y)
    offset: tuple[int, int]


@dataclass(frozen=True)
class Found:
    rect: Rect  # in the image the pyramid was built from
    score: float
    window: int


def output_mapping(layers: tuple[Layer, ...]) -> OutputMapping:
    """dlib's ``output_tensor_to_input_tensor`` for a chain of con/affine/relu layers."""
    sx, sy, ox, oy = 1, 1, 0, 0
    for layer in layers:  # outermost first, as dlib's visitor walks them
        if isinstance(layer, Conv):
            (st_y, st_x), (pad_y, pad_x) = layer.stride, layer.padding
            kr, kc = layer.filters.shape[2:]
            # p -> p * stride - padding + kernel // 2, composed with what maps to p
            sx, ox = sx * st_x, ox * st_x - pad_x + kc // 2
            sy, oy = sy * st_y, oy * st_y - pad_y + kr // 2
        elif not isinstance(layer, Affine | Relu):
            raise DlibFormatError(f"no output mapping for {type(layer).__name__}")
    return OutputMapping((sx, sy), (ox, oy))


def _lround(a: np.ndarray) -> np.ndarray:
    """std::lround: halves away from zero."""
    return (np.sign(a) * np.floor(np.abs(a) + 0.5)).astype(np.int64)


def _overlaps(a: Rect, b: Rect, iou: float, covered: float) -> bool:
    iw = min(a.right, b.right) - max(a.left, b.left) + 1
    ih = min(a.bottom, b.bottom) - max(a.top, b.top) + 1
    if iw <= 0 or ih <= 0:
        return False
    inner = iw * ih
    outer = (max(a.right, b.right) - min(a.left, b.left) + 1) * (
        max(a.bottom, b.bottom) - min(a.top, b.top) + 1
    )
    return (
        inner / outer > iou
        or inner / (a.width * a.height) > covered
        or inner / (b.width * b.height) > covered
    )


def decode(
    scores: np.ndarray,
    loss: LossMmod,
    mapping: OutputMapping,
    pyramid: TiledPyramid,
    *,
    threshold: float = 0.0,
) -> list[Found]:
    """Boxes from one sample's (windows, rows, cols) score map, best first."""
    if scores.shape[0] != len(loss.windows):
        raise DlibFormatError(f"{scores.shape[0]} score channels for {len(loss.windows)} windows")
    candidates: list[tuple[float, int, Rect]] = []
    for k, window in enumerate(loss.windows):
        rows, cols = np.nonzero(scores[k] > threshold)
        if rows.size == 0:
            continue
        px = cols * mapping.scale[0] + mapping.offset[0]
        py = rows * mapping.scale[1] + mapping.offset[1]
        hw, hh = (window.width - 1) / 2, (window.height - 1) / 2
        box = pyramid.to_image(
            (px - hw).astype(np.float64),
            (py - hh).astype(np.float64),
            (px + hw).astype(np.float64),
            (py + hh).astype(np.float64),
        )
        left, top, right, bottom = (_lround(a) for a in box)
        for i, s in enumerate(scores[k][rows, cols].tolist()):
            rect = Rect(int(left[i]), int(top[i]), int(right[i]), int(bottom[i]))
            candidates.append((s, k, rect))
    candidates.sort(key=lambda c: -c[0])
    kept: list[Found] = []
    for score, k, rect in candidates:
        if any(_overlaps(f.rect, rect, loss.nms_iou, loss.nms_covered) for f in kept):
            continue
        kept.append(Found(rect, float(score), k))
    return kept


def rect_down(rect: Rect, levels: int) -> Rect:
    """pyramid_down<2>::rect_down, ``levels`` times: back from dlib's pyramid_up copies."""
    corners = np.array([rect.left, rect.top, rect.right, rect.bottom], dtype=np.float64)
    shift = np.array([1.25, 0.75, 1.25, 0.75])
    for _ in range(levels):
        corners = corners / 2.0 - shift
    left, top, right, bottom = _lround(corners).tolist()
    return Rect(left, top, right, bottom)
