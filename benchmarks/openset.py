"""Calibrate the dlib model on ../shared/faces and measure open-set identification (issue 13).

    PYTHONPATH=src .venv/bin/python benchmarks/openset.py [--faces ../shared/faces]
        [--write-calibration] [--out benchmarks/openset.json]

Every labelled photo is embedded once with the engine's own analyzer and default settings
(HOG with the fallback chain, mirror on: the descriptors ingest stores), cached outside the
repository (/tmp/faceindex-openset), then:

1. the calibration: impostor pairs (different identities, across all labelled sets) and
   genuine pairs (same identity), fitted by ``fit_calibration``; with --write-calibration it
   becomes the package data the model ships;
2. quality vs false matches: the impostor tail and the genuine rate by the pair's lower
   quality, and open-set wrong-person matches by probe quality;
3. open set, each labelled set as gallery (first photo per person; every second person held
   out as non-mated), every face of the other sets and of multi-face/ as distractors, at
   five gallery sizes; bands from a calibration fitted *without* that set (leave-set-out),
   from the shipped one (in-sample), and today's fixed 0.6 (the baseline);
4. the levers (gap / ratio to the next person, Z-norm) against the raw distance, pooled;
5. the synthetic scale-up: the calibration's FMR curve applied to 1M and 100M faces.

Only aggregates are written: no descriptor of any real person leaves /tmp.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from faceindex.config import Settings
from faceindex.evaluation.embedding import FaceSample, embed_faces, largest
from faceindex.evaluation.openset import (
    FPIRS,
    LEVERS,
    Probe,
    Ranked,
    build_open_set,
    fnir_at_fpir,
    lever_scores,
    rank_all,
    scale_up,
    size_steps,
    summarise,
)
from faceindex.search.scoring import Decider
from faceindex.vision.calibration import (
    Calibration,
    data_name,
    fit_calibration,
    worst_of,
)
from faceindex.vision.embed import descriptor_name

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "src" / "faceindex" / "vision" / "data"
CACHE = Path("/tmp/faceindex-openset")
MATCH_QUALITY = Settings.model_fields["match_quality"].default
MIN_PAIRS = 10_000  # a set joins the worst-case calibration with this many pairs
SETS = ("att-orl", "yale-faces", "deepface-pairs", "face-recognition-knn")


class Fixed:
    """Today's band before issue 13: a fixed L2 distance, whatever the gallery holds."""

    def __init__(self, threshold: float = 0.6) -> None:
        self.threshold = threshold

    def decide(self, distance: float, gallery_size: int, quality: float = 1.0) -> str:
        return "match" if distance <= self.threshold else "no-match"


def labelled(faces: Path) -> dict[str, dict[str, list[Path]]]:
    """set -> identity -> photos, in file order."""
    out: dict[str, dict[str, list[Path]]] = {}
    for name in ("att-orl", "yale-faces", "face-recognition-knn"):
        root = faces / name
        out[name] = {
            p.name: sorted(f for f in p.iterdir() if f.is_file())
            for p in sorted(root.iterdir())
            if p.is_dir()
        }
    groups: dict[str, list[Path]] = {}
    with (faces / "deepface-pairs" / "derived_identity_groups.csv").open() as fh:
        for row in csv.DictReader(fh):
            # SOURCE.txt: img11_reflection.jpg (alone in g13) is a variant of img11, g00's.
            group = "g00" if row["file"] == "img11_reflection.jpg" else row["group_id"]
            groups.setdefault(group, []).append(faces / "deepface-pairs" / "images" / row["file"])
    out["deepface-pairs"] = {g: sorted(ps) for g, ps in sorted(groups.items())}
    return out


MIRROR = True  # --no-mirror measures the descriptors of a home with mirror = false


def embed(paths: list[Path]) -> dict[Path, list[FaceSample]]:
    CACHE.mkdir(parents=True, exist_ok=True)
    cache = CACHE / ("faces.npz" if MIRROR else "faces-no-mirror.npz")
    if cache.exists():
        z = np.load(cache, allow_pickle=False)
        out: dict[Path, list[FaceSample]] = {Path(p): [] for p in z["paths"]}
        for p, q, a, v in zip(z["face_path"], z["quality"], z["area"], z["vectors"], strict=True):
            out[Path(p)].append(FaceSample(float(q), int(a), v))
        if set(out) >= set(paths):
            return out
    t0 = time.perf_counter()
    settings = Settings.load(CACHE / "home", mirror=MIRROR)
    out = embed_faces(paths, settings)
    rows = [(str(p), f) for p, fs in out.items() for f in fs]
    np.savez(
        cache,
        paths=np.array([str(p) for p in out]),
        face_path=np.array([r[0] for r in rows]),
        quality=np.array([r[1].quality for r in rows]),
        area=np.array([r[1].area for r in rows]),
        vectors=np.stack([r[1].vector for r in rows]),
    )
    print(f"embedded {len(paths)} images in {time.perf_counter() - t0:.0f} s", flush=True)
    return out


