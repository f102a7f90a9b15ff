"""dlib's HOG detector on two cores: one image split by pyramid level and by rows.

dlib scans an image pyramid (each level 5/6 of the last) and releases the GIL while it
does, so two threads can scan at once. The split keeps each face's scan whole:

* The coarse levels (a scale of ``2**upsample * (5/6)**FINE_LEVELS`` and below: faces whose
  box is at least ~100 px of the copy at upsample 1) are scanned by one run over the whole
  image, shrunk to that scale: those levels are the same scales the single run visits.
* The fine levels are scanned in two row bands that overlap by half the largest fine box
  plus a margin of HOG context; a band keeps only fine boxes whose centre lies on its own
  side of the split, so a face is found by exactly one band with its whole context. The
  band runs also visit the coarse levels of their rows; those boxes are dropped (the coarse
  run owns them).

Boxes found twice (a face on the fine/coarse boundary) are merged by overlap, the higher
score kept. The answer is not bit-identical to one run (the bands' pyramids sample from
another origin); docs/BENCHMARKS.md ("Probe latency") has the agreement measured on the
in-the-wild photos. Used where cores are idle for one image: the server's probe analysis.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from PIL import Image

__all__ = ["FINE_LEVELS", "MIN_PIXELS", "split_run"]

FINE_LEVELS = 5  # pyramid levels the bands own; the rest (~16% of the work) the coarse run
MIN_PIXELS = 400_000  # below this a single run is as fast as the split's overhead allows
WINDOW = 80  # dlib's frontal face detector scans an 80x80 window
CONTEXT = 40  # px of the copy kept beyond a fine box's half height: >4 HOG cells at level 4
DOWN = 5 / 6  # dlib's pyramid_down<6>

Found = list[tuple[tuple[int, int, int, int], float]]  # (left, top, right, bottom), score
Run = Callable[[np.ndarray, int], Found]

_POOL: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(2, thread_name_prefix="hog")
    return _POOL


def dlib_run(detector: Any) -> Run:
    """``run(grey, upsample)`` for a dlib frontal face detector: boxes and scores."""

    def run(grey: np.ndarray, upsample: int) -> Found:
        rects, scores, _ = detector.run(grey, upsample, 0.0)
        return [
            ((r.left(), r.top(), r.right(), r.bottom()), float(s))
            for r, s in zip(rects, scores, strict=True)
        ]

    return run


def split_run(runs: tuple[Run, Run], grey: np.ndarray, upsample: int) -> Found:
    """What one of ``runs`` finds in ``grey``, scanned by both at once in two threads (see
    the module text). Two runs, two detectors: a dlib detector keeps the image it scans in
    itself, so one detector object must never scan in two threads at once."""
    run, other = runs
    h, w = grey.shape[:2]
    coarse_scale = 2.0**upsample * DOWN**FINE_LEVELS
    fine_max = WINDOW / (2.0**upsample * DOWN ** (FINE_LEVELS - 0.5))  # between the levels
    overlap = math.ceil(fine_max / 2 + CONTEXT)
    if h * w < MIN_PIXELS or h < 4 * overlap:
        return run(grey, upsample)
    # The coarse run costs coarse_scale**2 / 4**upsample of the whole: the first band is made
    # that much shorter so both threads finish together.
    share = (coarse_scale / 2.0**upsample) ** 2
    mid = round(h * (1 - share) / 2)
    top = (0, min(h, mid + overlap))
    bottom = (max(0, mid - overlap), h)

    def band(scan: Run, rows: tuple[int, int], own: Callable[[float], bool]) -> Found:
        found = scan(np.ascontiguousarray(grey[rows[0] : rows[1]]), upsample)
        out = []
        for (left, t, right, b), score in found:
            t, b = t + rows[0], b + rows[0]
            if b - t + 1 < fine_max and own((t + b) / 2):
                out.append(((left, t, right, b), score))
        return out

    def coarse() -> Found:  # in the pool's thread, after its band: ``other`` again
        up = max(0, math.ceil(math.log2(coarse_scale)))
        scale = coarse_scale / 2.0**up
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        small = np.asarray(Image.fromarray(grey).resize(size, Image.Resampling.BILINEAR))
        bx, by = w / size[0], h / size[1]
        return [(_back(box, bx, by), s) for box, s in other(small, up)]

    pool = _pool()
    first = pool.submit(lambda: band(other, top, lambda y: y < mid) + coarse())
    second = band(run, bottom, lambda y: y >= mid)  # this thread, the other band meanwhile
    return _merge(first.result() + second)


def _back(box: tuple[int, int, int, int], bx: float, by: float) -> tuple[int, int, int, int]:
    """A box found on the shrunk copy, in the image's pixels (inclusive corners)."""
    x0, y0, x1, y1 = box
    return round(x0 * bx), round(y0 * by), round((x1 + 1) * bx) - 1, round((y1 + 1) * by) - 1


def _merge(found: Found, overlap: float = 0.5) -> Found:
    """Highest score first; a box overlapping a kept one by more than ``overlap`` (IoU) or
    lying mostly inside it is the same face."""
    kept: Found = []
    for box, score in sorted(found, key=lambda f: -f[1]):
        if all(not _same(box, k) for k, _ in kept):
            kept.append((box, score))
    return kept


def _same(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    ix = min(a[2], b[2]) - max(a[0], b[0]) + 1
    iy = min(a[3], b[3]) - max(a[1], b[1]) + 1
    if ix <= 0 or iy <= 0:
        return False
    inter = ix * iy
    area_a = (a[2] - a[0] + 1) * (a[3] - a[1] + 1)
    area_b = (b[2] - b[0] + 1) * (b[3] - b[1] + 1)
    return inter / (area_a + area_b - inter) > 0.5 or inter / min(area_a, area_b) > 0.8
