"""Persons on ../shared/faces: clustering quality and the rank-1 of multi-photo templates.

    PYTHONPATH=src .venv/bin/python benchmarks/persons.py [--faces ../shared/faces]
        [--draws 5] [--out benchmarks/persons.json]

Every labelled photo (att-orl, yale-faces, deepface-pairs, face-recognition-knn: the sets of
benchmarks/openset.py) is embedded once with the engine's own analyzer and default settings
and cached with that benchmark's cache (/tmp/faceindex-openset); its largest face is one
gallery face. All sets go into one gallery (a real SQLite catalog and the in-memory index,
in a temporary folder), so strangers come from every set.

1. Clustering, through ``persons/build.py`` (the kNN graph from the index, k = the
   ``persons_neighbours`` setting) for Chinese whispers and gated components at the model
   pack's distances and around them: pairwise precision / recall / F1 (over pairs of faces
   put together), BCubed precision / recall / F1, persons found vs true identities, and an
   incremental run (half the gallery built, the other half placed by a second build).
2. Templates, through ``search/template.py``: for each identity with at least 4 photos,
   ``--draws`` random draws of one photo left in the gallery as its only mate and templates
   of m = 1, 2, 3 of its other photos (all its other photos out of the gallery; every photo
   of every other identity in it); rank-1 is the mate coming first, for best-of and mean,
   with the share of rank-1 mates called ``match`` under the m x N band correction and the
   count of wrong first faces called ``match``.

Only aggregates are printed and written: no descriptor leaves /tmp.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import openset as O  # noqa: N812  (the sibling benchmark: same sets, same cache)

from faceindex.catalog.base import ImageOutcome, NewSource
from faceindex.catalog.sqlite import SqliteCatalog
from faceindex.config import Settings
from faceindex.index.memory import MemoryIndex
from faceindex.persons.base import ClusterPolicy
from faceindex.persons.build import plan, policy_for
from faceindex.search.scoring import Decider
from faceindex.search.template import FUSIONS, match_template
from faceindex.types import BBox, DetectedFace, FaceQuality
from faceindex.vision.calibration import default_calibration
from faceindex.vision.embed import descriptor_name

HERE = Path(__file__).resolve().parent


def gallery(faces: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(identity per face, descriptors, quality): the largest face of every labelled photo."""
    sets = O.labelled(faces.resolve())
    paths = [p for groups in sets.values() for ps in groups.values() for p in ps]
    embedded = O.embed(paths)
    labels, vecs, quals = [], [], []
    for name, groups in sets.items():
        for ident, ps in groups.items():
            for p in ps:
                face = O.largest(embedded.get(p, []))
                if face is not None:
                    labels.append(f"{name}/{ident}")
                    vecs.append(face.vector)
                    quals.append(face.quality)
    return labels, np.stack(vecs).astype(np.float32), np.asarray(quals)


class Home:
    """A real catalog and the in-memory index holding the gallery (face ids 1..n in order)."""

    def __init__(self, folder: Path, vecs: np.ndarray, quals: np.ndarray, upto: int) -> None:
        self.catalog = SqliteCatalog(folder / "catalog.db")
        self.index = MemoryIndex(vecs.shape[1])
        self.src = self.catalog.add_source(NewSource("g", "folder", "/g", "o", "consent", 30))
        self.vecs, self.quals = vecs, quals
        self.add(0, upto)

    def add(self, start: int, stop: int) -> None:
        outs = [
            ImageOutcome(
                self.src.id, f"{i}", 1, 1.0, hashlib.sha256(str(i).encode()).hexdigest(), 1, 1,
                (DetectedFace(BBox(0, 0, 1, 1), (), "bench", 1.0,
                              FaceQuality(1, 1.0, 0.0, float(self.quals[i])), self.vecs[i], b""),),
            )
            for i in range(start, stop)
        ]  # fmt: skip
        for fid, v in self.catalog.record(outs, "bench"):
            self.index.add(np.array([fid]), v[None, :])


