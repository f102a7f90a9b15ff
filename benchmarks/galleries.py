"""Benchmark galleries as chunks: written to a file and read back, or made on the fly,
with the exact top-K of some queries gathered over the chunks (``benchmarks/search.py``)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import synthetic

DIM, K, CHUNK = 128, 10, 500_000


def gallery(work: Path, n: int) -> Path:
    path = work / f"gallery-{n}.f32"
    if path.exists() and path.stat().st_size == n * DIM * 4:
        return path
    t0 = time.perf_counter()
    spread = synthetic.Spread.load()
    with open(path.with_suffix(".tmp"), "wb") as fh:
        for _, _, vecs in synthetic.gallery_chunks(spread, n, chunk=CHUNK):
            fh.write(vecs.tobytes())
    path.with_suffix(".tmp").rename(path)
    print(f"generated {n:,} vectors in {time.perf_counter() - t0:.0f} s -> {path}", flush=True)
    return path


def chunks(path: Path, n: int, chunk: int = CHUNK) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    with open(path, "rb") as fh:
        for start in range(0, n, chunk):
            take = min(chunk, n - start)
            vecs = np.fromfile(fh, dtype=np.float32, count=take * DIM).reshape(take, DIM)
            yield np.arange(start + 1, start + take + 1, dtype=np.int64), vecs


class TopK:
    """Exact top-K ids of some queries, over gallery chunks as they go by (faiss.knn)."""

    def __init__(self, queries: np.ndarray) -> None:
        self.queries = queries
        self.best_d = np.full((len(queries), K), np.inf, dtype=np.float32)
        self.best_i = np.full((len(queries), K), -1, dtype=np.int64)

    def update(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        import faiss

        d, i = faiss.knn(self.queries, vecs, K)
        all_d, all_i = np.hstack([self.best_d, d]), np.hstack([self.best_i, ids[i]])
        order = np.argsort(all_d, axis=1, kind="stable")[:, :K]
        self.best_d = np.take_along_axis(all_d, order, 1)
        self.best_i = np.take_along_axis(all_i, order, 1)


def ground_truth(path: Path, n: int, queries: np.ndarray) -> np.ndarray:
    """Exact top-K ids by streaming the gallery file through faiss.knn."""
    top = TopK(queries)
    for ids, vecs in chunks(path, n):
        top.update(ids, vecs)
    return top.best_i


def generated(n: int, top: TopK | None, clock: list[float]) -> Iterator[tuple[Any, Any]]:
    """The gallery made chunk by chunk as the index takes it (no gallery file: at 100M that
    file would be a second 51 GB copy). Ground truth, if asked, is gathered on the way; the
    time spent here is added to ``clock[0]`` so that the build time can leave it out."""
    made = synthetic.gallery_chunks(synthetic.Spread.load(), n, chunk=CHUNK)
    t_start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        try:
            ids, _, vecs = next(made)
        except StopIteration:
            return
        if top is not None:
            top.update(ids, vecs)
        clock[0] += time.perf_counter() - t0
        if ids[-1] // CHUNK % 20 == 0:
            print(
                f"  {ids[-1]:,} of {n:,} faces handed to the index after "
                f"{time.perf_counter() - t_start:.0f} s ({clock[0]:.0f} s making them)",
                flush=True,
            )
        yield ids, vecs
