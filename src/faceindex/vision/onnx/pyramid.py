"""dlib's image pyramid for the MMOD detector, in numpy.

``input_rgb_image_pyramid<pyramid_down<6>>`` normalises the image, then lays it and each
5/6-scaled copy of it side by side in one zero-filled "tiled" tensor (dlib's
``compute_tiled_image_pyramid_details``), each level resized from the one before with
align-corners bilinear interpolation (``tt::resize_bilinear``). A detection is mapped back
through the level whose rectangle is nearest its centre (``tiled_pyramid_to_image``).

Rectangles here are dlib's: inclusive integer corners ``(left, top, right, bottom)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Rect",
    "TiledPyramid",
    "build_tiled_pyramid",
    "pyramid_up",
    "resize_bilinear",
    "tiled_layout",
]

_MIN_HEIGHT = 5  # dlib stops the pyramid below this many rows


@dataclass(frozen=True)
class Rect:
    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        return self.right - self.left + 1

    @property
    def height(self) -> int:
        return self.bottom - self.top + 1

    def contains(self, x: int, y: int) -> bool:
        return self.left <= x <= self.right and self.top <= y <= self.bottom

    def intersects(self, other: Rect) -> bool:
        return max(self.left, other.left) <= min(self.right, other.right) and max(
            self.top, other.top
        ) <= min(self.bottom, other.bottom)


def _sized(cols: int, rows: int) -> Rect:
    return Rect(0, 0, cols - 1, rows - 1)


@dataclass(frozen=True)
class TiledPyramid:
    rects: tuple[Rect, ...]  # level i's place in the tiled image; level 0 is the image
    rows: int
    cols: int
    ratio: float  # each level's size over the previous one's: (N-1)/N for pyramid_down<N>

    def to_image(
        self, left: np.ndarray, top: np.ndarray, right: np.ndarray, bottom: np.ndarray
    ) -> tuple[np.ndarray, ...]:
        """Rectangles (float arrays) in the tiled image -> in the original image."""
        cx = np.floor((left + right) / 2 + 0.5).astype(np.int64)
        cy = np.floor((top + bottom) / 2 + 0.5).astype(np.int64)
        level = np.array([self._nearest(int(x), int(y)) for x, y in zip(cx, cy, strict=True)])
        ox = np.array([self.rects[i].left for i in level], dtype=np.float64)
        oy = np.array([self.rects[i].top for i in level], dtype=np.float64)
        out = [left - ox, top - oy, right - ox, bottom - oy]
        up = 1 / self.ratio
        for n in range(int(level.max(initial=0))):
            more = level > n  # point_up once per level: p * N/(N-1) + 0.3
            for a in out:
                a[more] = a[more] * up + 0.3
        return tuple(out)

    def _nearest(self, x: int, y: int) -> int:
        best, best_dist = 0, math.inf
        for i, r in enumerate(self.rects):
            if r.contains(x, y):
                return i
            nx, ny = min(max(x, r.left), r.right), min(max(y, r.top), r.bottom)
            dist = math.hypot(nx - x, ny - y)
            if dist < best_dist:
                best, best_dist = i, dist
        return best


def tiled_layout(
    rows: int, cols: int, *, padding: int, outer_padding: int, downsample: int = 6
) -> TiledPyramid:
    """Where dlib puts each pyramid level of a rows x cols image (pyramid_down<downsample>)."""
    ratio = (downsample - 1) / downsample
    if rows * cols == 0:
        return TiledPyramid((), 0, 0, ratio)
    sizes = [_sized(cols, rows)]
    nr, nc = rows, cols
    while True:
        nr, nc = math.floor(ratio * nr), math.floor(ratio * nc)
        if nr * nc == 0 or nr < _MIN_HEIGHT:
            break
        sizes.append(_sized(nc, nr))

    total_height = sum(r.height + padding for r in sizes) - 2 * padding
    height, prev_width = 0, 0
    for r in sizes:
        # the first column goes on until the next level fits beside the previous one
        if (
            r.width <= sizes[0].width - prev_width - padding
            and (height - sizes[0].height) * 2 >= total_height - sizes[0].height
        ):
            break
        height += r.height + padding
        prev_width = r.width
    height -= padding
    width = sizes[0].width
    out_rows, out_cols = height + 2 * outer_padding, width + 2 * outer_padding

    placed: list[Rect] = []
    y, i = outer_padding, 0
    while y < height + outer_padding and i < len(sizes):
        r = sizes[i]
        placed.append(Rect(outer_padding, y, outer_padding + r.width - 1, y + r.height - 1))
        y += r.height + padding
        i += 1
    y -= padding
    while i < len(sizes):  # the second column, right-aligned, going up
        r = sizes[i]
        x1, y1 = outer_padding + width - 1, y - 1
        rect = Rect(x1 - (r.width - 1), y1 - (r.height - 1), x1, y1)
        if placed[0].intersects(rect):
            break
        placed.append(rect)
        y -= r.height + padding
        i += 1
    return TiledPyramid(tuple(placed), out_rows, out_cols, ratio)


def _axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    scale = (n_in - 1) / max(n_out - 1, 1)
    pos = np.arange(n_out, dtype=np.float64) * scale
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n_in - 1)
    return lo, hi, (pos - lo).astype(np.float32)


def resize_bilinear(planes: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """dlib's resize_image with bilinear interpolation: corners map to corners.

    ``planes`` is (k, rows_in, cols_in) float32; the result (k, rows, cols) float32.
    """
    top, bottom, fy = _axis(planes.shape[1], rows)
    left, right, fx = _axis(planes.shape[2], cols)
    fy, fx = fy[None, :, None], fx[None, None, :]
    vertical = planes[:, top] * (1 - fy) + planes[:, bottom] * fy
    return vertical[:, :, left] * (1 - fx) + vertical[:, :, right] * fx


def pyramid_up(rgb: np.ndarray) -> np.ndarray:
    """dlib's pyramid_up with pyramid_down<2>, as its CNN detector upsamples: the image
    stretched to (2 rows + 1, 2 cols + 2), values truncated to uint8 as dlib's SIMD path does.
    """
    rows, cols = rgb.shape[:2]
    # dlib's rect_up maps the image's corners (0, 0) and (cols-1, rows-1) to
    # ((p + (1.25, 0.75)) * 2), rounded; the stretched image ends at the second corner.
    out_rows = round(((rows - 1) + 0.75) * 2) + 1
    out_cols = math.floor(((cols - 1) + 1.25) * 2 + 0.5) + 1
    planes = np.moveaxis(rgb, 2, 0).astype(np.float32)
    up = resize_bilinear(planes, out_rows, out_cols)
    return np.moveaxis(np.clip(up, 0, 255).astype(np.uint8), 0, 2)


def build_tiled_pyramid(
    rgb: np.ndarray, mean: tuple[float, float, float], layout: TiledPyramid
) -> np.ndarray:
    """The (1, 3, rows, cols) float32 tensor dlib's input_rgb_image_pyramid makes."""
    out = np.zeros((3, layout.rows, layout.cols), dtype=np.float32)
    if not layout.rects:
        return out[None]
    base = (rgb.astype(np.float32) - np.asarray(mean, dtype=np.float32)) / np.float32(256)
    r0 = layout.rects[0]
    out[:, r0.top : r0.bottom + 1, r0.left : r0.right + 1] = np.moveaxis(base, 2, 0)
    for prev, rect in zip(layout.rects, layout.rects[1:], strict=False):
        src = out[:, prev.top : prev.bottom + 1, prev.left : prev.right + 1]
        out[:, rect.top : rect.bottom + 1, rect.left : rect.right + 1] = resize_bilinear(
            src, rect.height, rect.width
        )
    return out[None]