def scores(labels: list[str], clusters: list[list[int]]) -> dict[str, float]:
    """Pairwise and BCubed precision / recall / F1 of ``clusters`` (face indexes)."""
    n = len(labels)
    of = np.empty(n, dtype=np.int64)
    for c, members in enumerate(clusters):
        of[members] = c
    truth = np.array(labels)
    same_c = of[:, None] == of[None, :]
    same_t = truth[:, None] == truth[None, :]
    off = ~np.eye(n, dtype=bool)
    tp = float((same_c & same_t & off).sum())
    pp = tp / max(float((same_c & off).sum()), 1.0)
    pr = tp / max(float((same_t & off).sum()), 1.0)
    bp = float(((same_c & same_t).sum(1) / same_c.sum(1)).mean())
    br = float(((same_c & same_t).sum(1) / same_t.sum(1)).mean())

    def f1(p: float, r: float) -> float:
        return 2 * p * r / (p + r) if p + r else 0.0

    return {
        "pairwise_precision": round(pp, 4),
        "pairwise_recall": round(pr, 4),
        "pairwise_f1": round(f1(pp, pr), 4),
        "bcubed_precision": round(bp, 4),
        "bcubed_recall": round(br, 4),
        "bcubed_f1": round(f1(bp, br), 4),
        "persons": len(clusters),
        "identities": len(set(labels)),
        "singletons": sum(1 for c in clusters if len(c) == 1),
    }


def clusters_of(home: Home, policy: ClusterPolicy) -> list[list[int]]:
    """One fresh build (nothing written): face indexes per person."""
    return [[f - 1 for f in p.face_ids] for p in plan(home.catalog, home.index, policy).placements]


