"""Face detectors: dlib HOG (default), dlib CNN/MMOD (opt-in), whole-image, and a fallback chain.

Detection may run on a rescaled copy; boxes are mapped back to full resolution.
:class:`BoundedDetector` puts any detector (dlib's CNN, or another implementation of the
:class:`~faceindex.vision.base.Detector` Protocol) on a pixel budget: its time and memory grow
with the pixels it sees, so the budget bounds both whatever the size of the image.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
from PIL import Image

from faceindex.types import BBox
from faceindex.vision.base import Detection, Detector
from faceindex.vision.models import DLIB_CNN, model_path

__all__ = [
    "BoundedDetector",
    "CnnDetector",
    "FallbackDetector",
    "SECOND_HOG_MAX_PIXELS",
    "HogDetector",
    "ProbeDetector",
    "WholeImageDetector",
    "bounded_fallback",
    "downscale",
    "probe_budget",
    "rescale",
]


def rescale(
    rgb: np.ndarray, *, max_side: int = 0, max_pixels: int = 0, max_scale: float = 1.0
) -> tuple[np.ndarray, float]:
    """The image scaled by the largest factor up to ``max_scale`` that keeps its longest side
    within ``max_side`` and its area within ``max_pixels`` (0: no such limit), and the factor
    that maps boxes found on the copy back to the image."""
    h, w = rgb.shape[:2]
    scale = max_scale
    if max_side > 0:
        scale = min(scale, max_side / max(h, w))
    if max_pixels > 0:
        scale = min(scale, (max_pixels / (h * w)) ** 0.5)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if size == (w, h):
        return rgb, 1.0
    resample = Image.Resampling.BILINEAR if scale < 1 else Image.Resampling.BICUBIC
    copy = np.asarray(Image.fromarray(rgb).resize(size, resample))
    return copy, w / size[0]


def downscale(rgb: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """A copy whose longest side is at most ``max_side``, and the factor to map boxes back."""
    return rescale(rgb, max_side=max_side)


class _Rect(Protocol):  # dlib.rectangle
    def left(self) -> int: ...
    def top(self) -> int: ...
    def right(self) -> int: ...
    def bottom(self) -> int: ...


def _detections(
    found: list[tuple[_Rect, float]],
    back: float,
    shape: tuple[int, ...],
    min_size: int,
    name: str,
) -> list[Detection]:
    """dlib rectangles found on a scaled copy -> boxes in the full image, small ones dropped."""
    h, w = shape[:2]
    out = []
    for rect, score in found:
        box = BBox(
            max(0, round(rect.left() * back)),
            max(0, round(rect.top() * back)),
            min(w, round((rect.right() + 1) * back)),
            min(h, round((rect.bottom() + 1) * back)),
        )
        if min(box.width, box.height) >= max(min_size, 1):
            out.append(Detection(box, float(score), name))
    return out


# dlib's frontal face detector scans an 80x80 window: at upsample u the smallest face it
# finds is 80 / 2**u px of the copy it is shown.
HOG_WINDOW = 80


class HogDetector:
    """dlib's frontal HOG + linear SVM detector."""

    def __init__(
        self, *, upsample: int = 1, max_side: int = 1600, min_size: int = 0, max_pixels: int = 0
    ) -> None:
        import dlib

        self.name = f"hog-u{upsample}"
        self._detector = dlib.get_frontal_face_detector()
        self.upsample = upsample
        self._max_side = max_side
        self._max_pixels = max_pixels  # of the copy it upsamples (0: max_side alone)
        self._min_size = min_size

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        small, back = rescale(rgb, max_side=self._max_side, max_pixels=self._max_pixels)
        # HOG on the luminance alone: 1.8x faster than on RGB, the same faces (73 of 73 on
        # the multi-face set; fHOG on colour only keeps each pixel's strongest channel).
        grey = np.asarray(Image.fromarray(small).convert("L"))
        rects, scores, _ = self._detector.run(grey, self.upsample, 0.0)
        return _detections(
            list(zip(rects, scores, strict=True)), back, rgb.shape, self._min_size, self.name
        )


class CnnDetector:
    """dlib's MMOD CNN detector: finds more faces (profiles, small, dark), much slower on CPU."""

    def __init__(self, *, upsample: int = 1, max_side: int = 1600, min_size: int = 0) -> None:
        import dlib

        self.name = f"cnn-u{upsample}"
        self._detector = dlib.cnn_face_detection_model_v1(str(model_path(DLIB_CNN)))
        self._upsample = upsample
        self._max_side = max_side
        self._min_size = min_size

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        small, back = downscale(rgb, self._max_side)
        found = [(d.rect, d.confidence) for d in self._detector(small, self._upsample)]
        return _detections(found, back, rgb.shape, self._min_size, self.name)