def pair_distances(
    probes: dict[str, list[Probe]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(distance, same identity, lower quality of the two) over every pair of faces."""
    labels, vecs, qual = [], [], []
    for ident, ps in probes.items():
        for p in ps:
            labels.append(ident)
            vecs.append(p.vector)
            qual.append(p.quality)
    v = np.stack(vecs).astype(np.float64)
    lab = np.array(labels)
    q = np.array(qual)
    d = np.sqrt(np.maximum(((v[:, None, :] - v[None, :, :]) ** 2).sum(-1), 0))
    iu = np.triu_indices(len(v), 1)
    same = (lab[:, None] == lab[None, :])[iu]
    qmin = np.minimum(q[:, None], q[None, :])[iu]
    return d[iu], same, qmin


def calibrate_one(probes: dict[str, list[Probe]], what: str) -> Calibration:
    d, same, _ = pair_distances(probes)
    return fit_calibration(
        d[~same],
        d[same],
        model=descriptor_name(mirror=MIRROR, jitters=0),
        measured_on=what,
        identities=len(probes),
    )


def calibrate(per_set: dict[str, dict[str, list[Probe]]], what: str) -> Calibration:
    """The worst (highest FMR) of the sets' own calibrations, impostor pairs within each set:
    strangers photographed alike are the hard case; pairs across sets are far apart and,
    pooled, would dilute it (yale's own FMR at 0.45 is 8x the all-pairs one)."""
    cals = []
    for name, probes in per_set.items():
        n = sum(len(v) for v in probes.values())
        if n * (n - 1) // 2 >= MIN_PAIRS:  # a smaller set's tail is a guess from a few pairs
            cals.append(calibrate_one(probes, name))
    return worst_of(cals, measured_on=f"{what}: " + ", ".join(c.measured_on for c in cals))


def quality_study(probes: dict[str, list[Probe]], cal: Calibration) -> list[dict[str, float]]:
    d, same, qmin = pair_distances(probes)
    out = []
    for floor in (0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7):
        keep = qmin >= floor
        imp, gen = d[keep & ~same], d[keep & same]
        row: dict[str, float] = {"floor": floor, "impostor_pairs": int(len(imp))}
        for t in (0.45, 0.5, 0.55):
            row[f"fmr@{t}"] = float((imp <= t).mean()) if len(imp) else float("nan")
            row[f"tmr@{t}"] = float((gen <= t).mean()) if len(gen) else float("nan")
        row["genuine_pairs"] = int(len(gen))
        out.append(row)
    return out


def crowd_quality(
    probes: dict[str, list[Probe]], crowd: list[FaceSample]
) -> list[dict[str, float]]:
    """Crowd faces (nobody of the labelled sets) against every labelled face, by quality."""
    labelled = np.stack([p.vector for ps in probes.values() for p in ps]).astype(np.float64)
    out = []
    for lo, hi in ((0.0, 0.2), (0.2, 0.3), (0.3, 0.5), (0.5, 1.01)):
        faces = [f.vector for f in crowd if lo <= f.quality < hi]
        if not faces:
            continue
        c = np.stack(faces).astype(np.float64)
        d = np.sqrt(np.maximum(((c[:, None, :] - labelled[None, :, :]) ** 2).sum(-1), 0)).ravel()
        row = {"quality_from": lo, "quality_to": min(hi, 1.0), "faces": float(len(faces))}
        row.update({f"fmr@{t}": float((d <= t).mean()) for t in (0.45, 0.5, 0.55)})
        out.append(row)
    return out


def lever_table(rows_m: list[Ranked], rows_n: list[Ranked]) -> dict[str, dict[str, float | None]]:
    hit = np.array([r.hit_rank == 1 for r in rows_m])
    scores_m, scores_n = lever_scores(rows_m), lever_scores(rows_n)
    out = {}
    for lever in LEVERS:
        sm, sn = scores_m[lever], scores_n[lever]
        out[lever] = {f"{f:g}": fnir_at_fpir(sm, hit, sn, f) for f in (0.2, *FPIRS)}
        # No non-mated probe through: the threshold just below the closest stranger.
        out[lever]["0"] = float(1.0 - ((sm < sn.min()) & hit).mean())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--faces", type=Path, default=HERE.parents[1] / "shared" / "faces")
    ap.add_argument("--write-calibration", action="store_true")
    ap.add_argument("--out", type=Path, default=HERE / "openset.json")
    ap.add_argument("--no-mirror", action="store_true", help="descriptors without mirroring")
    args = ap.parse_args()
    global MIRROR
    MIRROR = not args.no_mirror

    sets = labelled(args.faces)
    crowd = sorted(p for p in (args.faces / "multi-face").iterdir() if p.suffix == ".jpg")
    all_paths = [p for s in sets.values() for ps in s.values() for p in ps] + crowd
    faces = embed(all_paths)

    def probes_of(name: str) -> dict[str, list[Probe]]:
        out = {}
        for ident, paths in sets[name].items():
            found = [f for p in paths if (f := largest(faces.get(p, [])))]
            out[f"{name}/{ident}"] = [Probe(f"{name}/{ident}", f.quality, f.vector) for f in found]
        return out

    per_set = {name: probes_of(name) for name in SETS}
    everyone = {k: v for s in per_set.values() for k, v in s.items()}
    no_face = {
        name: sum(not faces.get(p) for ps in sets[name].values() for p in ps) for name in SETS
    }
    shipped = calibrate(
        per_set,
        "../shared/faces (via benchmarks/openset.py), impostor pairs within each labelled set "
        f"of at least {MIN_PAIRS:,} pairs, the highest FMR of",
    )
    pooled_cal = calibrate_one(everyone, "every pair of every labelled set, pooled")
    if args.write_calibration:
        DATA.mkdir(parents=True, exist_ok=True)
        shipped.save(DATA / data_name(shipped.model))
    result: dict[str, object] = {
        "images": len(all_paths),
        "no_face": no_face,
        "calibration": {
            "identities": shipped.identities,
            "impostor_pairs": shipped.impostor_pairs,
            "genuine_pairs": shipped.genuine_pairs,
            "tail": shipped.tail,
            "fmr": {f"{d:.2f}": shipped.fmr_at(d) for d in (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6)},
            "tmr": {f"{d:.2f}": shipped.tmr_at(d) for d in (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6)},
        },
        "quality": quality_study(everyone, shipped),
        "crowd_quality": crowd_quality(everyone, [f for p in crowd for f in faces.get(p, [])]),
    }

    pooled: dict[str, tuple[list[Ranked], list[Ranked]]] = {}
    genuine: list[float] = []
    runs = {}
    for name in SETS:
        people = per_set[name]
        others = [
            Probe("", f.quality, f.vector)
            for other in SETS
            if other != name
            for ps in sets[other].values()
            for p in ps
            for f in faces.get(p, [])
        ]
        # Crowd photos that show enrolled people are no distractors: two show knn people
        # (multi-face/README), and deepface_*.jpg come from deepface's repository, as the
        # people of deepface-pairs do.
        if name != "face-recognition-knn":
            mixed = "deepface_" if name == "deepface-pairs" else "\0"
            others += [
                Probe("", f.quality, f.vector)
                for p in crowd
                if not p.name.startswith(mixed)
                for f in faces.get(p, [])
            ]
        held = set(list(people)[1::2])
        gallery, mated, nonmated = build_open_set(people, others, held)
        loo = calibrate(
            {k: v for k, v in per_set.items() if k != name}, f"the sets other than {name}"
        )
        bands = {
            "leave-set-out": Decider(loo, match_quality=MATCH_QUALITY),
            "shipped": Decider(shipped, match_quality=MATCH_QUALITY),
            "shipped, no quality rule": Decider(shipped),
            "all pairs pooled": Decider(pooled_cal, match_quality=MATCH_QUALITY),
            "leave-set-out, no quality rule": Decider(loo),
            "fixed-0.6": Fixed(),
        }
        runs[name] = {}
        for label, b in bands.items():
            reports = []
            for count in size_steps(len(gallery.distractors)):
                rows_m = rank_all(gallery, mated, b, count)
                rows_n = rank_all(gallery, nonmated, b, count)
                n = len(gallery.enrolled) + count
                reports.append(asdict(summarise(n, len(gallery.enrolled), count, rows_m, rows_n)))
                if count == len(gallery.distractors):
                    pm, pn = pooled.setdefault(label, ([], []))
                    pm += rows_m
                    pn += rows_n
                    if label == "shipped":
                        genuine += [r.d_true for r in rows_m]
            runs[name][label] = reports
        print(f"{name}: {len(mated)} mated, {len(nonmated)} non-mated probes", flush=True)
    result["open_set"] = runs
    result["pooled_levers"] = lever_table(*pooled["shipped"])
    result["false_matches"] = {
        label: [
            {"d1": r.d1, "probe_quality": r.quality, "rank1_quality": r.rank1_quality}
            for r in rn
            if r.band == "match"
        ]
        for label, (rm, rn) in pooled.items()
        if label != "fixed-0.6"
    }
    result["pooled"] = {
        label: asdict(summarise(0, 0, 0, rm, rn)) for label, (rm, rn) in pooled.items()
    }
    by_quality = []
    rm, _ = pooled["shipped"]
    for floor in (0.0, 0.3, 0.4, 0.5, 0.6):
        kept = [r for r in rm if r.quality >= floor]
        wrong = [r.hit_rank != 1 for r in kept]
        by_quality.append(
            {
                "floor": floor,
                "probes": len(kept),
                "rank1_wrong": float(np.mean(wrong) if kept else 0),
            }
        )
    result["probe_quality"] = by_quality
    result["scale_up"] = scale_up(
        Decider(shipped), np.array(genuine), (1_000, 10_000, 100_000, 1_000_000, 100_000_000)
    )
    args.out.write_text(json.dumps(result, indent=1, default=float) + "\n")
    print(json.dumps({k: result[k] for k in ("calibration", "pooled", "pooled_levers")}, indent=1))


if __name__ == "__main__":
    main()
