"""Ingest on Ray against the local runner, the driver's own cost per item, and the commit
rates a cluster's drivers reach against the catalog and the index.

    .venv/bin/python benchmarks/ray_ingest.py speed   [--photos DIR] [--count 24]
    .venv/bin/python benchmarks/ray_ingest.py memory  [--items 1000000]
    .venv/bin/python benchmarks/ray_ingest.py inserts [--pg-url URL] [--writers 1,2,4]

speed:   images/s of one source of real photos (the smallest --count of DIR) with the local
         runner (1 process, then a pool of 2) and the Ray runner (1 and 2 actors on a Ray
         started in-process), each into a fresh SQLite + FAISS home; ratios to local-1.
         Times are whole ingests (actor start and model load included).
memory:  the driver's peak RSS over a generated source of --items tiny unique PNGs (1x1
         pixel, so no face detection runs: what is left is the runner's own work: listing,
         batching, Ray tasks, commits into SQLite), 2 Ray actors, batches of 256. Each size
         runs in a fresh process; reported: RSS before the ingest, peak, bytes per item.
inserts: faces/s of catalog record() + index add for batches of 64 one-face images, one
         writer and several (processes, each its own connections): PostgreSQL + milvus-lite
         and SQLite + FAISS. Each image carries a random perceptual hash, as an ingest
         records one per image (so record() links photo groups); --no-phash leaves it
         out. milvus-lite is one local file: several writer processes get their own file
         each (they cannot share one); a real Milvus server takes writers from every node
         on one collection.

Every figure in docs/SCALING.md was measured on a 2-core box shared with other work; they
are noisy. Output: one JSON object per measurement.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import multiprocessing as mp
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
DEFAULT_PHOTOS = HERE.parent.parent / "shared" / "faces" / "deepface-pairs" / "images"


def emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


# -- speed ---------------------------------------------------------------------------------


def _smallest(folder: Path, count: int, into: Path) -> Path:
    into.mkdir(parents=True)
    files = sorted(
        (p for p in folder.iterdir() if p.suffix.lower() in {".jpg", ".png"}),
        key=lambda p: p.stat().st_size,
    )
    for p in files[:count]:
        shutil.copy(p, into / p.name)
    return into


def _ingest_once(tmp: Path, photos: Path, label: str, workers: int, ray_actors: int) -> float:
    from faceindex.config import Settings
    from faceindex.engine import Engine
    from faceindex.pipeline.ray_runner import RayRunner
    from faceindex.pipeline.runner import run_ingest
    from faceindex.sources.folder import FolderSource
    from faceindex.vision.factory import model_tag

    settings = Settings.load(tmp / label, workers=workers)
    with Engine.open(settings, create=True) as engine:
        rec = engine.add_source(
            "p", path=str(photos), owner="bench", legal_basis="consent", retention_days=1
        )
        kw = dict(
            settings=settings,
            catalog=engine.catalog,
            index=engine.index,
            source=FolderSource(str(photos)),
            source_id=rec.id,
            model=model_tag(settings, engine.pack),
        )
        if ray_actors:
            with RayRunner(settings, actors=ray_actors) as runner:
                summary = run_ingest(**kw, runner=runner)  # type: ignore[arg-type]
        else:
            summary = run_ingest(**kw)  # type: ignore[arg-type]
    return summary.images_new / summary.seconds


def speed(args: argparse.Namespace) -> None:
    import ray

    tmp = Path(tempfile.mkdtemp(prefix="ray-bench-"))
    try:
        photos = _smallest(args.photos, args.count, tmp / "photos")
        rates = {
            "local-1": _ingest_once(tmp, photos, "local-1", 1, 0),
            "local-2": _ingest_once(tmp, photos, "local-2", 2, 0),
        }
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        started = time.perf_counter()
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            object_store_memory=80 * 1024 * 1024,
            log_to_driver=False,
            logging_level="WARNING",
        )
        emit(what="ray.init", seconds=round(time.perf_counter() - started, 1))
        try:
            for actors in (1, 2):
                rates[f"ray-{actors}"] = _ingest_once(tmp, photos, f"ray-{actors}", 2, actors)
        finally:
            ray.shutdown()
        for label, rate in rates.items():
            emit(
                what="speed",
                runner=label,
                images=args.count,
                images_per_s=round(rate, 2),
                ratio_to_local_1=round(rate / rates["local-1"], 2),
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# -- memory --------------------------------------------------------------------------------


def _tiny_png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (1, 1), (90, 90, 90)).save(buf, "PNG")
    return buf.getvalue()


TINY = _tiny_png()


@dataclass(frozen=True)
class GeneratedSource:
    """``count`` items of 1x1 PNGs, unique bytes each (a counter after the IEND chunk, which
    decoders ignore); generated as listed, never held as a list."""

    count: int
    uri: str
    kind: str = "folder"

    def items(self) -> Iterator["SourceItem"]:  # noqa: F821, UP037
        from faceindex.sources.base import SourceItem

        for i in range(self.count):
            yield SourceItem(f"gen/{i:09d}.png", len(TINY) + 8, 0.0)

    def read(self, item: "SourceItem") -> bytes:  # noqa: F821, UP037
        return TINY + int(item.locator[4:13]).to_bytes(8, "big")


def _rss_kb() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def memory_child(items: int, actors: int) -> None:
    import ray

    from faceindex.config import Settings
    from faceindex.engine import Engine
    from faceindex.pipeline.ray_runner import RayRunner
    from faceindex.pipeline.runner import run_ingest

    tmp = Path(tempfile.mkdtemp(prefix="ray-mem-"))
    try:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        ray.init(
            num_cpus=actors,
            include_dashboard=False,
            log_to_driver=False,
            object_store_memory=80 * 1024 * 1024,
            logging_level="WARNING",
        )
        settings = Settings.load(tmp / "home", workers=actors, batch_size=256)
        with Engine.open(settings, create=True) as engine:
            rec = engine.add_source(
                "g", path=str(tmp), owner="bench", legal_basis="consent", retention_days=1
            )
            before = _rss_kb()
            with RayRunner(settings, actors=actors) as runner:
                summary = run_ingest(
                    settings=settings,
                    catalog=engine.catalog,
                    index=engine.index,
                    source=GeneratedSource(items, str(tmp)),
                    source_id=rec.id,
                    model="bench",
                    runner=runner,
                )
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        ray.shutdown()
        emit(
            what="driver-memory",
            items=items,
            actors=actors,
            images_new=summary.images_new,
            failed=len(summary.failed),
            seconds=round(summary.seconds, 1),
            items_per_s=round(items / summary.seconds),
            rss_before_mib=round(before / 1024),
            peak_rss_mib=round(peak / 1024),
            bytes_per_item=round((peak - before) * 1024 / items, 1),
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def memory(args: argparse.Namespace) -> None:
    for n in sorted({max(args.items // 10, 1), args.items}):
        subprocess.run(
            [
                sys.executable,
                __file__,
                "memory-child",
                "--items",
                str(n),
                "--actors",
                str(args.actors),
            ],
            check=True,
        )


# -- inserts -------------------------------------------------------------------------------

BATCH = 64


def _writer(
    catalog_url: str, index_url: str, batches: int, seed: int, phash: bool, out: mp.Queue
) -> None:
    from faceindex.backends import open_catalog, open_index
    from faceindex.catalog.base import ImageOutcome, NewSource
    from faceindex.types import BBox, DetectedFace, FaceQuality

    catalog = open_catalog(catalog_url)
    index = open_index(index_url, dim=128, metric="l2")
    src = catalog.add_source(
        NewSource(
            name=f"w{seed}-{uuid.uuid4().hex[:6]}",
            kind="folder",
            uri="/x",
            owner="b",
            legal_basis="consent",
            retention_days=1,
        )
    )
    rng = np.random.default_rng(seed)

    def one(i: int) -> ImageOutcome:
        face = DetectedFace(
            bbox=BBox(10, 20, 60, 70),
            landmarks=((1.0, 2.0),),
            detector="hog",
            detector_score=1.0,
            quality=FaceQuality(size=50, sharpness=100.0, pose=0.1, score=0.9),
            embedding=rng.normal(size=128).astype(np.float32),
            thumbnail=b"t" * 2000,
        )
        sha = hashlib.sha256(f"{seed}-{i}".encode()).hexdigest()
        h = (
            int(rng.integers(0, 2**63, dtype=np.int64)) * 2 + int(rng.integers(2))
            if phash
            else None
        )
        return ImageOutcome(src.id, f"{i}.jpg", 1000, 0.0, sha, 640, 480, (face,), phash=h)

    # How long record() waits for the generation row: the statement that takes it, timed
    # through the SQL catalogs' statement hook (a probe for this benchmark only).
    queued = [0.0]
    execute = catalog._execute  # type: ignore[attr-defined]

    def timed(sql: str, params: object) -> object:
        t = time.perf_counter()
        try:
            return execute(sql, params)
        finally:
            if sql.startswith("UPDATE catalog_state"):
                queued[0] += time.perf_counter() - t

    catalog._execute = timed  # type: ignore[attr-defined]
    started = time.perf_counter()
    faces, in_catalog, in_index = 0, 0.0, 0.0
    for b in range(batches):
        outcomes = [one(b * BATCH + i) for i in range(BATCH)]
        t0 = time.perf_counter()
        new = catalog.record(outcomes, "bench")
        t1 = time.perf_counter()
        index.add(np.array([i for i, _ in new]), np.stack([v for _, v in new]))
        in_catalog, in_index = in_catalog + t1 - t0, in_index + time.perf_counter() - t1
        faces += len(new)
    t1 = time.perf_counter()
    index.save()
    in_index += time.perf_counter() - t1
    out.put((faces, time.perf_counter() - started, in_catalog, in_index, queued[0]))
    index.close()
    catalog.close()


def inserts(args: argparse.Namespace) -> None:
    ctx = mp.get_context("spawn")
    backends = [("sqlite+faiss", None)]
    if args.pg_url:
        backends.insert(0, ("postgresql+milvus-lite", args.pg_url))
    for name, pg in backends:
        for writers in [int(w) for w in args.writers.split(",")]:
            tmp = Path(tempfile.mkdtemp(prefix="ray-ins-"))
            schema = f"bench_{uuid.uuid4().hex[:10]}"
            try:
                if pg:
                    sep = "&" if "?" in pg else "?"
                    catalog_url = f"{pg}{sep}schema={schema}"
                else:
                    catalog_url = f"sqlite://{tmp / 'catalog.db'}"
                queue: mp.Queue = ctx.Queue()
                procs = []
                for w in range(writers):
                    index_url = (
                        f"milvus-lite:///{tmp / f'faces{w}.db'}"
                        if pg
                        else f"faiss://{tmp / f'index{w}'}"
                    )
                    procs.append(
                        ctx.Process(
                            target=_writer,
                            args=(catalog_url, index_url, args.batches, w, args.phash, queue),
                        )
                    )
                for p in procs:
                    p.start()
                results = [queue.get(timeout=1200) for _ in procs]
                for p in procs:
                    p.join()
                faces = sum(r[0] for r in results)
                wall = max(r[1] for r in results)
                emit(
                    what="inserts",
                    backend=name,
                    writers=writers,
                    phash=args.phash,
                    faces=faces,
                    seconds=round(wall, 1),
                    faces_per_s=round(faces / wall),
                    # each writer's time in record() / in index add+save, the slowest's
                    catalog_faces_per_s=round(faces / max(r[2] for r in results)),
                    index_faces_per_s=round(faces / max(r[3] for r in results)),
                    # the share of the writers' record() time spent queued on the generation
                    queued_on_generation=round(
                        sum(r[4] for r in results) / sum(r[2] for r in results), 2
                    ),
                )
            finally:
                if pg:
                    import psycopg

                    with psycopg.connect(pg, autocommit=True) as conn:
                        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("speed")
    p.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS)
    p.add_argument("--count", type=int, default=24)
    p = sub.add_parser("memory")
    p.add_argument("--items", type=int, default=1_000_000)
    p.add_argument("--actors", type=int, default=2)
    p = sub.add_parser("memory-child")
    p.add_argument("--items", type=int, required=True)
    p.add_argument("--actors", type=int, default=2)
    p = sub.add_parser("inserts")
    p.add_argument("--pg-url", default=os.environ.get("FACEINDEX_TEST_PG_URL", ""))
    p.add_argument("--writers", default="1,2,4")
    p.add_argument("--batches", type=int, default=60)
    p.add_argument("--no-phash", dest="phash", action="store_false")
    args = parser.parse_args()
    if args.what == "speed":
        speed(args)
    elif args.what == "memory":
        memory(args)
    elif args.what == "memory-child":
        memory_child(args.items, args.actors)
    else:
        inserts(args)


if __name__ == "__main__":
    main()
