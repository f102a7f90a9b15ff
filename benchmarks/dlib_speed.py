"""Speed of the dlib that is installed: descriptor ms/face and HOG ms/image.

    .venv/bin/python benchmarks/dlib_speed.py [--label NAME] [--repeat 20]

Run it once per dlib build (source with OpenBLAS, dlib-bin) to compare them on this machine;
BLAS threads follow OPENBLAS_NUM_THREADS (ingest workers use 1).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import dlib
import numpy as np
from PIL import Image
from skimage import data

from faceindex.vision.models import DLIB_LANDMARKS_5, DLIB_RESNET, model_path


def _ms(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--label", default=getattr(dlib, "__version__", "dlib"))
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    rgb = np.asarray(data.astronaut())
    big = np.asarray(Image.fromarray(rgb).resize((1600, 1600)))
    grey, big_grey = (np.asarray(Image.fromarray(x).convert("L")) for x in (rgb, big))
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(model_path(DLIB_LANDMARKS_5)))
    model = dlib.face_recognition_model_v1(str(model_path(DLIB_RESNET)))
    rect = max(detector(rgb, 1), key=lambda r: r.area())
    chip = dlib.get_face_chip(rgb, predictor(rgb, rect), size=150, padding=0.25)
    batch = [chip] * 16
    r = args.repeat
    figures = {
        "descriptor ms/face (single)": _ms(lambda: model.compute_face_descriptor(chip), r),
        "descriptor ms/face (batch 16)": _ms(lambda: model.compute_face_descriptor(batch), 3) / 16,
        "HOG u1 512px RGB ms": _ms(lambda: detector(rgb, 1), r),
        "HOG u1 512px grey ms": _ms(lambda: detector(grey, 1), r),
        "HOG u1 1600px grey ms": _ms(lambda: detector(big_grey, 1), max(3, r // 5)),
        "landmarks ms/face": _ms(lambda: predictor(rgb, rect), r),
    }
    for name, value in figures.items():
        print(f"{args.label:24} {name:32} {value:8.1f}")


if __name__ == "__main__":
    main()
