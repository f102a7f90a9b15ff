"""One image in, every face out: detect -> align -> embed -> assess -> thumbnail."""

from __future__ import annotations

import numpy as np
from PIL import Image

from faceindex.types import BBox, DetectedFace
from faceindex.vision.base import Aligner, Detector, Embedder
from faceindex.vision.decode import encode_jpeg
from faceindex.vision.quality import assess

__all__ = ["FaceAnalyzer", "thumbnail"]


class FaceAnalyzer:
    def __init__(
        self,
        detector: Detector,
        aligner: Aligner,
        embedder: Embedder,
        *,
        thumbnail_size: int = 112,
    ) -> None:
        self.detector = detector
        self.aligner = aligner
        self.embedder = embedder
        self.thumbnail_size = thumbnail_size

    def analyze(self, rgb: np.ndarray) -> list[DetectedFace]:
        detections = self.detector.detect(rgb)
        if not detections:
            return []
        marks = [d.landmarks for d in detections]
        aligned = self.aligner.align(
            rgb, [d.bbox for d in detections], marks if all(marks) else None
        )
        vectors = self.embedder.embed([a.chip for a in aligned])
        faces = []
        for det, al, vec in zip(detections, aligned, vectors, strict=True):
            faces.append(
                DetectedFace(
                    bbox=det.bbox,
                    landmarks=al.landmarks,
                    detector=det.detector,
                    detector_score=round(det.score, 4),
                    quality=assess(det.bbox, al.landmarks, al.chip, pose=al.pose),
                    embedding=vec,
                    thumbnail=thumbnail(rgb, det.bbox, self.thumbnail_size),
                )
            )
        return faces


def thumbnail(rgb: np.ndarray, box: BBox, size: int) -> bytes:
    """A small JPEG of the face with a 25% margin, longest side ``size``."""
    h, w = rgb.shape[:2]
    mx, my = int(box.width * 0.25), int(box.height * 0.25)
    crop = rgb[
        max(0, box.top - my) : min(h, box.bottom + my),
        max(0, box.left - mx) : min(w, box.right + mx),
    ]
    if crop.size == 0:
        crop = rgb
    img = Image.fromarray(crop)
    img.thumbnail((size, size), Image.Resampling.LANCZOS)
    return encode_jpeg(np.asarray(img), quality=85)
