"""ArcFace-style alignment and embedding on ONNX Runtime (an InsightFace-layout pack).

The aligner fits the detector's 5 landmarks (left eye, right eye, nose, left and right mouth
corners) onto the pack's template with a similarity transform and warps the chip; the
embedder normalises the chip as the pack says, runs the recogniser on the whole batch, and
L2-normalises the output (cosine packs), after averaging with the mirror image if asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from faceindex.errors import ModelError
from faceindex.types import BBox
from faceindex.vision.align import pose_from_eyes_nose
from faceindex.vision.base import Aligned
from faceindex.vision.onnx.runtime import open_session, threads_per_worker
from faceindex.vision.pack import Metric, ModelPack
from faceindex.vision.similarity import apply, estimate_similarity, warp

__all__ = ["ArcFaceEmbedder", "SimilarityAligner"]


class SimilarityAligner:
    """Chips whose landmarks sit on the template; boxes without landmarks are fitted whole."""

    def __init__(self, template: Sequence[tuple[float, float]], size: int) -> None:
        self._template = np.asarray(template, dtype=np.float64)
        if self._template.shape != (5, 2):
            raise ModelError(f"a 5-point template has shape (5, 2), not {self._template.shape}")
        self._size = size

    def align(
        self,
        rgb: np.ndarray,
        boxes: list[BBox],
        landmarks: Sequence[tuple[tuple[float, float], ...]] | None = None,
    ) -> list[Aligned]:
        out = []
        photo = Image.fromarray(rgb) if boxes else None  # once per photo, not per face
        for i, box in enumerate(boxes):
            marks = landmarks[i] if landmarks is not None else ()
            if len(marks) == 5:
                points = np.asarray(marks, dtype=np.float64)
                matrix = estimate_similarity(points, self._template)
                pose = pose_from_eyes_nose(points[0], points[1], points[2])
            else:  # a whole-image face with no landmarks: the box fills the chip
                matrix = self._box_matrix(box)
                points = apply(np.linalg.inv(np.vstack([matrix, [0, 0, 1]]))[:2], self._template)
                pose = None
            chip = warp(photo if photo is not None else rgb, matrix, self._size)
            landmarks_out = tuple((float(x), float(y)) for x, y in points)
            out.append(Aligned(landmarks_out, chip, pose))
        return out

    def _box_matrix(self, box: BBox) -> np.ndarray:
        sx = self._size / max(box.width, 1)
        sy = self._size / max(box.height, 1)
        # Pixel centres: box pixel left..right-1 spans chip pixels 0..size-1.
        return np.array(
            [
                [sx, 0.0, (0.5 - box.left) * sx - 0.5],
                [0.0, sy, (0.5 - box.top) * sy - 0.5],
            ]
        )


class ArcFaceEmbedder:
    """Descriptors of aligned chips from an ONNX recogniser, one batch per call."""

    def __init__(self, path: Path, pack: ModelPack, *, mirror: bool, threads: int = 0) -> None:
        self._session = open_session(
            path.read_bytes(), threads=threads or threads_per_worker(1), name=str(path)
        )
        inp = self._session.get_inputs()[0]
        self._input = inp.name
        self._fixed_batch = isinstance(inp.shape[0], int) and inp.shape[0] == 1
        fixed = [d for d in inp.shape[2:] if isinstance(d, int)]
        if any(d != pack.input_size for d in fixed):
            raise ModelError(f"{path} takes {inp.shape[2:]} chips; the pack says {pack.input_size}")
        self._output = self._session.get_outputs()[0].name
        self._norm = pack.normalisation
        self._size = pack.input_size
        self._normalise = pack.normalise
        self._mirror = mirror
        self.dim = pack.dim
        self.metric: Metric = pack.metric
        self.name = pack.descriptor_name(mirror=mirror)
        self.version = pack.version

    def embed(self, chips: list[np.ndarray]) -> np.ndarray:
        if not chips:
            return np.zeros((0, self.dim), dtype=np.float32)
        batch = list(chips)
        if self._mirror:
            batch += [np.ascontiguousarray(c[:, ::-1]) for c in chips]
        x = np.stack(batch).astype(np.float32)
        if x.shape[1:3] != (self._size, self._size):
            raise ModelError(f"chips are {x.shape[1:3]}, the recogniser takes {self._size}")
        if self._norm.channels == "bgr":
            x = x[..., ::-1]
        x = np.ascontiguousarray(((x - self._norm.mean) / self._norm.std).transpose(0, 3, 1, 2))
        if self._fixed_batch:
            parts = [
                self._session.run([self._output], {self._input: x[i : i + 1]})[0]
                for i in range(len(x))
            ]
            raw = np.concatenate(parts)
        else:
            raw = self._session.run([self._output], {self._input: x})[0]
        vecs = np.asarray(raw, dtype=np.float32).reshape(len(x), -1)
        if vecs.shape[1] != self.dim:
            raise ModelError(
                f"the recogniser gives {vecs.shape[1]}-d output, the pack says {self.dim}"
            )
        if self._mirror:
            n = len(chips)
            vecs = (vecs[:n] + vecs[n:]) / 2.0
        if self._normalise:
            norms = np.linalg.norm(vecs, axis=1, keepdims=True)
            vecs = vecs / np.maximum(norms, 1e-12)
        return np.ascontiguousarray(vecs, dtype=np.float32)
