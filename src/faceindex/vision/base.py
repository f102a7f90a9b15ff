"""The vision seams: detector, aligner and embedder Protocols.

dlib's models implement them here; other models (an ONNX model pack a user brings) plug in
by implementing the same three methods. A detector that finds landmarks too (SCRFD) hands
them on in :attr:`Detection.landmarks`, and the aligner receives them. An embedder declares
its dimension and metric; the model pack (``vision/pack.py``) is where both are written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from faceindex.types import BBox
from faceindex.vision.pack import Metric

__all__ = ["Aligned", "Aligner", "Detection", "Detector", "Embedder"]


@dataclass(frozen=True)
class Detection:
    bbox: BBox
    score: float
    detector: str
    landmarks: tuple[tuple[float, float], ...] = ()  # where the detector finds them too


@dataclass(frozen=True)
class Aligned:
    landmarks: tuple[tuple[float, float], ...]
    chip: np.ndarray  # the aligned face, (S, S, 3) uint8
    pose: float | None = None  # yaw proxy where the landmark layout is not dlib's


@runtime_checkable
class Detector(Protocol):
    name: str

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """Every face in the image, boxes in the image's own pixel coordinates."""
        ...


@runtime_checkable
class Aligner(Protocol):
    def align(
        self,
        rgb: np.ndarray,
        boxes: list[BBox],
        landmarks: Sequence[tuple[tuple[float, float], ...]] | None = None,
    ) -> list[Aligned]:
        """Landmarks and an aligned chip for each box, in order; ``landmarks``, where given,
        are the detector's for each box (an aligner may use them or find its own)."""
        ...


@runtime_checkable
class Embedder(Protocol):
    name: str
    version: str
    dim: int
    metric: Metric

    def embed(self, chips: list[np.ndarray]) -> np.ndarray:
        """(n, dim) float32 descriptors for n aligned chips, computed as one batch."""
        ...
