"""Time and memory per item on the hostile corpus (tests/hostile.py), as an ingest worker.

    .venv/bin/python benchmarks/hostile.py [--large] [--timeout-s 120]

Builds the corpus in a temporary folder and runs every entry through the ingest stage
(read, decode, analyse: pipeline/stages.process_item) in this process, as one worker does,
with the default settings. Prints the slowest items, the per-item maximum time, and the
peak RSS of the process (models included) with the item that raised it. ``--large`` adds
the two costly valid images of issue 9 item 5: a 7700x7700 PNG with no face (59 MP, under
the 60 MP limit) and a 1600x1200 photo-sized noise JPEG; each sends the detector through
its whole fallback chain.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.hostile

from tests.hostile import build_folder  # noqa: E402

from faceindex.config import Settings  # noqa: E402
from faceindex.engine import build_analyzer  # noqa: E402
from faceindex.pipeline.stages import process_item  # noqa: E402
from faceindex.sources.folder import FolderSource  # noqa: E402


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def add_large(root: Path) -> None:
    (root / "large").mkdir()
    buf = io.BytesIO()
    Image.new("RGB", (7700, 7700), (128, 128, 128)).save(buf, "PNG")
    (root / "large" / "7700x7700-noface.png").write_bytes(buf.getvalue())
    noise = np.random.default_rng(0).integers(0, 256, (1200, 1600, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, "JPEG", quality=90)
    (root / "large" / "1600x1200-noise.jpg").write_bytes(buf.getvalue())


def build(root: Path, large: bool) -> None:
    build_folder(root)
    if large:
        add_large(root)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--large", action="store_true", help="add the two costly valid images")
    ap.add_argument("--timeout-s", type=float, default=None, help="ingest_item_timeout_s")
    args = ap.parse_args()
    overrides = {} if args.timeout_s is None else {"ingest_item_timeout_s": args.timeout_s}
    settings = Settings.load("/nonexistent-bench-home", **overrides)
    analyzer = build_analyzer(settings)
    baseline = rss_mb()
    rows = []
    with tempfile.TemporaryDirectory(prefix="hostile-bench-") as tmp:
        root = Path(tmp) / "corpus"
        # Built in a child process, so that the corpus's own buffers (a 64 MB text bomb
        # among them) do not count in this process's peak RSS.
        child = mp.get_context("spawn").Process(target=build, args=(root, args.large))
        child.start()
        child.join()
        source = FolderSource(str(root), max_bytes=settings.max_bytes)
        for item in source.items():
            before = rss_mb()
            started = time.perf_counter()
            out = process_item(
                source,
                1,
                item,
                analyzer,
                max_pixels=settings.max_pixels,
                max_bytes=settings.max_bytes,
                quality_floor=settings.quality_floor,
                min_face_size=settings.min_face_size,
                detect_max_side=settings.detect_max_side,
                timeout_s=settings.ingest_item_timeout_s,
            )
            status = "skipped" if out.skipped else "failed" if out.error else "ok"
            rows.append(
                {
                    "item": item.locator[:60],
                    "status": status,
                    "reason": (out.error or "")[:80],
                    "seconds": round(time.perf_counter() - started, 3),
                    "peak_rss_mb": round(rss_mb(), 1),
                    "raised_peak_mb": round(rss_mb() - before, 1),
                }
            )
    slowest = sorted(rows, key=lambda r: -float(r["seconds"]))[:8]
    print(f"{len(rows)} entries; models loaded: {baseline:.0f} MB RSS")
    print("slowest:")
    for r in slowest:
        print(f"  {r['seconds']:>8.3f} s  {r['status']:7s} {r['item']}  {r['reason']}")
    peak = max(rows, key=lambda r: float(r["raised_peak_mb"]))
    counts = {s: sum(r["status"] == s for r in rows) for s in ("ok", "failed", "skipped")}
    print(f"per-item max time: {slowest[0]['seconds']} s ({slowest[0]['item']})")
    print(
        f"peak worker RSS: {rows[-1]['peak_rss_mb']} MB; largest rise "
        f"{peak['raised_peak_mb']} MB on {peak['item']}"
    )
    print(f"outcomes: {counts}")
    print(json.dumps({"rows": rows, "counts": counts}))


if __name__ == "__main__":
    main()
