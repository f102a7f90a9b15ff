"""What the watchlist screen costs an ingest: new faces screened per second against W watches.

    PYTHONPATH=src .venv/bin/python benchmarks/watch_screen.py --faces 20000 --watches 100

A fresh engine home (SQLite catalog, in-memory index) gets ``--watches`` live watches of
``--templates`` descriptors each, then ``--faces`` new faces in ingest-sized batches (random
unit vectors: strangers to every watch, except one planted near each watch's first
descriptor). Times ``Watches.screen_new`` over all of them, as the ingest's closing screen
would run it (catalog reads, opt-out check, distances, bands, alerts and their audit
entries), and checks that exactly the planted faces alerted.
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from pathlib import Path

import numpy as np

from faceindex.catalog.base import ImageOutcome
from faceindex.catalog.watch_rows import NewWatch
from faceindex.config import Settings
from faceindex.engine import Engine
from faceindex.governance.service import Governance
from faceindex.types import BBox, DetectedFace, FaceQuality
from faceindex.vision.factory import model_tag


def _face(vec: np.ndarray) -> DetectedFace:
    return DetectedFace(
        bbox=BBox(10, 20, 60, 70),
        landmarks=((1.0, 2.0),),
        detector="bench",
        detector_score=1.0,
        quality=FaceQuality(size=50, sharpness=100.0, pose=0.0, score=0.9),
        embedding=vec,
        thumbnail=None,
    )


def _unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    v = rng.normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--faces", type=int, default=20000, help="new faces to screen")
    ap.add_argument("--watches", type=int, default=100, help="live watches")
    ap.add_argument("--templates", type=int, default=1, help="descriptors per watch")
    ap.add_argument("--batch", type=int, default=32, help="images per committed batch")
    ap.add_argument("--profile", action="store_true", help="print a cProfile of the screen")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.load(Path(tmp) / "home", workers=1, index_url="memory://")
        with Engine.open(settings, create=True) as eng, Governance.open(eng) as gov:
            dim, cat = eng.pack.dim, eng.catalog
            src = eng.add_source(
                "bench", path=tmp, owner="bench", legal_basis="consent", retention_days=30
            )
            firsts = []
            for w in range(args.watches):
                templates = _unit(rng, args.templates, dim)
                firsts.append(templates[0])
                cat.add_watch(
                    NewWatch(
                        owner="bench",
                        case_reference=f"C-{w}",
                        purpose="bench",
                        kind="photo",
                        model=model_tag(settings, eng.pack),
                        expires_at="2099-01-01T00:00:00+00:00",
                        templates=templates,
                        qualities=(0.9,) * args.templates,
                    )
                )
            vecs = _unit(rng, args.faces, dim)
            planted = rng.choice(args.faces, size=args.watches, replace=False)
            for w, at in enumerate(planted):  # one face 0.05 from each watch's descriptor
                vecs[at] = firsts[w] + 0.05 * _unit(rng, 1, dim)[0]
            for start in range(0, args.faces, args.batch):
                cat.record(
                    [
                        ImageOutcome(
                            src.id,
                            f"{i}.jpg",
                            1,
                            0.0,
                            hashlib.sha256(str(i).encode()).hexdigest(),
                            640,
                            480,
                            (_face(vecs[i]),),
                        )  # fmt: skip
                        for i in range(start, min(start + args.batch, args.faces))
                    ],
                    model_tag(settings, eng.pack),
                )
            t0 = time.perf_counter()
            if args.profile:
                import cProfile

                cProfile.runctx("gov.watchlist.screen_new()", globals(), locals(), sort="cumtime")
                return
            report = gov.watchlist.screen_new()
            secs = time.perf_counter() - t0
    print(
        f"{report.faces} new faces x {args.watches} watches x {args.templates} descriptors: "
        f"{secs:.2f} s, {report.faces / secs:,.0f} faces/s, {report.alerts} alerts "
        f"(planted {args.watches})"
    )
    if report.alerts != args.watches:
        raise SystemExit("the planted faces and the alerts differ")


if __name__ == "__main__":
    main()