def clustering(folder: Path, labels: list[str], vecs: np.ndarray, quals: np.ndarray) -> list[dict]:
    cal = default_calibration(descriptor_name(mirror=True, jitters=0))
    k = Settings.model_fields["persons_neighbours"].default
    home = Home(folder / "all", vecs, quals, len(labels))
    rows = []
    links = (1e-4, 3e-4, 1e-3, 2e-3, 3e-3, 1e-2)
    grid = [("chinese-whispers", f, f) for f in links]
    grid += [("components", f, g) for f in links for g in sorted({f, 1e-2}) if g >= f]
    for method, link_fmr, gate_fmr in grid:
        policy = policy_for(cal, method, k, link_fmr=link_fmr, gate_fmr=gate_fmr)  # type: ignore[arg-type]
        t0 = time.perf_counter()
        found = clusters_of(home, policy)
        row = {"method": method, "link_fmr": link_fmr, "gate_fmr": gate_fmr,
               "edge": policy.edge, "gate": policy.gate, "neighbours": k}  # fmt: skip
        row |= scores(labels, found) | {"seconds": round(time.perf_counter() - t0, 2)}
        rows.append(row)
    # Incremental: half the gallery (shuffled) built, then the rest placed by a second build.
    order = np.random.default_rng(0).permutation(len(labels))
    lab, v, q = [labels[i] for i in order], vecs[order], quals[order]
    s = Settings.model_fields
    link, gate = s["persons_link_fmr"].default, s["persons_gate_fmr"].default
    for method in ("chinese-whispers", "components"):
        home2 = Home(folder / f"inc-{method}", v, q, len(lab) // 2)
        policy = policy_for(cal, method, k, link_fmr=link, gate_fmr=gate)  # type: ignore[arg-type]
        home2.catalog.assign_persons(plan(home2.catalog, home2.index, policy).placements)
        home2.add(len(lab) // 2, len(lab))
        home2.catalog.assign_persons(plan(home2.catalog, home2.index, policy).placements)
        found = [[f - 1 for f in p.face_ids] for p in home2.catalog.persons()]
        row = {"method": method, "link_fmr": link, "gate_fmr": gate, "edge": policy.edge,
               "gate": policy.gate, "neighbours": k, "incremental": True}  # fmt: skip
        rows.append(row | scores(lab, found))
    return rows


def templates(
    folder: Path, labels: list[str], vecs: np.ndarray, quals: np.ndarray, draws: int
) -> list[dict]:
    home = Home(folder / "tpl", vecs, quals, len(labels))
    decider = Decider(default_calibration(descriptor_name(mirror=True, jitters=0)))
    by_ident: dict[str, list[int]] = {}
    for i, ident in enumerate(labels):
        by_ident.setdefault(ident, []).append(i)
    rng = np.random.default_rng(7)
    # Identities with at least 4 photos: one stays in the gallery as the only mate, up to 3
    # others make the template; the rest of the identity's photos leave the gallery too.
    eligible = sorted(i for i, fs in by_ident.items() if len(fs) >= 4)
    tallies: Counter[tuple[int, str, str]] = Counter()
    for ident in eligible:
        for _ in range(draws):
            mate, *picked = (int(x) for x in rng.permutation(by_ident[ident])[:4])
            gone = [f + 1 for f in by_ident[ident] if f != mate]
            for m in (1, 2, 3):
                chosen = picked[:m]
                for fusion in FUSIONS if m > 1 else ("best-of",):
                    r = match_template(
                        home.catalog, home.index, vecs[chosen],
                        qualities=[float(quals[c]) for c in chosen], top_k=1,
                        decider=decider, fusion=fusion, exclude=gone,
                    )  # fmt: skip
                    top = r.matches[0]
                    right = top.face_id == mate + 1
                    tallies[(m, fusion, "queries")] += 1
                    tallies[(m, fusion, "rank1")] += right
                    tallies[(m, fusion, "right_match")] += right and top.decision == "match"
                    tallies[(m, fusion, "wrong_match")] += (not right) and top.decision == "match"
    rows = []
    for m in (1, 2, 3):
        for fusion in FUSIONS if m > 1 else ("best-of",):
            n = tallies[(m, fusion, "queries")]
            rows.append(
                {
                    "photos": m,
                    "fusion": fusion if m > 1 else "single",
                    "queries": n,
                    "identities": len(eligible),
                    "rank1": round(tallies[(m, fusion, "rank1")] / n, 4),
                    "rank1_called_match": round(tallies[(m, fusion, "right_match")] / n, 4),
                    "wrong_called_match": tallies[(m, fusion, "wrong_match")],
                }
            )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--faces", type=Path, default=HERE.parents[1] / "shared" / "faces")
    ap.add_argument("--draws", type=int, default=5, help="random templates per identity and m")
    ap.add_argument("--out", type=Path, default=None, help="also write the figures as JSON")
    args = ap.parse_args()
    t0 = time.perf_counter()
    labels, vecs, quals = gallery(args.faces)
    print(f"gallery: {len(labels)} faces of {len(set(labels))} identities", flush=True)
    with tempfile.TemporaryDirectory(prefix="faceindex-persons-") as tmp:
        clus = clustering(Path(tmp), labels, vecs, quals)
        print("\nclustering (pairwise P/R/F1, BCubed P/R/F1, persons/identities, singletons)")
        for r in clus:
            inc = " incremental" if r.get("incremental") else ""
            print(
                f"  {r['method']:<16} link FMR {r['link_fmr']:g} ({r['edge']:.3f}) gate "
                f"{r['gate_fmr']:g} ({r['gate']:.3f}){inc}: "
                f"pair {r['pairwise_precision']:.3f}/{r['pairwise_recall']:.3f}/"
                f"{r['pairwise_f1']:.3f}  bcubed {r['bcubed_precision']:.3f}/"
                f"{r['bcubed_recall']:.3f}/{r['bcubed_f1']:.3f}  "
                f"{r['persons']}/{r['identities']} persons, {r['singletons']} singletons"
            )
        tpl = templates(Path(tmp), labels, vecs, quals, args.draws)
    print("\ntemplates (rank-1; rank-1 mates called 'match'; wrong persons called 'match')")
    for r in tpl:
        print(
            f"  {r['photos']} photo(s) {r['fusion']:<8}: rank-1 {r['rank1']:.3f} "
            f"({r['queries']} queries, {r['identities']} identities); "
            f"called match {r['rank1_called_match']:.3f}; wrong called match "
            f"{r['wrong_called_match']}"
        )
    print(f"\n{time.perf_counter() - t0:.0f} s")
    if args.out:
        args.out.write_text(json.dumps({"clustering": clus, "templates": tpl}, indent=1) + "\n")


if __name__ == "__main__":
    main()
