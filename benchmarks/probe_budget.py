"""A probe's first detection pass on a smaller copy: what it saves, and what it changes.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/probe_budget.py --budgets 0.6,0.8,1.0,1.2

Ingest detects with HOG at upsample 1 on a copy of at most 1600 px (1.92 MP for a 4:3
photo), and the gallery holds what that pass found. A probe may start on a copy of at most
``budget`` megapixels instead (falling back to the ingest chain, unchanged, when that finds
nothing). On every in-the-wild photo of ../shared/faces (multi-face, face-recognition-knn,
deepface-pairs), for the ingest chain and for each budget:

1. detection CPU seconds (``time.process_time``: dlib's HOG runs on one thread, so these are
   the seconds an idle core takes, whatever else the machine is doing), p50 / p95 / max;
2. faces: how many of the ingest chain's faces the budget finds too (IoU >= 0.5), and how
   many it finds that the ingest chain does not;
3. descriptor shift of each face found by both (Euclidean, the dlib distance), beside the
   shift the ingest chain itself shows when the photo is merely re-saved as JPEG q90: the
   noise floor a probe meets anyway;
4. identification of the labelled single-face photos (face-recognition-knn's folders,
   deepface-pairs' derived identity groups): each photo's probe face against every other
   labelled photo's ingest-chain face; rank-1 and the closest impostor and farthest mate
   distances, with ingest-chain probes and with budget probes.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from faceindex.config import Settings
from faceindex.vision.analyze import FaceAnalyzer
from faceindex.vision.base import Detection, Detector
from faceindex.vision.decode import decode_image
from faceindex.vision.detect import FallbackDetector, ProbeDetector, probe_budget
from faceindex.vision.factory import build_analyzer

sys.path.insert(0, str(Path(__file__).parent))
from probe_latency import FACES, wild_photos  # noqa: E402  (the same 112 photos)


def identity(path: Path) -> str | None:
    """The person in a labelled single-person photo, or None."""
    parts = path.relative_to(FACES).parts
    if parts[0] == "face-recognition-knn" and len(parts) == 3:
        return f"knn:{parts[1]}"
    if parts[0] == "deepface-pairs":
        return GROUPS.get(path.name)
    return None


def _groups() -> dict[str, str]:
    table = FACES / "deepface-pairs" / "derived_identity_groups.csv"
    if not table.exists():
        return {}
    with table.open() as f:
        return {row["file"]: f"deepface:{row['group_id']}" for row in csv.DictReader(f)}


GROUPS = _groups()


def same_face(d: Detection, found: list[Detection]) -> int | None:
    """The index of the detection in ``found`` that frames ``d``'s face (IoU >= 0.5)."""
    best = max(range(len(found)), key=lambda j: d.bbox.iou(found[j].bbox), default=None)
    return best if best is not None and d.bbox.iou(found[best].bbox) >= 0.5 else None


def embed(an: FaceAnalyzer, rgb: np.ndarray, found: list[Detection]) -> np.ndarray:
    if not found:
        return np.empty((0, 128), dtype=np.float32)
    marks = [d.landmarks for d in found]
    aligned = an.aligner.align(rgb, [d.bbox for d in found], marks if all(marks) else None)
    return np.asarray(an.embedder.embed([a.chip for a in aligned]), dtype=np.float32)


def detect(detector: Detector, rgb: np.ndarray) -> tuple[list[Detection], float]:
    t0 = time.process_time()
    found = detector.detect(rgb)
    return found, time.process_time() - t0