class WholeImageDetector:
    """For pre-cropped portraits: every image holds exactly one face.

    Tight crops leave detectors no margin, so the image is padded by ``pad`` of its size
    with its median colour and ``refine`` looks for the face there (HOG finds 95 of 100
    att-orl crops padded, 84 unpadded); the most confident box is kept. If nothing is
    found, the whole image is the face.
    """

    name = "whole"

    def __init__(self, refine: Detector | None = None, *, pad: float = 0.25) -> None:
        self._refine = refine
        self._pad = pad

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        h, w = rgb.shape[:2]
        whole = Detection(BBox(0, 0, w, h), 1.0, self.name)
        if self._refine is None:
            return [whole]
        p = int(self._pad * max(h, w))
        fill = np.median(rgb.reshape(-1, rgb.shape[2]), axis=0).astype(np.uint8)
        padded = np.empty((h + 2 * p, w + 2 * p, rgb.shape[2]), dtype=np.uint8)
        padded[:] = fill
        padded[p : p + h, p : p + w] = rgb
        found = self._refine.detect(padded)
        if not found:
            return [whole]
        best = max(found, key=lambda d: d.score)
        b = best.bbox
        box = BBox(max(0, b.left - p), max(0, b.top - p), min(w, b.right - p), min(h, b.bottom - p))
        marks = tuple((x - p, y - p) for x, y in best.landmarks)
        return [Detection(box, 1.0, f"{self.name}+{self._refine.name}", marks)]


def _mapped(
    found: list[Detection], back: float, shape: tuple[int, ...], min_size: int
) -> list[Detection]:
    """Detections on a copy scaled by 1/``back`` -> boxes in the image, small ones dropped."""
    h, w = shape[:2]
    out = []
    for d in found:
        b = d.bbox
        box = (
            b
            if back == 1.0
            else BBox(
                max(0, round(b.left * back)),
                max(0, round(b.top * back)),
                min(w, round(b.right * back)),
                min(h, round(b.bottom * back)),
            )
        )
        if min(box.width, box.height) >= max(min_size, 1):
            out.append(Detection(box, d.score, d.detector))
    return out


class BoundedDetector:
    """Any detector on a pixel budget: it sees a copy of at most ``max_pixels`` pixels,
    enlarged up to ``max_scale`` (for small faces) when the image is small enough.

    The inner detector should not rescale again (dlib's CNN: ``upsample=0, max_side=0``):
    the budget is then exactly what it processes, which is what its time and memory follow
    (dlib's CNN: about 0.95 GiB and, on one idle core, 4-5 s per million pixels; see
    docs/BENCHMARKS.md, "Bounded probes"). Boxes come back in the image's coordinates.
    """

    def __init__(
        self, inner: Detector, *, max_pixels: int, max_scale: float = 1.0, min_size: int = 0
    ) -> None:
        if max_pixels <= 0:
            raise ValueError("a bounded detector needs a positive pixel budget")
        self.inner = inner
        self.max_pixels = max_pixels
        self.max_scale = max_scale
        self.min_size = min_size
        self.name = f"{inner.name}@{max_pixels / 1e6:g}mp"

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        copy, back = rescale(rgb, max_pixels=self.max_pixels, max_scale=self.max_scale)
        found = [Detection(d.bbox, d.score, self.name) for d in self.inner.detect(copy)]
        return _mapped(found, back, rgb.shape, self.min_size)


class FallbackDetector:
    """Runs detectors in order and returns the first non-empty answer.

    With ``max_side`` the image is shrunk once for the whole chain (a 59 MP probe is then
    resized once, not once per pass) and ``min_size`` applies to each pass's boxes in the
    image's own pixels; the passes themselves should then not shrink or filter again.
    """

    def __init__(self, chain: Sequence[Detector], *, max_side: int = 0, min_size: int = 0) -> None:
        self.chain = tuple(chain)
        self.max_side = max_side
        self.min_size = min_size
        self.name = "+".join(d.name for d in self.chain)

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        copy, back = rescale(rgb, max_side=self.max_side)
        return self.detect_copy(copy, back, rgb.shape)

    def detect_copy(self, copy: np.ndarray, back: float, shape: tuple[int, ...]) -> list[Detection]:
        """The chain on a copy already shrunk to ``max_side`` (``back`` maps its boxes to an
        image of ``shape``)."""
        for detector in self.chain:
            found = _mapped(detector.detect(copy), back, shape, self.min_size)
            if found:
                return found
        return []


