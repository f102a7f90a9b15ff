"""One image in, every face out: detect -> align -> embed -> assess -> thumbnail."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from PIL import Image

from faceindex.errors import NoFaceError
from faceindex.types import BBox, DetectedFace
from faceindex.vision.base import Aligner, Detection, Detector, Embedder
from faceindex.vision.decode import decode_image, encode_jpeg
from faceindex.vision.minsize import too_small_for_faces
from faceindex.vision.quality import assess

__all__ = ["Analyzer", "FaceAnalyzer", "ImageBoxes", "ImageFaces", "thumbnail"]


@dataclass(frozen=True)
class ImageFaces:
    """An image's size and every face in it."""

    width: int
    height: int
    faces: tuple[DetectedFace, ...]


@dataclass(frozen=True)
class ImageBoxes:
    """An image's size and the face boxes found in it (no alignment, no descriptor)."""

    width: int
    height: int
    detections: tuple[Detection, ...]


class Analyzer(Protocol):
    """Image bytes in, faces out: :class:`FaceAnalyzer` in this process, or a stand-in that
    runs one in a worker process (the server's, so a long analysis never holds its GIL)."""

    def analyze_image(self, data: bytes, *, max_pixels: int, max_bytes: int) -> ImageFaces:
        """Decode (raising DecodeError or ImageTooLarge) and find every face: a probe's, so
        the faces carry no thumbnail."""
        ...

    def detect_image(self, data: bytes, *, max_pixels: int, max_bytes: int) -> ImageBoxes:
        """Decode and find the face boxes only."""
        ...


class FaceAnalyzer:
    def __init__(
        self,
        detector: Detector,
        aligner: Aligner,
        embedder: Embedder,
        *,
        thumbnail_size: int = 112,
        min_face_size: int = 0,
        detect_max_side: int = 0,
        probe_detector: Detector | None = None,
    ) -> None:
        self.detector = detector
        # Probes (searches, verify, watch and opt-out photos) may detect on a budget of
        # their own (detect.ProbeDetector); what is ingested always goes through ``detector``.
        self.probe_detector = probe_detector or detector
        self.aligner = aligner
        self.embedder = embedder
        self.thumbnail_size = thumbnail_size
        self.min_face_size = min_face_size
        self.detect_max_side = detect_max_side

    def analyze_image(self, data: bytes, *, max_pixels: int, max_bytes: int) -> ImageFaces:
        rgb = self._decode_probe(data, max_pixels=max_pixels, max_bytes=max_bytes)
        # A probe's faces are searched, never stored: no thumbnails (64 JPEG encodes and
        # their transfer from the server's analysis worker, on a crowd photo).
        faces = self.analyze(rgb, thumbnails=False, detector=self.probe_detector)
        return ImageFaces(int(rgb.shape[1]), int(rgb.shape[0]), tuple(faces))

    def detect_image(self, data: bytes, *, max_pixels: int, max_bytes: int) -> ImageBoxes:
        rgb = self._decode_probe(data, max_pixels=max_pixels, max_bytes=max_bytes)
        found = self.probe_detector.detect(rgb)
        return ImageBoxes(int(rgb.shape[1]), int(rgb.shape[0]), tuple(found))

    def _decode_probe(self, data: bytes, *, max_pixels: int, max_bytes: int) -> np.ndarray:
        """The probe's pixels; an image with no room for a face we would keep is "no face"
        before any detector sees it (dlib's CNN can abort the process on a few pixels)."""
        rgb = decode_image(data, max_pixels=max_pixels, max_bytes=max_bytes)
        small = too_small_for_faces(
            rgb.shape, min_face_size=self.min_face_size, detect_max_side=self.detect_max_side
        )
        if small is not None:
            raise NoFaceError(f"no face found in the probe image: {small}")
        return rgb

    def analyze(
        self, rgb: np.ndarray, *, thumbnails: bool = True, detector: Detector | None = None
    ) -> list[DetectedFace]:
        """Every face in ``rgb``: box, landmarks, quality, embedding and, where it will be
        stored (ingest), a thumbnail; ``thumbnails=False`` leaves it empty (probes).
        ``detector`` defaults to the ingest one."""
        detections = (detector or self.detector).detect(rgb)
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
                    thumbnail=thumbnail(rgb, det.bbox, self.thumbnail_size) if thumbnails else b"",
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
