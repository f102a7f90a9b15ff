"""Recall against cost for the detection fallback: which pixel budget the CNN gets.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/detect_budget.py --budgets 0.5,1,2

1. HOG (upsample 1, 1600 px copy: the first pass) on every in-the-wild photo of
   ../shared/faces (multi-face, face-recognition-knn, deepface-pairs); the photos where it
   finds nothing are the ones the fallback is for.
2. dlib's CNN on the nine hand-annotated VOC group photos of multi-face/ at each budget:
   recall of the annotated faces (IoU >= 0.5) and seconds, which is what the budget costs in
   small faces.
3. On the photos HOG missed: HOG upsample 2 and the CNN at each budget, found or not, seconds.
4. Peak RSS and seconds of the CNN at each budget on the generated 1600x1200 no-face photo,
   each in a fresh process (ru_maxrss), and of the old policy (upsample 1 on the 1600 px
   copy) with --legacy.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from faceindex.types import BBox
from faceindex.vision.base import Detector
from faceindex.vision.decode import decode_image
from faceindex.vision.detect import BoundedDetector, CnnDetector, HogDetector

FACES = Path(__file__).resolve().parents[2] / "shared" / "faces"
WILD = ("multi-face", "face-recognition-knn", "deepface-pairs")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


def wild_photos() -> list[Path]:
    return sorted(
        p for d in WILD for p in (FACES / d).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
    )


def load(path: Path) -> np.ndarray:
    return decode_image(path.read_bytes(), max_pixels=60_000_000, max_bytes=1 << 28)


def timed(detector: Detector, rgb: np.ndarray) -> tuple[list[BBox], float]:
    t0 = time.perf_counter()
    found = detector.detect(rgb)
    return [d.bbox for d in found], time.perf_counter() - t0


def cnn(budget_mp: float) -> BoundedDetector:
    return BoundedDetector(
        CnnDetector(upsample=0, max_side=0), max_pixels=int(budget_mp * 1e6), max_scale=2.0
    )


def annotated() -> dict[str, list[BBox]]:
    boxes: dict[str, list[BBox]] = {}
    with open(FACES / "multi-face" / "annotations" / "dlib_face_boxes.csv") as fh:
        for row in csv.DictReader(fh):
            if row["ignore"] == "1":
                continue
            x, y, w, h = (int(row[k]) for k in ("x", "y", "w", "h"))
            boxes.setdefault(row["file"], []).append(BBox(x, y, x + w, y + h))
    return boxes


def recall(truth: list[BBox], found: list[BBox]) -> int:
    left = list(found)
    hits = 0
    for t in truth:
        best = max(left, key=t.iou, default=None)
        if best is not None and t.iou(best) >= 0.5:
            hits += 1
            left.remove(best)
    return hits


def rss_child(budget: str) -> dict[str, float]:
    """One detector run on the no-face photo in this process; prints peak RSS and seconds."""
    sys.path.insert(0, str(Path(__file__).parent))
    from noface_probes import plain_photo

    rgb = decode_image(plain_photo(), max_pixels=60_000_000, max_bytes=1 << 28)
    detector: Detector = (
        CnnDetector(upsample=1, max_side=1600) if budget == "legacy" else cnn(float(budget))
    )
    base = vm_hwm_mib()
    found, seconds = timed(detector, rgb)
    return {
        "faces": len(found),
        "s": round(seconds, 2),
        "peak_mib": vm_hwm_mib(),
        "before_mib": base,
    }


def vm_hwm_mib() -> int:
    """This process's peak RSS. Not ru_maxrss: Linux keeps that across exec, so a child
    started from a big parent reports the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    return -1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--budgets", default="0.5,1,2")
    ap.add_argument("--legacy", action="store_true", help="also the old u1 @ 1600 px (35 s)")
    ap.add_argument("--only-rss", action="store_true", help="only step 4")
    ap.add_argument("--rss-child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rss_child:
        print(json.dumps(rss_child(args.rss_child)))
        return
    budgets = [float(b) for b in args.budgets.split(",")]
    report: dict[str, object] = {}
    if not args.only_rss:
        measure_recall(budgets, report)
    rows = []
    for b in [*(f"{b:g}" for b in budgets), *(["legacy"] if args.legacy else [])]:
        out = subprocess.run(
            [sys.executable, __file__, "--rss-child", b], capture_output=True, text=True, check=True
        )
        rows.append({"budget": b, **json.loads(out.stdout)})
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    report["no_face_1600x1200"] = rows
    print(json.dumps(report, indent=2))


def measure_recall(budgets: list[float], report: dict[str, object]) -> None:
    hog = HogDetector(upsample=1, max_side=1600)
    missed: list[Path] = []
    hog_s = []
    for path in wild_photos():
        found, s = timed(hog, load(path))
        hog_s.append(s)
        if not found:
            missed.append(path)
    report["first_pass"] = {
        "photos": len(hog_s),
        "missed": [str(p.relative_to(FACES)) for p in missed],
        "p50_s": round(float(np.median(hog_s)), 3),
        "max_s": round(max(hog_s), 3),
    }
    print(json.dumps(report["first_pass"]), file=sys.stderr, flush=True)

    truth = annotated()
    rows = []
    for b in budgets:
        detector, hits, total, seconds = cnn(b), 0, 0, 0.0
        for name, boxes in truth.items():
            found, s = timed(detector, load(FACES / "multi-face" / name))
            hits, total, seconds = hits + recall(boxes, found), total + len(boxes), seconds + s
        rows.append({"budget_mp": b, "recall": f"{hits}/{total}", "s": round(seconds, 1)})
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    report["cnn_on_annotated"] = rows

    candidates: dict[str, Detector] = {"hog-u2@1600": HogDetector(upsample=2, max_side=1600)}
    candidates.update({f"cnn@{b:g}mp": cnn(b) for b in budgets})
    rows = []
    for name, detector in candidates.items():
        found_in, seconds = 0, []
        for path in missed:
            found, s = timed(detector, load(path))
            found_in += bool(found)
            seconds.append(s)
        rows.append(
            {
                "detector": name,
                "found_in": f"{found_in}/{len(missed)}",
                "max_s": round(max(seconds, default=0.0), 2),
                "total_s": round(sum(seconds), 1),
            }
        )
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    report["on_first_pass_misses"] = rows


if __name__ == "__main__":
    main()
