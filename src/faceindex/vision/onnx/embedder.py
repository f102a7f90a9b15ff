"""dlib's ResNet face descriptor on ONNX Runtime: the same network, the same numbers.

The graph is converted from the installed ``.dat`` on first use (``cache.py``); it takes
the 150x150 RGB chips dlib's ``compute_face_descriptor`` takes and normalises them in the
graph as dlib's ``input_rgb_image_sized`` does. Descriptors equal dlib's to float rounding
(tests/integration/test_onnx_equivalence.py), so the model tag stays dlib's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from faceindex.errors import ConfigError, InputError
from faceindex.vision.embed import descriptor_name
from faceindex.vision.models import DLIB_RESNET
from faceindex.vision.onnx.cache import SOURCE_KEY, check_source, load_converted
from faceindex.vision.onnx.networks import RESNET_FACE_DESCRIPTOR
from faceindex.vision.onnx.runtime import Provider, open_session
from faceindex.vision.pack import DLIB_PACK, Metric

__all__ = ["OnnxDlibEmbedder"]


class OnnxDlibEmbedder:
    """Raw descriptors compared by L2 distance, as :class:`~faceindex.vision.embed.DlibEmbedder`.

    With ``mirror`` each chip's descriptor is averaged with its horizontal mirror's, both
    computed in the one batch with every other chip of the call. dlib's random jitter
    (``jitters`` > 1) has no ONNX counterpart: use ``embedder_runtime=dlib`` for it.
    """

    metric: Metric = DLIB_PACK.metric

    def __init__(
        self,
        *,
        mirror: bool = True,
        jitters: int = 0,
        threads: int = 1,
        provider: Provider = "cpu",
        cache_dir: Path | None = None,
    ) -> None:
        if jitters > 1:
            raise ConfigError(
                f"jitters={jitters}: dlib's random jitter runs only on dlib; "
                "set embedder_runtime=dlib or jitters=0"
            )
        self._session = open_session(
            load_converted(DLIB_RESNET, RESNET_FACE_DESCRIPTOR, cache_dir),
            threads=threads,
            provider=provider,
        )
        check_source(self._session.get_modelmeta().custom_metadata_map.get(SOURCE_KEY), DLIB_RESNET)
        inp = self._session.get_inputs()[0]
        self._input = inp.name
        self._size = (int(inp.shape[1]), int(inp.shape[2]))
        self.dim = int(self._session.get_outputs()[0].shape[1])
        self._mirror = mirror
        self.name = descriptor_name(mirror=mirror, jitters=jitters)
        self.version = DLIB_RESNET.version
        self.providers = tuple(self._session.get_providers())

    def embed(self, chips: list[np.ndarray]) -> np.ndarray:
        if not chips:
            return np.zeros((0, self.dim), dtype=np.float32)
        want = (*self._size, 3)
        for chip in chips:
            if chip.shape != want or chip.dtype != np.uint8:
                raise InputError(
                    f"a face chip must be {want} uint8 RGB, got {chip.shape} {chip.dtype}"
                )
        batch = np.stack(chips)
        if self._mirror:
            batch = np.concatenate([batch, batch[:, :, ::-1]])
        vecs = self._session.run(None, {self._input: np.ascontiguousarray(batch)})[0]
        vecs = np.asarray(vecs, dtype=np.float32)
        if self._mirror:
            n = len(chips)
            vecs = (vecs[:n] + vecs[n:]) / 2.0
        return vecs
