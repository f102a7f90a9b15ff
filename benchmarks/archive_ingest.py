"""Zip ingest throughput against the number of members (issue 9, item 10).

    .venv/bin/python benchmarks/archive_ingest.py --members 2000,20000 --mode read,ingest

Builds a zip of N distinct 8x8 PNG members in a temporary folder, then measures:

- ``read``: ArchiveSource.read over every member in order (the source alone), for at most
  ``--budget-s`` seconds; items/s over the members read. Reopening the zip per member
  (parsing its whole central directory each time) made this fall with N.
- ``ingest``: a real ``Engine.ingest`` of the archive into a temporary home with
  ``--workers`` processes (catalog and index writes included). 8x8 images are too small to
  hold a face, so the stage answers "no face" without calling dlib: the figure is the
  source and pipeline overhead, not detection.

Prints one line per (mode, N) and a JSON list at the end.
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image


def build_zip(path: Path, members: int) -> None:
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for i in range(members):
            buf = io.BytesIO()
            Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(buf, "PNG")
            zf.writestr(f"d{i // 1000:03d}/m{i:06d}.png", buf.getvalue())


def bench_read(path: Path, budget_s: float) -> dict[str, float]:
    from faceindex.sources.archive import ArchiveSource

    src = ArchiveSource(str(path))
    items = list(src.items())
    started = time.perf_counter()
    done = 0
    for item in items:
        src.read(item)
        done += 1
        if time.perf_counter() - started > budget_s:
            break
    secs = time.perf_counter() - started
    return {"items": done, "seconds": round(secs, 2), "items_per_s": round(done / secs, 1)}


def bench_ingest(path: Path, home: Path, workers: int) -> dict[str, float]:
    from faceindex.config import Settings
    from faceindex.engine import Engine

    with Engine.open(Settings.load(home, workers=workers), create=True) as engine:
        engine.add_source(
            "bench", path=str(path), owner="bench", legal_basis="consent", retention_days=1
        )
        summary = engine.ingest("bench")
    n = summary.images_new + len(summary.failed)
    return {
        "items": n,
        "seconds": round(summary.seconds, 2),
        "items_per_s": round(n / summary.seconds, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--members", default="2000,20000", help="comma-separated member counts")
    ap.add_argument("--mode", default="read,ingest", help="read, ingest or both")
    ap.add_argument("--budget-s", type=float, default=60.0, help="read mode: time per N")
    ap.add_argument("--workers", type=int, default=2, help="ingest mode: processes")
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="archive-bench-") as tmp:
        for n in (int(x) for x in args.members.split(",")):
            path = Path(tmp) / f"members-{n}.zip"
            build_zip(path, n)
            for mode in args.mode.split(","):
                if mode == "read":
                    got = bench_read(path, args.budget_s)
                else:
                    got = bench_ingest(path, Path(tmp) / f"home-{n}", args.workers)
                row = {"mode": mode, "members": n, **got}
                print(
                    f"{mode:6s} {n:>7d} members: {got['items_per_s']:>9.1f} items/s "
                    f"({got['items']} items in {got['seconds']} s)",
                    flush=True,
                )
                results.append(row)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
