"""What following other processes' writes costs (index/synced.py), on a SQLite catalog.

    .venv/bin/python benchmarks/follow.py --faces 100000 --batch 1000 --work /tmp/fi-follow

1. The check every search and count makes when nothing changed: one read of the catalog's
   generation and of the FAISS directory's epoch file (per call, next to a bare count).
2. Catching up: another catalog object (another process) records ``--batch`` faces; the
   next count applies them (faces per second, embeddings read from the catalog).
3. Opening: reconciling from the saved stamp, against comparing every id.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np

from faceindex.catalog.base import ImageOutcome
from faceindex.catalog.sqlite import SqliteCatalog
from faceindex.index.faiss_index import FaissIndex
from faceindex.index.faiss_options import FaissOptions
from faceindex.index.synced import SyncedIndex
from faceindex.types import BBox, DetectedFace, FaceQuality

DIM = 128


def outcomes(source_id: int, start: int, n: int, rng: np.random.Generator) -> list[ImageOutcome]:
    vecs = rng.normal(0, 0.05, (n, DIM)).astype(np.float32)
    quality = FaceQuality(size=80, sharpness=100.0, pose=0.1, score=0.9)
    return [
        ImageOutcome(
            source_id, f"{start + i}.jpg", 1, 1.0, f"{start + i:064x}", 100, 100,
            (DetectedFace(BBox(0, 0, 80, 80), ((1.0, 1.0),), "hog", 1.0, quality, v, None),),
        )
        for i, v in enumerate(vecs)
    ]  # fmt: skip


def per_call_us(fn: object, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()  # type: ignore[operator]
    return 1e6 * (time.perf_counter() - t0) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--faces", type=int, default=100_000, help="gallery size")
    ap.add_argument("--batch", type=int, default=1000, help="faces another process adds")
    ap.add_argument("--work", type=Path, default=Path("/tmp/faceindex-follow"))
    args = ap.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    rng = np.random.default_rng(0)
    db = args.work / "catalog.db"
    writer = SqliteCatalog(db)
    from faceindex.catalog.base import NewSource

    source = writer.add_source(NewSource("bench", "folder", "/bench", "o", "consent", 30))
    t0 = time.perf_counter()
    for start in range(0, args.faces, 10_000):
        writer.record(outcomes(source.id, start, min(10_000, args.faces - start), rng), "m")
    print(f"catalog filled: {args.faces} faces in {time.perf_counter() - t0:.1f} s")

    reader = SqliteCatalog(db)
    flat = FaissOptions(kind="flat")
    index = SyncedIndex(FaissIndex(args.work / "idx", DIM, options=flat), reader, args.work / "idx")
    t0 = time.perf_counter()
    index.reconcile()
    print(f"first open (no stamp, every id compared, all added): {time.perf_counter() - t0:.2f} s")
    index.save()

    bare = per_call_us(index.inner.count, 20_000)
    checked = per_call_us(index.count, 20_000)
    print(f"count(): bare {bare:.1f} us, with the change check {checked:.1f} us per call")

    writer.record(outcomes(source.id, args.faces, args.batch, rng), "m")
    t0 = time.perf_counter()
    added, _ = index.refresh()
    dt = time.perf_counter() - t0
    print(f"catch-up: {added} faces from another writer in {1000 * dt:.1f} ms"
          f" ({added / dt:.0f} faces/s)")  # fmt: skip
    index.save()
    index.close()

    for label, full in (("from the stamp", False), ("every id", True)):
        again = SyncedIndex(
            FaissIndex(args.work / "idx", DIM), SqliteCatalog(db), args.work / "idx"
        )
        t0 = time.perf_counter()
        again.reconcile(full=full)
        print(f"reopen, reconcile {label}: {time.perf_counter() - t0:.3f} s")
        again.close()
    writer.close()


if __name__ == "__main__":
    main()
