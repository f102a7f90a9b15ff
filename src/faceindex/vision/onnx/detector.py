"""dlib's MMOD CNN face detector on ONNX Runtime, with CnnDetector's interface.

The network is converted from the installed ``.dat`` like the descriptor; the image pyramid
(``pyramid.py``) and the MMOD decoding (``mmod.py``) are reproduced in numpy around it, as
dlib's ``cnn_face_detection_model_v1`` runs them: ``upsample`` pyramid_up passes first,
boxes mapped back down after.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from faceindex.types import BBox
from faceindex.vision.base import Detection
from faceindex.vision.detect import downscale
from faceindex.vision.models import DLIB_CNN, model_path
from faceindex.vision.onnx.cache import SOURCE_KEY, check_source, load_converted
from faceindex.vision.onnx.dlib_format import (
    DlibFormatError,
    InputRgbPyramid,
    LossMmod,
    read_network,
)
from faceindex.vision.onnx.mmod import Found, decode, output_mapping, rect_down
from faceindex.vision.onnx.networks import MMOD_FACE_DETECTOR
from faceindex.vision.onnx.pyramid import build_tiled_pyramid, pyramid_up, tiled_layout
from faceindex.vision.onnx.runtime import Provider, open_session

__all__ = ["OnnxCnnDetector"]


class OnnxCnnDetector:
    """Finds the faces dlib's CNN finds (profiles, small, dark), without dlib."""

    def __init__(
        self,
        *,
        upsample: int = 1,
        max_side: int = 1600,
        min_size: int = 0,
        threshold: float = 0.0,
        threads: int = 1,
        provider: Provider = "cpu",
        cache_dir: Path | None = None,
    ) -> None:
        self.name = f"cnn-u{upsample}"
        # The decoding needs the loss options and the layer geometry: read them from the
        # file (milliseconds) rather than trusting a copy.
        network = read_network(model_path(DLIB_CNN).read_bytes(), MMOD_FACE_DETECTOR)
        if not isinstance(network.loss, LossMmod) or not isinstance(network.input, InputRgbPyramid):
            raise DlibFormatError("the MMOD spec read a network that is not an MMOD detector")
        self._loss: LossMmod = network.loss
        self._input: InputRgbPyramid = network.input
        self._mapping = output_mapping(network.layers)
        self._session = open_session(
            load_converted(DLIB_CNN, MMOD_FACE_DETECTOR, cache_dir),
            threads=threads,
            provider=provider,
            arena=False,
        )
        check_source(self._session.get_modelmeta().custom_metadata_map.get(SOURCE_KEY), DLIB_CNN)
        self._input_name = self._session.get_inputs()[0].name
        self._upsample = upsample
        self._max_side = max_side
        self._min_size = min_size
        self._threshold = threshold

    def find(self, rgb: np.ndarray) -> list[Found]:
        """dlib's ``cnn_face_detection_model_v1(rgb, upsample)``: rectangles and scores."""
        img = rgb
        for _ in range(self._upsample):
            img = pyramid_up(img)
        layout = tiled_layout(
            img.shape[0],
            img.shape[1],
            padding=self._input.padding,
            outer_padding=self._input.outer_padding,
        )
        if not layout.rects:
            return []
        tensor = build_tiled_pyramid(img, self._input.mean, layout)
        scores = self._session.run(None, {self._input_name: tensor})[0][0]
        found = decode(scores, self._loss, self._mapping, layout, threshold=self._threshold)
        if self._upsample:
            found = [Found(rect_down(f.rect, self._upsample), f.score, f.window) for f in found]
        return found

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        if rgb.ndim == 2:
            rgb = np.repeat(rgb[:, :, None], 3, axis=2)
        small, back = downscale(rgb, self._max_side)
        h, w = rgb.shape[:2]
        out = []
        for f in self.find(small):
            r = f.rect
            box = BBox(
                max(0, round(r.left * back)),
                max(0, round(r.top * back)),
                min(w, round((r.right + 1) * back)),
                min(h, round((r.bottom + 1) * back)),
            )
            if min(box.width, box.height) >= max(self._min_size, 1):
                out.append(Detection(box, f.score, self.name))
        return out
