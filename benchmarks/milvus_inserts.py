"""Insert rate into a real Milvus server against Milvus Lite, as the ingest commits faces.

    url=$(bash scripts/start-milvus.sh)
    .venv/bin/python benchmarks/milvus_inserts.py --milvus-uri "$url" [--writers 1,2,4]
    bash scripts/start-milvus.sh --stop

Each writer is its own process with its own client, adding batches of --batch faces
(64: what the pipeline commits per batch) of 128-d float32 vectors through
``MilvusIndex.add`` (an upsert), then ``save``; the clock runs from a barrier all writers
wait on (connecting and opening the collection are not timed) until the last writer is done.
On the server every writer adds to one collection (as Ray jobs on many nodes would); Milvus
Lite is one process's file, so each writer there has its own file. After each run the
collection's count is read back (Strong consistency) and must equal the faces added.
Kinds alternate round by round, so the server's and Lite's figures come from the same
window of a shared box. Output: one JSON object per run, then the server/Lite ratios of the
medians.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import queue as queue_mod
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

import numpy as np

DIM = 128


def emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def _writer(url: str, writer: int, batches: int, batch: int, start: Any, out: mp.Queue) -> None:
    from faceindex.index.milvus import MilvusIndex

    index = MilvusIndex.from_url(url, dim=DIM)
    rng = np.random.default_rng(writer)
    data = [
        (
            np.arange(batch, dtype=np.int64) + writer * 1_000_000_000 + b * batch + 1,
            rng.normal(size=(batch, DIM)).astype(np.float32),
        )
        for b in range(batches)
    ]
    start.wait()
    t0 = time.perf_counter()
    for ids, vecs in data:
        index.add(ids, vecs)
    index.save()
    out.put((writer, batches * batch, time.perf_counter() - t0))
    index.close()


def _urls(kind: str, server: str, writers: int, tmp: Path) -> list[str]:
    if kind == "milvus-lite":
        return [f"milvus-lite:///{tmp / f'faces{w}.db'}" for w in range(writers)]
    base = urlparse(server)
    name = f"bench_{uuid.uuid4().hex[:12]}"  # one collection shared by every writer
    query = base.query or "index=HNSW"
    return [urlunparse(base._replace(path=f"/{name}", query=query))] * writers


def _count_and_drop(kind: str, urls: list[str]) -> int:
    from faceindex.index.milvus import MilvusIndex

    total = 0
    for url in dict.fromkeys(urls):  # the server's writers share one collection
        index = MilvusIndex.from_url(url, dim=DIM)
        total += index.count()
        if kind == "milvus-server":
            index._client.drop_collection(index.collection)
        index.close()
    return total


def _collect(queue: mp.Queue, procs: list[Any]) -> list[tuple[int, int, float]]:
    """Every writer's result; a writer that died fails the run (the others would wait on
    the barrier for it forever)."""
    results: list[tuple[int, int, float]] = []
    deadline = time.monotonic() + 1200
    while len(results) < len(procs):
        try:
            results.append(queue.get(timeout=1))
        except queue_mod.Empty:
            dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            if dead or time.monotonic() > deadline:
                for p in procs:
                    p.kill()
                raise RuntimeError(f"a writer failed (exit codes {dead}) or timed out") from None
    for p in procs:
        p.join()
    return results


def run(kind: str, server: str, writers: int, batches: int, batch: int) -> dict[str, object]:
    ctx = mp.get_context("spawn")
    tmp = Path(tempfile.mkdtemp(prefix="milvus-ins-"))
    try:
        urls = _urls(kind, server, writers, tmp)
        if kind == "milvus-server":  # created once, not raced by the writers
            from faceindex.index.milvus import MilvusIndex

            MilvusIndex.from_url(urls[0], dim=DIM).close()
        start, queue = ctx.Barrier(writers), ctx.Queue()
        procs = [
            ctx.Process(target=_writer, args=(urls[w], w, batches, batch, start, queue))
            for w in range(writers)
        ]
        for p in procs:
            p.start()
        results = _collect(queue, procs)
        faces = sum(r[1] for r in results)
        wall = max(r[2] for r in results)
        counted = _count_and_drop(kind, urls)
        if counted != faces:
            raise RuntimeError(f"{kind}: {faces} faces added, {counted} counted")
        return {
            "kind": kind,
            "writers": writers,
            "batch": batch,
            "faces": faces,
            "seconds": round(wall, 2),
            "faces_per_s": round(faces / wall),
            "per_writer_faces_per_s": [round(r[1] / r[2]) for r in sorted(results)],
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--milvus-uri", required=True, help="milvus://host:port[/x?index=...]")
    ap.add_argument("--writers", default="1,2,4")
    ap.add_argument("--batches", type=int, default=60, help="per writer")
    ap.add_argument("--batch", type=int, default=64, help="faces per add (the pipeline's)")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    rates: dict[tuple[str, int], list[int]] = {}
    for _ in range(args.rounds):
        for writers in [int(w) for w in args.writers.split(",")]:
            for kind in ("milvus-server", "milvus-lite"):
                try:
                    got = run(kind, args.milvus_uri, writers, args.batches, args.batch)
                except RuntimeError as exc:  # reported, and left out of the medians
                    emit(what="milvus-inserts", kind=kind, writers=writers, error=str(exc))
                    continue
                emit(what="milvus-inserts", **got)
                rates.setdefault((kind, writers), []).append(int(got["faces_per_s"]))  # type: ignore[call-overload]
    for writers in [int(w) for w in args.writers.split(",")]:
        if not (rates.get(("milvus-server", writers)) and rates.get(("milvus-lite", writers))):
            continue
        server = statistics.median(rates[("milvus-server", writers)])
        lite = statistics.median(rates[("milvus-lite", writers)])
        emit(
            what="milvus-inserts-ratio",
            writers=writers,
            server_faces_per_s=round(server),
            lite_faces_per_s=round(lite),
            server_over_lite=round(server / lite, 2),
        )


if __name__ == "__main__":
    main()
