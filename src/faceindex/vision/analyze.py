"""One image in, every face out: detect -> align -> embed -> assess -> thumbnail."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from PIL import Image

from faceindex.errors import NoFaceError
from faceindex.types import BBox, DetectedFace
from faceindex.vision.base import Aligner, Detection, Detector, Embedder
from faceindex.vision.decode import Decoded, decode_image, decode_reduced, encode_jpeg
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
        chip_size: int = 0,
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
        # The embedder's input side (the model pack's): a large JPEG probe decodes at a
        # reduced size only where this is known (0: every probe decodes at full size).
        self.chip_size = chip_size

    def analyze_image(self, data: bytes, *, max_pixels: int, max_bytes: int) -> ImageFaces:
        probe = self._decode_probe(data, max_pixels=max_pixels, max_bytes=max_bytes)
        size = (probe.width, probe.height)
        found = self.probe_detector.detect(probe.rgb)
        if probe.rgb.shape[:2] != (probe.height, probe.width) and any(
            min(d.bbox.width, d.bbox.height) < self.chip_size for d in found
        ):
            # A face smaller than the chip in the reduced pixels would be enlarged from
            # them, and its descriptor moves (0.09-0.40 at p50 for faces under 200 px of
            # the image, docs/BENCHMARKS.md): cut every chip from the full decode. The
            # detection stands: it saw the copy the full decode gives.
            full = decode_image(data, max_pixels=max_pixels, max_bytes=max_bytes)
            found = [_detection_to_image(d, probe.rgb, size) for d in found]
            faces = self._faces(full, found, thumbnails=False)
        else:
            # A probe's faces are searched, never stored: no thumbnails (64 JPEG encodes
            # and their transfer from the server's analysis worker, on a crowd photo).
            faces = self._faces(probe.rgb, found, thumbnails=False, size=size)
        return ImageFaces(probe.width, probe.height, tuple(faces))

    def detect_image(self, data: bytes, *, max_pixels: int, max_bytes: int) -> ImageBoxes:
        probe = self._decode_probe(data, max_pixels=max_pixels, max_bytes=max_bytes)
        size = (probe.width, probe.height)
        found = self.probe_detector.detect(probe.rgb)
        return ImageBoxes(
            probe.width, probe.height, tuple(_detection_to_image(d, probe.rgb, size) for d in found)
        )

    def _decode_probe(self, data: bytes, *, max_pixels: int, max_bytes: int) -> Decoded:
        """The probe's pixels; an image with no room for a face we would keep is "no face"
        before any detector sees it (dlib's CNN can abort the process on a few pixels).

        A large JPEG decodes at a reduced size (libjpeg's DCT scaling) that still holds the
        detection copy (``detect_max_side``): the detectors see the copy they would see from
        the full decode, and the decode costs a fraction. The detectors' ``min_size`` then
        applies in the reduced pixels (2-8x the image's floor), still below any face a pass
        can find in the detection copy of so large an image. What it does to the faces
        found and their descriptors: docs/BENCHMARKS.md, "Reduced decode for probes"."""
        probe = decode_reduced(
            data,
            max_pixels=max_pixels,
            max_bytes=max_bytes,
            min_side=self.detect_max_side if self.chip_size else 0,
        )
        small = too_small_for_faces(
            (probe.height, probe.width),
            min_face_size=self.min_face_size,
            detect_max_side=self.detect_max_side,
        )
        if small is not None:
            raise NoFaceError(f"no face found in the probe image: {small}")
        return probe

    def analyze(
        self, rgb: np.ndarray, *, thumbnails: bool = True, detector: Detector | None = None
    ) -> list[DetectedFace]:
        """Every face in ``rgb``: box, landmarks, quality, embedding and, where it will be
        stored (ingest), a thumbnail; ``thumbnails=False`` leaves it empty (probes).
        ``detector`` defaults to the ingest one."""
        detections = (detector or self.detector).detect(rgb)
        return self._faces(rgb, detections, thumbnails=thumbnails)

    def _faces(
        self,
        rgb: np.ndarray,
        detections: list[Detection],
        *,
        thumbnails: bool,
        size: tuple[int, int] | None = None,
    ) -> list[DetectedFace]:
        """The faces ``detections`` frame in ``rgb``. ``size``: the image's own (width,
        height) where ``rgb`` is a reduced decode of it; boxes, landmarks and quality are
        then given in the image's pixels, as they would be from the full decode."""
        if not detections:
            return []
        marks = [d.landmarks for d in detections]
        aligned = self.aligner.align(
            rgb, [d.bbox for d in detections], marks if all(marks) else None
        )
        vectors = self.embedder.embed([a.chip for a in aligned])
        faces = []
        for det, al, vec in zip(detections, aligned, vectors, strict=True):
            box, points = det.bbox, al.landmarks
            if size is not None:
                box, points = _to_image(box, rgb, size), _points_to_image(points, rgb, size)
            faces.append(
                DetectedFace(
                    bbox=box,
                    landmarks=points,
                    detector=det.detector,
                    detector_score=round(det.score, 4),
                    quality=assess(box, points, al.chip, pose=al.pose),
                    embedding=vec,
                    thumbnail=thumbnail(rgb, det.bbox, self.thumbnail_size) if thumbnails else b"",
                )
            )
        return faces


def _detection_to_image(d: Detection, rgb: np.ndarray, size: tuple[int, int]) -> Detection:
    """A detection in ``rgb`` (a reduced decode) -> in the image of ``size``."""
    box, points = _to_image(d.bbox, rgb, size), _points_to_image(d.landmarks, rgb, size)
    return Detection(box, d.score, d.detector, points)


def _to_image(box: BBox, rgb: np.ndarray, size: tuple[int, int]) -> BBox:
    """A box in ``rgb`` (a reduced decode) -> the same box in the image of ``size``."""
    (fx, fy), (w, h) = _factors(rgb, size), size
    if (fx, fy) == (1.0, 1.0):
        return box
    return BBox(
        max(0, round(box.left * fx)),
        max(0, round(box.top * fy)),
        min(w, round(box.right * fx)),
        min(h, round(box.bottom * fy)),
    )


def _points_to_image(
    points: tuple[tuple[float, float], ...], rgb: np.ndarray, size: tuple[int, int]
) -> tuple[tuple[float, float], ...]:
    """Landmarks (pixel centres) in ``rgb`` -> in the image of ``size``."""
    fx, fy = _factors(rgb, size)
    if (fx, fy) == (1.0, 1.0):
        return points
    return tuple(((x + 0.5) * fx - 0.5, (y + 0.5) * fy - 0.5) for x, y in points)


def _factors(rgb: np.ndarray, size: tuple[int, int]) -> tuple[float, float]:
    return size[0] / rgb.shape[1], size[1] / rgb.shape[0]


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
