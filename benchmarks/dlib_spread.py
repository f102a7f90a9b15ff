"""Measure how real dlib descriptors spread, so the synthetic galleries can match them.

Embeds a labelled subset of ../shared/faces with the engine's own models and writes
benchmarks/dlib_spread.json: same-person and different-person distance percentiles, and
the eigenvalue spectra of the between-identity and within-identity covariances. Only these
aggregates are written (no descriptor of any real person leaves this script).

    .venv/bin/python benchmarks/dlib_spread.py [--faces ../shared/faces] [--per-person 6]
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from faceindex.config import Settings
from faceindex.engine import build_analyzer
from faceindex.vision.decode import decode_image

HERE = Path(__file__).resolve().parent


def labelled_images(faces: Path, per_person: int) -> list[tuple[str, Path, bool]]:
    """(identity, path, pre-cropped) for a balanced subset of the labelled folders."""
    out: list[tuple[str, Path, bool]] = []
    for subject in sorted((faces / "yale-faces").glob("subject*")):
        out += [(f"yale/{subject.name}", p, False) for p in sorted(subject.iterdir())[:per_person]]
    groups = faces / "deepface-pairs" / "derived_identity_groups.csv"
    with groups.open() as fh:
        for row in csv.DictReader(fh):
            path = faces / "deepface-pairs" / "images" / row["file"]
            out.append((f"deepface/{row['group_id']}", path, False))
    for person in sorted(p for p in (faces / "face-recognition-knn").iterdir() if p.is_dir()):
        out += [(f"knn/{person.name}", p, False) for p in sorted(person.iterdir())]
    for subject in sorted((faces / "att-orl").glob("s*"))[:20]:
        imgs = sorted(subject.glob("*.pgm"))[: max(2, per_person // 2)]
        out += [(f"att/{subject.name}", p, True) for p in imgs]
    return out


def embed_all(items: list[tuple[str, Path, bool]]) -> dict[str, list[np.ndarray]]:
    home = Path("/tmp/faceindex-spread-home")
    normal = build_analyzer(Settings.load(home))
    whole = build_analyzer(Settings.load(home, detector="whole"))
    by_person: dict[str, list[np.ndarray]] = defaultdict(list)
    for ident, path, cropped in items:
        rgb = decode_image(path.read_bytes(), max_pixels=60_000_000, max_bytes=64 << 20)
        faces = (whole if cropped else normal).analyze(rgb)
        if faces:
            by_person[ident].append(max(faces, key=lambda f: f.bbox.area).embedding)
    return {k: v for k, v in by_person.items() if len(v) >= 2}


def pct(values: np.ndarray) -> dict[str, float]:
    qs = (1, 5, 25, 50, 75, 95, 99)
    return {f"p{q}": round(float(np.percentile(values, q)), 4) for q in qs}


def summarise(by_person: dict[str, list[np.ndarray]]) -> dict[str, object]:
    names = sorted(by_person)
    vecs = np.concatenate([np.stack(by_person[n]) for n in names]).astype(np.float64)
    labels = np.concatenate([[i] * len(by_person[n]) for i, n in enumerate(names)])
    d = np.sqrt(np.maximum(((vecs[:, None, :] - vecs[None, :, :]) ** 2).sum(-1), 0))
    iu = np.triu_indices(len(vecs), 1)
    same = (labels[:, None] == labels[None, :])[iu]
    centers = np.stack([vecs[labels == i].mean(0) for i in range(len(names))])
    within = vecs - centers[labels]
    w_eig = np.linalg.eigvalsh(np.cov(within.T, bias=False))[::-1]
    b_eig = np.linalg.eigvalsh(np.cov(centers.T, bias=False))[::-1]
    return {
        "identities": len(names),
        "descriptors": len(vecs),
        "norm": pct(np.linalg.norm(vecs, axis=1)),
        "same_person": pct(d[iu][same]),
        "different_people": pct(d[iu][~same]),
        "within_eigenvalues": [round(float(x), 8) for x in np.maximum(w_eig, 0)],
        "between_eigenvalues": [round(float(x), 8) for x in np.maximum(b_eig, 0)],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--faces", type=Path, default=HERE.parents[1] / "shared" / "faces")
    ap.add_argument("--per-person", type=int, default=6)
    ap.add_argument("--out", type=Path, default=HERE / "dlib_spread.json")
    args = ap.parse_args()
    items = labelled_images(args.faces, args.per_person)
    t0 = time.perf_counter()
    by_person = embed_all(items)
    summary = summarise(by_person)
    summary["images_tried"] = len(items)
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    args.out.write_text(json.dumps(summary, indent=1) + "\n")
    for key in ("identities", "descriptors", "norm", "same_person", "different_people"):
        print(key, summary[key])


if __name__ == "__main__":
    main()