def budget_chain(ingest: FallbackDetector, budget_mp: float, upsample: int) -> ProbeDetector:
    """What a probe runs with ``probe_detect_max_pixels = budget_mp * 1e6``."""
    return probe_budget(ingest, upsample=upsample, max_pixels=int(budget_mp * 1e6))


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--budgets", default="0.6,0.8,1.0,1.2", help="megapixels, comma list")
    ap.add_argument("--limit", type=int, default=0, help="first N photos only (a quick look)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    photos = wild_photos()[: args.limit or None]
    if not photos:
        raise SystemExit(f"no photos under {FACES} (see its README)")
    settings = Settings(home=Path("/nonexistent-probe-budget"))
    an = build_analyzer(settings)
    ingest = an.detector
    assert isinstance(ingest, FallbackDetector)
    budgets = [float(b) for b in args.budgets.split(",")]
    chains: dict[str, Detector] = {"ingest": ingest}
    chains |= {f"{b:g}mp": budget_chain(ingest, b, settings.detect_upsample) for b in budgets}

    cpu: dict[str, list[float]] = {k: [] for k in chains}
    found_both = {k: 0 for k in chains}
    extra = {k: 0 for k in chains}
    shifts: dict[str, list[float]] = {k: [] for k in chains}
    resave: list[float] = []
    total_ingest = 0
    per_photo: list[dict[str, object]] = []
    labelled: dict[str, dict[str, np.ndarray]] = {k: {} for k in chains}
    who: dict[str, str] = {}
    for n, path in enumerate(photos, 1):
        rgb = decode_image(path.read_bytes(), max_pixels=60_000_000, max_bytes=1 << 28)
        base, secs = detect(ingest, rgb)
        cpu["ingest"].append(secs)
        base_vecs = embed(an, rgb, base)
        total_ingest += len(base)
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, "JPEG", quality=90)
        again = decode_image(buf.getvalue(), max_pixels=60_000_000, max_bytes=1 << 28)
        re_found = ingest.detect(again)
        re_vecs = embed(an, again, re_found)
        for i, d in enumerate(base):
            if (j := same_face(d, re_found)) is not None:
                resave.append(float(np.linalg.norm(base_vecs[i] - re_vecs[j])))
        person = identity(path)
        if person and len(base) == 1:
            who[str(path)] = person
            labelled["ingest"][str(path)] = base_vecs[0]
        for name, chain in chains.items():
            if name == "ingest":
                continue
            got, secs = detect(chain, rgb)
            cpu[name].append(secs)
            vecs = embed(an, rgb, got)
            matched: set[int] = set()
            for i, d in enumerate(base):
                if (j := same_face(d, got)) is not None:
                    found_both[name] += 1
                    matched.add(j)
                    shifts[name].append(float(np.linalg.norm(base_vecs[i] - vecs[j])))
            extra[name] += len(got) - len(matched)
            per_photo.append(
                {
                    "photo": str(path.relative_to(FACES)),
                    "chain": name,
                    "ingest_faces": len(base),
                    "ingest_cpu_s": round(cpu["ingest"][-1], 3),
                    "faces": len(got),
                    "kept": len(matched),
                    "cpu_s": round(secs, 3),
                    "by": sorted({d.detector for d in got}),
                }
            )
            if person and len(base) == 1 and len(got) >= 1:
                j = max(range(len(got)), key=lambda j: base[0].bbox.iou(got[j].bbox))
                labelled[name][str(path)] = vecs[j]
        if n % 20 == 0:
            print(f"  {n} of {len(photos)} photos", flush=True)

    gallery = labelled["ingest"]
    report: dict[str, object] = {
        "photos": len(photos),
        "ingest_faces": total_ingest,
        "labelled_single_face": len(gallery),
        "resave_shift_p50_p95_max": [
            round(pct(resave, 50), 4),
            round(pct(resave, 95), 4),
            round(max(resave), 4),
        ],
    }
    print(
        f"\n{len(photos)} photos, {total_ingest} faces found by the ingest chain; "
        f"re-saving as JPEG q90 moves them p50/p95/max {report['resave_shift_p50_p95_max']}"
    )
    header = (
        "chain     det CPU p50   p95    max  | faces kept  extra | shift p50  p95    max  "
        "| rank-1   closest impostor  farthest mate"
    )
    print(header)
    rows = {}
    for name in chains:
        probes = labelled[name]
        right = 0
        impostor: list[float] = []
        mate: list[float] = []
        for photo, vec in probes.items():
            others = [(p, g) for p, g in gallery.items() if p != photo]
            dists = [(float(np.linalg.norm(vec - g)), who[p]) for p, g in others]
            dists.sort()
            right += dists[0][1] == who[photo]
            impostor += [d for d, w in dists if w != who[photo]][:1]
            mate += [d for d, w in dists if w == who[photo]][:1]
        row: dict[str, Any] = {
            "cpu_p50_s": round(pct(cpu[name], 50), 3),
            "cpu_p95_s": round(pct(cpu[name], 95), 3),
            "cpu_max_s": round(max(cpu[name]), 3),
            "faces_kept": total_ingest if name == "ingest" else found_both[name],
            "extra_faces": extra[name],
            "shift_p50_p95_max": [
                round(pct(shifts[name], 50), 4) if shifts[name] else 0.0,
                round(pct(shifts[name], 95), 4) if shifts[name] else 0.0,
                round(max(shifts[name]), 4) if shifts[name] else 0.0,
            ],
            "rank1": f"{right}/{len(probes)}",
            "closest_impostor_min": round(min(impostor), 4) if impostor else None,
            "farthest_mate_max": round(max(mate), 4) if mate else None,
        }
        rows[name] = row
        s = row["shift_p50_p95_max"]
        print(
            f"{name:8}  {row['cpu_p50_s']:8.3f} {row['cpu_p95_s']:6.3f} {row['cpu_max_s']:6.3f}"
            f"  | {row['faces_kept']:5}/{total_ingest:<4} {row['extra_faces']:5} |"
            f" {s[0]:7.4f} {s[1]:6.4f} {s[2]:6.4f} | {row['rank1']:8}"
            f" {row['closest_impostor_min']!s:>10} {row['farthest_mate_max']!s:>14}"
        )
    report["chains"] = rows
    report["per_photo"] = per_photo
    changed = [r for r in per_photo if r["kept"] != r["ingest_faces"] or r["faces"] != r["kept"]]
    print("\nphotos where a budget changes the faces (ingest -> budget, kept):")
    for r in changed:
        print(
            f"  {r['chain']:6} {r['photo']:55} {r['ingest_faces']:3} -> {r['faces']:3},"
            f" kept {r['kept']:3}  cpu {r['ingest_cpu_s']:.3f} -> {r['cpu_s']:.3f}  {r['by']}"
        )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
