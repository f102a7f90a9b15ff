"""The vision seams: detector, aligner and embedder Protocols.

dlib's models implement them here; other embedders (an ONNX model pack a user brings) plug in
by implementing the same three methods. An embedder declares its metric: dlib's ResNet was
trained for L2 distance on raw descriptors, so faceindex never normalises them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import numpy as np

from faceindex.types import BBox

__all__ = ["Aligned", "Aligner", "Detection", "Detector", "Embedder"]


@dataclass(frozen=True)
class Detection:
    bbox: BBox
    score: float
    detector: str


@dataclass(frozen=True)
class Aligned:
    landmarks: tuple[tuple[float, float], ...]
    chip: np.ndarray  # the aligned face, (S, S, 3) uint8


@runtime_checkable
class Detector(Protocol):
    name: str

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """Every face in the image, boxes in the image's own pixel coordinates."""
        ...


@runtime_checkable
class Aligner(Protocol):
    def align(self, rgb: np.ndarray, boxes: list[BBox]) -> list[Aligned]:
        """Landmarks and an aligned chip for each box, in order."""
        ...


@runtime_checkable
class Embedder(Protocol):
    name: str
    version: str
    dim: int
    metric: Literal["l2", "ip"]

    def embed(self, chips: list[np.ndarray]) -> np.ndarray:
        """(n, dim) float32 descriptors for n aligned chips, computed as one batch."""
        ...
