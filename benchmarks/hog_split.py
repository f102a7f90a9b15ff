"""dlib's HOG on two threads (vision/hog_split.py) against the single run, same photos.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/hog_split.py

For every photo of ../shared/faces/{multi-face,face-recognition-knn,deepface-pairs} (the
in-the-wild probes of benchmarks/probe_latency.py), both HOG passes of the default detector
(upsample 1 on the 1600 px copy, upsample 2 on at most 1 MP) run once as one scan and once
split over two threads. Reports the faces each finds, how many agree (IoU >= 0.5), the mean
IoU of those, the descriptor distance between the two boxes' embeddings of the same face
(what a probe's answer would move by), and the wall time of each with the ratio. The
times need two idle cores; on a shared machine believe the agreement, rerun the times.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

FACES = Path(__file__).resolve().parents[2] / "shared" / "faces"
WILD = ("multi-face", "face-recognition-knn", "deepface-pairs")


def main() -> None:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from faceindex.config import Settings
    from faceindex.vision.decode import decode_image
    from faceindex.vision.detect import SECOND_HOG_MAX_PIXELS, HogDetector, rescale
    from faceindex.vision.factory import build_analyzer

    photos = sorted(
        p
        for d in WILD
        for p in (FACES / d).rglob("*")
        if p.suffix.lower() in {".jpg", ".jpeg", ".png"}
    )
    if not photos:
        raise SystemExit(f"no photos under {FACES}: this benchmark needs ../shared/faces")
    analyzer = build_analyzer(Settings.load("/nonexistent-home-for-hog-split"), threads=1)
    passes = {
        "u1": (HogDetector(upsample=1, max_side=0), HogDetector(upsample=1, max_side=0, threads=2)),
        "u2": (
            HogDetector(upsample=2, max_side=0, max_pixels=SECOND_HOG_MAX_PIXELS),
            HogDetector(upsample=2, max_side=0, max_pixels=SECOND_HOG_MAX_PIXELS, threads=2),
        ),
    }
    report: dict[str, dict[str, object]] = {}
    for name, (one, two) in passes.items():
        t_one, t_two, ious, dists = [], [], [], []
        found_one = found_two = agreed = 0
        for path in photos:
            rgb = decode_image(path.read_bytes(), max_pixels=60_000_000, max_bytes=64 << 20)
            rgb, _ = rescale(rgb, max_side=1600)
            t0 = time.perf_counter()
            a = one.detect(rgb)
            t_one.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            b = two.detect(rgb)
            t_two.append(time.perf_counter() - t0)
            found_one += len(a)
            found_two += len(b)
            pairs = []
            for da in a:
                best = max(b, key=lambda db: da.bbox.iou(db.bbox), default=None)
                if best is not None and da.bbox.iou(best.bbox) >= 0.5:
                    pairs.append((da.bbox, best.bbox))
                    ious.append(da.bbox.iou(best.bbox))
            agreed += len(pairs)
            if pairs:
                chips = analyzer.aligner.align(rgb, [p for pair in pairs for p in pair])
                vecs = analyzer.embedder.embed([c.chip for c in chips])
                for n in range(len(pairs)):
                    dists.append(float(np.linalg.norm(vecs[2 * n] - vecs[2 * n + 1])))
        total_one, total_two = sum(t_one), sum(t_two)
        report[name] = {
            "photos": len(photos),
            "faces_single": found_one,
            "faces_split": found_two,
            "agreed": agreed,
            "missed_by_split": found_one - agreed,
            "extra_in_split": found_two - agreed,
            "mean_iou_agreed": round(float(np.mean(ious)), 4) if ious else None,
            "descriptor_shift_p50": round(float(np.median(dists)), 4) if dists else None,
            "descriptor_shift_max": round(max(dists), 4) if dists else None,
            "seconds_single": round(total_one, 2),
            "seconds_split": round(total_two, 2),
            "speedup_total": round(total_one / total_two, 2),
            "speedup_p95_photo": round(
                float(np.percentile(t_one, 95) / np.percentile(t_two, 95)), 2
            ),
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
