"""dlib's ResNet face descriptor, computed in batches, optionally mirror-averaged.

Two runtimes give the same descriptors: ONNX Runtime (the default: the network converted
from dlib's file, ``vision/onnx``) and dlib itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from faceindex.vision.base import Embedder
from faceindex.vision.models import DLIB_RESNET, model_path
from faceindex.vision.pack import DLIB_PACK, Metric

__all__ = ["DlibEmbedder", "build_embedder", "descriptor_name"]


def descriptor_name(*, mirror: bool, jitters: int) -> str:
    """The model tag stored with every face: which weights, and how they were applied."""
    suffix = "+mirror" if mirror else ""
    suffix += f"+j{jitters}" if jitters else ""
    return f"{DLIB_RESNET.name}{suffix}@{DLIB_RESNET.version}"


class DlibEmbedder:
    """Raw descriptors compared by Euclidean distance (dlib's training metric; see DLIB_PACK).

    With ``mirror`` each chip's descriptor is averaged with its horizontal mirror's; the
    average is of raw descriptors, never normalised. ``jitters`` is dlib's num_jitters.
    """

    dim = DLIB_PACK.dim
    metric: Metric = DLIB_PACK.metric

    def __init__(self, *, mirror: bool = True, jitters: int = 0) -> None:
        import dlib

        self._model = dlib.face_recognition_model_v1(str(model_path(DLIB_RESNET)))
        self._mirror = mirror
        self._jitters = jitters
        self.name = descriptor_name(mirror=mirror, jitters=jitters)
        self.version = DLIB_RESNET.version

    def embed(self, chips: list[np.ndarray]) -> np.ndarray:
        if not chips:
            return np.zeros((0, self.dim), dtype=np.float32)
        batch = list(chips)
        if self._mirror:
            batch += [np.ascontiguousarray(c[:, ::-1]) for c in chips]
        raw = self._model.compute_face_descriptor(batch, self._jitters)
        vecs = np.asarray([np.asarray(v) for v in raw], dtype=np.float32)
        if self._mirror:
            n = len(chips)
            vecs = (vecs[:n] + vecs[n:]) / 2.0
        return vecs


def build_embedder(
    runtime: Literal["onnx", "dlib"] = "onnx",
    *,
    mirror: bool = True,
    jitters: int = 0,
    threads: int = 1,
    provider: Literal["cpu", "cuda", "auto"] = "cpu",
    cache_dir: Path | None = None,
) -> Embedder:
    """dlib's ResNet on the runtime asked for; both carry the same model tag."""
    if runtime == "dlib":
        return DlibEmbedder(mirror=mirror, jitters=jitters)
    from faceindex.vision.onnx.embedder import OnnxDlibEmbedder

    return OnnxDlibEmbedder(
        mirror=mirror, jitters=jitters, threads=threads, provider=provider, cache_dir=cache_dir
    )