class ProbeDetector:
    """A probe's detection: the ingest chain's first HOG pass, first on a smaller copy.

    The ingest chain (:func:`bounded_fallback`) scans a copy of at most ``max_side`` px at
    its upsampling; on a 2-5 MP single-face photo that pass alone is most of a probe's
    latency. A probe starts on a copy of at most ``max_pixels`` instead. Its answer stands
    when every face it found is at least twice the smallest that pass can see
    (``floor``, px of the small copy): a portrait. Otherwise (nothing found, or faces near
    the floor, as in a crowd, where smaller ones may have been cut off) the ingest chain
    runs, unchanged, so such a probe has every pass an ingested photo has. Images whose
    ingest copy is within the budget skip the small pass (it would be the same scan). What
    the budget costs in faces and descriptor shift is measured by
    ``benchmarks/probe_budget.py`` (docs/BENCHMARKS.md, "Probe budget").
    """

    def __init__(
        self, chain: FallbackDetector, first: Detector, *, max_pixels: int, floor: float
    ) -> None:
        if max_pixels <= 0:
            raise ValueError("a probe budget needs a positive pixel budget")
        self.chain = chain
        self.first = first  # shows itself at most max_pixels (HogDetector(max_pixels=...))
        self.max_pixels = max_pixels
        self.floor = floor
        self.name = f"{first.name}+{chain.name}"

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        copy, back = rescale(rgb, max_side=self.chain.max_side)
        pixels = copy.shape[0] * copy.shape[1]
        if pixels > self.max_pixels:
            found = self.first.detect(copy)  # boxes in the copy's pixels
            small = (self.max_pixels / pixels) ** 0.5  # the first pass's copy, to this one
            if found and min(min(d.bbox.width, d.bbox.height) for d in found) * small >= (
                2 * self.floor
            ):
                return _mapped(found, back, rgb.shape, self.chain.min_size)
        return self.chain.detect_copy(copy, back, rgb.shape)


# The second HOG pass upsamples once more (16x the pixels at upsample 2): on at most 1 MP it
# still found a face in each in-the-wild photo the first pass missed (the largest 0.79 MP),
# at half the cost of the whole 1600x1200 copy.
SECOND_HOG_MAX_PIXELS = 1_000_000


def bounded_fallback(
    cnn: Detector, *, upsample: int, max_side: int, min_size: int, cnn_max_pixels: int
) -> FallbackDetector:
    """The default detector: HOG, then HOG with one more upsampling, then ``cnn`` (any CNN
    that runs at the scale it is given) on a copy of at most ``cnn_max_pixels`` pixels,
    enlarged as far as ``upsample`` would where the image is small enough.

    Every pass works on one copy of at most ``max_side``. Only photos where HOG finds
    nothing pay for the later passes, and each has a pixel budget, so the worst case is a
    constant: the second HOG pass sees at most
    :data:`SECOND_HOG_MAX_PIXELS`, and the CNN its budget (the old CNN pass, upsampling the
    1600 px copy, cost 35 s and 7.6 GB on a 1600x1200 photo without a face).
    docs/BENCHMARKS.md ("Bounded probes") has recall against cost for each budget.
    """
    return FallbackDetector(
        [
            HogDetector(upsample=upsample, max_side=0),
            HogDetector(upsample=upsample + 1, max_side=0, max_pixels=SECOND_HOG_MAX_PIXELS),
            BoundedDetector(cnn, max_pixels=cnn_max_pixels, max_scale=2.0**upsample),
        ],
        max_side=max_side,
        min_size=min_size,
    )


def probe_budget(chain: FallbackDetector, *, upsample: int, max_pixels: int) -> ProbeDetector:
    """The default chain with a probe's first pass: HOG at ``upsample`` on at most
    ``max_pixels`` (the chain's first pass, on a smaller copy)."""
    first = HogDetector(upsample=upsample, max_side=0, max_pixels=max_pixels)
    first.name = f"hog-u{upsample}@{max_pixels / 1e6:g}mp"
    floor = HOG_WINDOW / 2**upsample  # the smallest face it sees, in its copy's pixels
    return ProbeDetector(chain, first, max_pixels=max_pixels, floor=floor)
