"""Does averaging more views of a face raise rank-1? (issue 13, measured, not shipped)

    PYTHONPATH=src .venv/bin/python benchmarks/multiview.py [--faces ../shared/faces]

For every labelled photo of ../shared/faces the engine's detector finds the faces and the
largest is described three ways: the shipped descriptor (5-point chip, averaged with its
mirror), the 68-point chip averaged with its mirror, and the mean of both (four ResNet
passes). Each is scored on the open set of benchmarks/openset.py (each labelled set as
gallery, the other sets as distractors, every second person held out), pooled:
rank-1, rank-10, and FNIR at FPIR 0.1 / 0.01 of a raw-distance threshold. Only aggregates
are printed; descriptors stay in /tmp.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import openset as O  # noqa: N812  (the sibling benchmark: same sets, same open set)

from faceindex.config import Settings
from faceindex.engine import build_analyzer
from faceindex.evaluation.openset import FPIRS, Probe, Ranked, build_open_set, rank_all
from faceindex.vision.align import CHIP_PADDING, CHIP_SIZE
from faceindex.vision.decode import decode_image
from faceindex.vision.models import DLIB_LANDMARKS_5, model_path

HERE = Path(__file__).resolve().parent
VIEWS = ("5pt+mirror (shipped)", "68pt+mirror", "5pt+68pt, both mirrored")


def describe(paths: list[Path]) -> dict[Path, list[tuple[float, list[np.ndarray]]]]:
    """(quality, one vector per view) of every face of each file."""
    import dlib

    cache = O.CACHE / "multiview.npz"
    if cache.exists():
        z = np.load(cache, allow_pickle=False)
        out: dict[Path, list[tuple[float, list[np.ndarray]]]] = {Path(p): [] for p in z["paths"]}
        for p, q, *vs in zip(z["face_path"], z["quality"], *z["views"], strict=True):
            out[Path(p)].append((float(q), list(vs)))
        return out
    settings = Settings.load(O.CACHE / "home", workers=1)
    analyzer = build_analyzer(settings)
    five = analyzer.aligner
    sixty_eight = dlib.shape_predictor(
        str(model_path(DLIB_LANDMARKS_5).with_name("shape_predictor_68_face_landmarks.dat"))
    )
    resnet = analyzer.embedder
    out = {}
    t0 = time.perf_counter()
    for path in paths:
        rgb = decode_image(path.read_bytes(), max_pixels=60_000_000, max_bytes=64 << 20)
        found = analyzer.analyze(rgb)
        out[path] = []
        if not found:
            continue
        face = max(found, key=lambda f: f.bbox.area)
        b = face.bbox
        rect = dlib.rectangle(b.left, b.top, b.right - 1, b.bottom - 1)
        chip68 = dlib.get_face_chip(
            rgb, sixty_eight(rgb, rect), size=CHIP_SIZE, padding=CHIP_PADDING
        )
        chip5 = five.align(rgb, [b])[0].chip
        v5, v68 = resnet.embed([chip5, np.asarray(chip68)])
        out[path].append((face.quality.score, [v5, v68, (v5 + v68) / 2]))
    print(f"described {len(paths)} images in {time.perf_counter() - t0:.0f} s", flush=True)
    rows = [(str(p), q, vs) for p, fs in out.items() for q, vs in fs]
    np.savez(
        cache,
        paths=np.array([str(p) for p in out]),
        face_path=np.array([r[0] for r in rows]),
        quality=np.array([r[1] for r in rows]),
        views=np.stack([np.stack([r[2][i] for r in rows]) for i in range(len(VIEWS))]),
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--faces", type=Path, default=HERE.parents[1] / "shared" / "faces")
    args = ap.parse_args()
    sets = O.labelled(args.faces)
    paths = [p for s in sets.values() for ps in s.values() for p in ps]
    faces = describe(paths)
    result = {}
    for view, name in enumerate(VIEWS):
        rows_m: list[Ranked] = []
        rows_n: list[Ranked] = []
        for gallery_set in O.SETS:
            people = {
                f"{gallery_set}/{ident}": [
                    Probe(f"{gallery_set}/{ident}", q, vs[view])
                    for p in ps
                    for q, vs in faces.get(p, [])[:1]
                ]
                for ident, ps in sets[gallery_set].items()
            }
            others = [
                Probe("", q, vs[view])
                for other in O.SETS
                if other != gallery_set
                for ps in sets[other].values()
                for p in ps
                for q, vs in faces.get(p, [])
            ]
            held = set(list(people)[1::2])
            gallery, mated, nonmated = build_open_set(people, others, held)
            count = len(gallery.distractors)
            rows_m += rank_all(gallery, mated, O.Fixed(), count)
            rows_n += rank_all(gallery, nonmated, O.Fixed(), count)
        levers = O.lever_table(rows_m, rows_n)["distance"]
        result[name] = {
            "mated": len(rows_m),
            "nonmated": len(rows_n),
            "rank1": float(np.mean([r.hit_rank == 1 for r in rows_m])),
            "rank10": float(np.mean([0 < r.hit_rank <= 10 for r in rows_m])),
            **{f"fnir@fpir{f:g}": levers[f"{f:g}"] for f in FPIRS},
        }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
