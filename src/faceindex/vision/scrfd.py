"""An SCRFD-style face detector on ONNX Runtime: boxes and 5 landmarks per face.

The network sees the image letterboxed into a square (scaled to fit, padded right and
bottom with black) and answers, for each of its strides 8, 16 and 32, one score, four box
distances and ten landmark offsets per anchor; anchors sit at every grid point (times the
stride), ``A`` per point. Distances and offsets are in stride units. Decoding and the
non-maximum suppression are here, in numpy.

Outputs are taken in the layout's order (scores for strides 8/16/32, then boxes, then
landmarks), by the names the pack lists or else by position, never guessed from shapes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from faceindex.errors import ModelError
from faceindex.types import BBox
from faceindex.vision.base import Detection
from faceindex.vision.onnx.runtime import open_session, threads_per_worker
from faceindex.vision.pack import Normalisation

__all__ = ["STRIDES", "ScrfdDetector", "decode", "letterbox", "nms"]

STRIDES = (8, 16, 32)
NMS_IOU = 0.4  # SCRFD's own evaluation setting


def letterbox(rgb: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    """The image scaled to fit a ``side`` square (aspect kept), padded black; and the scale."""
    h, w = rgb.shape[:2]
    scale = min(side / h, side / w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    resized = np.asarray(Image.fromarray(rgb).resize((nw, nh), Image.Resampling.BILINEAR))
    canvas = np.zeros((side, side, 3), dtype=np.uint8)
    canvas[:nh, :nw] = resized
    return canvas, scale


def _as_rows(a: np.ndarray, width: int) -> np.ndarray:
    """An output as (anchors, width): exports differ in whether they keep the batch axis."""
    arr = np.asarray(a, dtype=np.float32)
    if arr.size % width:
        raise ModelError(f"an SCRFD output of shape {arr.shape} is not a multiple of {width}")
    return arr.reshape(-1, width)


def decode(
    outputs: Sequence[np.ndarray], side: int, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(boxes (n, 4) x1 y1 x2 y2, scores (n,), landmarks (n, 5, 2)) in letterbox pixels."""
    if len(outputs) != 3 * len(STRIDES):
        raise ModelError(f"SCRFD with landmarks has 9 outputs, this one {len(outputs)}")
    boxes, scores, points = [], [], []
    n = len(STRIDES)
    for i, stride in enumerate(STRIDES):
        score = _as_rows(outputs[i], 1)[:, 0]
        dist = _as_rows(outputs[i + n], 4) * stride
        kps = _as_rows(outputs[i + 2 * n], 10) * stride
        cells = (side // stride) * (side // stride)
        if len(score) % cells or len(dist) != len(score) or len(kps) != len(score):
            raise ModelError(
                f"SCRFD stride {stride}: {len(score)} scores, {len(dist)} boxes and "
                f"{len(kps)} landmark rows do not fit a {side}x{side} input"
            )
        per_cell = len(score) // cells
        grid = side // stride
        ys, xs = np.mgrid[0:grid, 0:grid]
        centres = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32) * stride
        centres = np.repeat(centres, per_cell, axis=0)  # anchors of one cell are adjacent
        keep = score >= threshold
        c = centres[keep]
        d = dist[keep]
        boxes.append(
            np.stack(
                [c[:, 0] - d[:, 0], c[:, 1] - d[:, 1], c[:, 0] + d[:, 2], c[:, 1] + d[:, 3]], 1
            )
        )
        scores.append(score[keep])
        points.append(c[:, None, :] + kps[keep].reshape(-1, 5, 2))
    return np.concatenate(boxes), np.concatenate(scores), np.concatenate(points)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """Greedy non-maximum suppression: indices kept, most confident first."""
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = boxes.T
    area = np.maximum(0.0, x2 - x1) * np.maximum(0.0, y2 - y1)
    kept: list[int] = []
    while len(order):
        i = int(order[0])
        kept.append(i)
        rest = order[1:]
        iw = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        ih = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = iw * ih
        union = area[i] + area[rest] - inter
        overlap = np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
        order = rest[overlap <= iou]
    return kept


class ScrfdDetector:
    """SCRFD boxes and landmarks, mapped back to the image's own pixels."""

    name = "scrfd"

    def __init__(
        self,
        path: Path,
        *,
        side: int,
        score: float,
        normalisation: Normalisation,
        outputs: Sequence[str] = (),
        min_size: int = 0,
        threads: int = 0,
    ) -> None:
        self._session = open_session(
            path.read_bytes(), threads=threads or threads_per_worker(1), name=str(path)
        )
        inp = self._session.get_inputs()[0]
        self._input = inp.name
        fixed = [d for d in inp.shape[2:] if isinstance(d, int)]
        if any(d != side for d in fixed):
            raise ModelError(f"{path} takes {inp.shape[2:]} inputs; the pack says {side}")
        self._outputs = list(outputs) or [o.name for o in self._session.get_outputs()]
        if len(self._outputs) != 9:
            raise ModelError(
                f"{path}: SCRFD with landmarks has 9 outputs, not {len(self._outputs)}"
            )
        self._side = side
        self._score = score
        self._norm = normalisation
        self._min_size = min_size

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        square, scale = letterbox(rgb, self._side)
        x = square.astype(np.float32)
        if self._norm.channels == "bgr":
            x = x[..., ::-1]
        x = ((x - self._norm.mean) / self._norm.std).transpose(2, 0, 1)[None]
        outs = self._session.run(self._outputs, {self._input: np.ascontiguousarray(x)})
        boxes, scores, points = decode(outs, self._side, self._score)
        h, w = rgb.shape[:2]
        found = []
        for i in nms(boxes, scores, NMS_IOU):
            x1, y1, x2, y2 = (boxes[i] / scale).tolist()
            box = BBox(max(0, round(x1)), max(0, round(y1)), min(w, round(x2)), min(h, round(y2)))
            if min(box.width, box.height) < max(self._min_size, 1):
                continue
            marks = tuple((float(px), float(py)) for px, py in points[i] / scale)
            found.append(Detection(box, float(scores[i]), self.name, marks))
        return found
