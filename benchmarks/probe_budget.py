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

``--draft`` measures the reduced decode instead (``vision/decode.py``, ``decode_reduced``: a
JPEG at least twice ``detect_max_side`` long decodes at 1/2, 1/4 or 1/8 by libjpeg's DCT
scaling; ``FaceAnalyzer.analyze_image`` cuts the chips from those pixels only when every
face there is at least the embedder's input side, else from a full decode). On the same
photos, the probe path as it was (full decode, then ``FaceAnalyzer.analyze`` with the probe
detector) against ``analyze_image`` now:

1. which photos are reduced, where their chips came from, and their decode and decode +
   analysis CPU seconds both ways;
2. faces found both ways (IoU >= 0.5, in the image's own pixels) and the descriptor shift
   of each in a reduced photo (all, and those under 100 px); that every other photo's faces
   are bit-identical; rank-1 of the labelled photos both ways;
3. a stress test, since only the largest photos are reduced with the default settings:
   every JPEG decoded at 1/2 and each ingest-chain face aligned and embedded from those
   pixels (its box halved), against the same face from the full decode: the shift by face
   size in the full image and by whether the face is at least the chip's side in the half
   pixels (the rule ``analyze_image`` follows), and rank-1 with half-size probes.
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
from faceindex.types import BBox
from faceindex.vision.analyze import FaceAnalyzer
from faceindex.vision.base import Detection, Detector
from faceindex.vision.decode import decode_image, decode_reduced
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
    return same_box(d.bbox, [f.bbox for f in found])


def same_box(box: BBox, boxes: list[BBox]) -> int | None:
    """The index of the box in ``boxes`` that frames the same face as ``box`` (IoU >= 0.5)."""
    best = max(range(len(boxes)), key=lambda j: box.iou(boxes[j]), default=None)
    return best if best is not None and box.iou(boxes[best]) >= 0.5 else None


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
    ap.add_argument("--only", default="", help="photos whose path holds this text only")
    ap.add_argument(
        "--repeat", type=int, default=1, help="--draft: time each reduced photo this often"
    )
    ap.add_argument(
        "--draft",
        action="store_true",
        help="instead: the probe path with and without reduced decode",
    )
    args = ap.parse_args()
    photos = [p for p in wild_photos() if args.only in str(p)][: args.limit or None]
    if not photos:
        raise SystemExit(f"no photos under {FACES} (see its README)")
    settings = Settings(home=Path("/nonexistent-probe-budget"))
    an = build_analyzer(settings)
    if args.draft:
        report = draft_report(an, photos, args.repeat)
        if args.json:
            args.json.write_text(json.dumps(report, indent=2))
        return
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


LIMITS = {"max_pixels": 60_000_000, "max_bytes": 1 << 28}
SMALL_FACE = 100  # px, shorter side of the box in the full image


def rank1(
    probes: dict[str, np.ndarray], gallery: dict[str, np.ndarray], who: dict[str, str]
) -> str:
    """How many probes have a photo of the same person nearest among the other photos."""
    right = 0
    for photo, vec in probes.items():
        others = [
            (float(np.linalg.norm(vec - g)), who[p]) for p, g in gallery.items() if p != photo
        ]
        right += min(others)[1] == who[photo]
    return f"{right}/{len(probes)}"


def size_bucket(px: int) -> str:
    return "<50" if px < 50 else "50-100" if px < 100 else "100-200" if px < 200 else ">=200"


def triple(values: list[float]) -> list[float]:
    return (
        [round(pct(values, 50), 4), round(pct(values, 95), 4), round(max(values), 4)]
        if values
        else []
    )


def probe_cpu(an: FaceAnalyzer, data: bytes, repeat: int) -> list[list[float]]:
    """CPU seconds of the probe path with a full decode and with ``analyze_image``, taken in
    turns ``repeat`` times: [min, median] of each."""
    full: list[float] = []
    reduced: list[float] = []
    for _ in range(repeat):
        t0 = time.process_time()
        an.analyze(decode_image(data, **LIMITS), thumbnails=False, detector=an.probe_detector)
        full.append(time.process_time() - t0)
        t0 = time.process_time()
        an.analyze_image(data, **LIMITS)
        reduced.append(time.process_time() - t0)
    return [[round(min(t), 3), round(float(np.median(t)), 3)] for t in (full, reduced)]


def draft_report(an: FaceAnalyzer, photos: list[Path], repeat: int = 1) -> dict[str, Any]:
    """The probe path with the reduced decode against the full decode (see the docstring)."""
    side = an.detect_max_side
    gallery: dict[str, np.ndarray] = {}
    who: dict[str, str] = {}
    probes: dict[str, dict[str, np.ndarray]] = {"full": {}, "reduced": {}, "half": {}}
    shift: list[float] = []
    shift_small: list[float] = []
    lost = extra = total = 0
    not_identical: list[str] = []  # photos not reduced whose faces changed at all
    by_chip: dict[str, list[float]] = {"under the chip": [], "at least the chip": []}
    reduced_rows: list[dict[str, Any]] = []
    half_shift: dict[str, list[float]] = {"<50": [], "50-100": [], "100-200": [], ">=200": []}
    for n, path in enumerate(photos, 1):
        data = path.read_bytes()
        t0 = time.process_time()
        rgb = decode_image(data, **LIMITS)
        t_decode_full = time.process_time() - t0
        old = an.analyze(rgb, thumbnails=False, detector=an.probe_detector)
        t_full = time.process_time() - t0
        t0 = time.process_time()
        small = decode_reduced(data, **LIMITS, min_side=side)
        t_decode_reduced = time.process_time() - t0
        t0 = time.process_time()
        new = list(an.analyze_image(data, **LIMITS).faces)
        t_reduced = time.process_time() - t0
        is_reduced = small.rgb.shape[:2] != rgb.shape[:2]
        total += len(old)
        matched: set[int] = set()
        for face in old:
            j = same_box(face.bbox, [f.bbox for f in new])
            if j is None:
                lost += 1
                continue
            matched.add(j)
            d = float(np.linalg.norm(face.embedding - new[j].embedding))
            if is_reduced:
                shift.append(d)
                if min(face.bbox.width, face.bbox.height) < SMALL_FACE:
                    shift_small.append(d)
        extra += len(new) - len(matched)
        if not is_reduced and (
            [f.bbox for f in old] != [f.bbox for f in new]
            or any((a.embedding != b.embedding).any() for a, b in zip(old, new, strict=True))
        ):
            not_identical.append(str(path.relative_to(FACES)))
        if is_reduced:
            scale = rgb.shape[1] / small.rgb.shape[1]
            small_face = any(min(f.bbox.width, f.bbox.height) / scale < an.chip_size for f in new)
            reduced_rows.append(
                {
                    "photo": str(path.relative_to(FACES)),
                    "size": f"{rgb.shape[1]}x{rgb.shape[0]}",
                    "decoded": f"{small.rgb.shape[1]}x{small.rgb.shape[0]}",
                    "faces": [len(old), len(new)],
                    "face_px": sorted(min(f.bbox.width, f.bbox.height) for f in old),
                    "chips_from": "full decode" if small_face else "reduced decode",
                    "decode_cpu_s": [round(t_decode_full, 3), round(t_decode_reduced, 3)],
                    "probe_cpu_s": [round(t_full, 3), round(t_reduced, 3)],
                    "probe_cpu_min_median_s": probe_cpu(an, data, repeat) if repeat > 1 else None,
                }
            )
        # The gallery holds what ingest found in the full decode.
        base = an.detector.detect(rgb)
        base_vecs = embed(an, rgb, base)
        person = identity(path)
        if person and len(base) == 1:
            who[str(path)] = person
            gallery[str(path)] = base_vecs[0]
            for name, faces in (("full", old), ("reduced", new)):
                if faces:
                    best = max(faces, key=lambda f: base[0].bbox.iou(f.bbox))
                    probes[name][str(path)] = best.embedding
        # Stress: this photo at 1/2 by the DCT, the same faces aligned from those pixels.
        half = decode_reduced(data, **LIMITS, min_side=-(-max(rgb.shape[:2]) // 2))
        if base and half.rgb.shape[:2] != rgb.shape[:2]:
            fx, fy = rgb.shape[1] / half.rgb.shape[1], rgb.shape[0] / half.rgb.shape[0]
            halved = [
                Detection(
                    BBox(
                        round(d.bbox.left / fx),
                        round(d.bbox.top / fy),
                        round(d.bbox.right / fx),
                        round(d.bbox.bottom / fy),
                    ),
                    d.score,
                    d.detector,
                )
                for d in base
            ]
            half_vecs = embed(an, half.rgb, halved)
            for d, h, v, hv in zip(base, halved, base_vecs, half_vecs, strict=True):
                moved = float(np.linalg.norm(v - hv))
                half_shift[size_bucket(min(d.bbox.width, d.bbox.height))].append(moved)
                big = min(h.bbox.width, h.bbox.height) >= an.chip_size
                by_chip["at least the chip" if big else "under the chip"].append(moved)
            if person and len(base) == 1:
                probes["half"][str(path)] = half_vecs[0]
        if n % 20 == 0:
            print(f"  {n} of {len(photos)} photos", flush=True)

    report: dict[str, Any] = {
        "photos": len(photos),
        "detect_max_side": side,
        "reduced_photos": reduced_rows,
        "faces_full_decode": total,
        "faces_lost": lost,
        "faces_extra": extra,
        "shift_p50_p95_max": triple(shift),
        "shift_under_100px_p50_p95_max": triple(shift_small),
        "faces_under_100px": len(shift_small),
        "photos_not_reduced_with_any_change": not_identical,
        "rank1": {name: rank1(probes[name], gallery, who) for name in ("full", "reduced")},
        "stress_half_decode": {
            "shift_by_face_px": {
                k: {"faces": len(v), "p50_p95_max": triple(v)} for k, v in half_shift.items()
            },
            "shift_by_half_face_against_chip": {
                k: {"faces": len(v), "p50_p95_max": triple(v)} for k, v in by_chip.items()
            },
            "chip_size": an.chip_size,
            "rank1_half_probes": rank1(probes["half"], gallery, who),
            "rank1_full_probes_same_photos": rank1(
                {p: gallery[p] for p in probes["half"]}, gallery, who
            ),
        },
    }
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
