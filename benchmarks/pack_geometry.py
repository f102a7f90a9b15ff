"""What an ONNX model pack costs outside its networks: SCRFD decoding and 5-point alignment.

    .venv/bin/python benchmarks/pack_geometry.py

1. SCRFD decode + NMS of a 640x640 input's outputs (16,800 anchors at strides 8/16/32, two
   per cell; 0.2% of them above the score floor, as a busy photo gives).
2. Converting a 1920x1080 photo for warping (once per photo), then the Umeyama fit and the
   112x112 bilinear warp (per face).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from PIL import Image

from faceindex.vision.scrfd import STRIDES, decode, nms
from faceindex.vision.similarity import ARCFACE_112, apply, estimate_similarity, warp


def per_call_ms(fn: Callable[[], object], n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - started) / n * 1e3


def main() -> None:
    rng = np.random.default_rng(0)
    side = 640
    counts = [(side // s) ** 2 * 2 for s in STRIDES]
    scores = [np.where(rng.random((n, 1)) < 0.002, 0.9, 0.01).astype(np.float32) for n in counts]
    boxes = [rng.random((n, 4)).astype(np.float32) * 3 for n in counts]
    marks = [rng.random((n, 10)).astype(np.float32) for n in counts]
    outs = scores + boxes + marks

    def decode_nms() -> None:
        b, s, _ = decode(outs, side, 0.5)
        nms(b, s, 0.4)

    ms = per_call_ms(decode_nms, 50)
    print(f"SCRFD decode + NMS, {side}x{side} ({sum(counts)} anchors): {ms:.2f} ms")
    img = rng.integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    ms = per_call_ms(lambda: Image.fromarray(img), 50)
    print(f"1920x1080 photo to PIL, once per photo: {ms:.2f} ms")
    photo = Image.fromarray(img)
    template = np.asarray(ARCFACE_112)
    seen = apply(np.array([[2.0, 0.3, 700.0], [-0.3, 2.0, 300.0]]), template)
    per_face = per_call_ms(lambda: warp(photo, estimate_similarity(seen, template), 112), 200)
    print(f"Umeyama fit + 112x112 bilinear warp: {per_face:.2f} ms per face")


if __name__ == "__main__":
    main()
