"""The exact FAISS kind: ``IndexIDMap2`` over ``IndexFlatL2``/``IndexFlatIP`` in faces.faiss.

Every vector sits in RAM (4 bytes per dimension); a search is one pass over all of them,
which FAISS does at memory speed. Saves are atomic (temporary file, fsync, rename).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from faceindex.errors import StorageError
from faceindex.index.base import Metric, as_ids
from faceindex.index.faiss_options import atomic_write

__all__ = ["FLAT_FILE", "FlatStore", "empty_result", "load_faiss"]

log = logging.getLogger(__name__)
FLAT_FILE = "faces.faiss"
FEW_QUERIES = 8  # up to this many queries per call take the BLAS path


def load_faiss() -> Any:
    from faceindex.errors import MissingDependency

    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - faiss-cpu is a core dependency
        raise MissingDependency("FAISS is not installed: pip install faiss-cpu") from exc
    return faiss


def empty_result(n: int, k: int, metric: Metric) -> tuple[np.ndarray, np.ndarray]:
    fill = np.inf if metric == "l2" else -np.inf
    return np.full((n, k), fill, dtype=np.float32), np.full((n, k), -1, dtype=np.int64)


class FlatStore:
    def __init__(self, directory: Path, dim: int, metric: Metric) -> None:
        self._faiss = load_faiss()
        self.dim, self.metric, self.directory = dim, metric, directory
        self.path = directory / FLAT_FILE
        self.dirty = False
        self._cache: tuple[np.ndarray, np.ndarray] | None = None  # (ids, squared norms)
        if self.path.exists():
            try:
                self.index = self._faiss.read_index(str(self.path))
            except RuntimeError as exc:
                raise StorageError(f"cannot read FAISS index {self.path}: {exc}") from exc
            if self.index.d != dim:
                raise StorageError(f"{self.path} holds {self.index.d}-d vectors, not {dim}-d")
        else:
            f = self._faiss
            flat = f.IndexFlatL2(dim) if metric == "l2" else f.IndexFlatIP(dim)
            self.index = f.IndexIDMap2(flat)

    def add(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        self.remove(ids)
        self.index.add_with_ids(vecs, ids)
        self.dirty = True
        self._cache = None

    def remove(self, ids: np.ndarray) -> int:
        if not len(ids) or self.index.ntotal == 0:
            return 0
        # IDSelectorBatch: a hash set; IDSelectorArray scans the whole list for every vector
        removed = int(self.index.remove_ids(self._faiss.IDSelectorBatch(as_ids(ids))))
        self.dirty = self.dirty or removed > 0
        self._cache = None
        return removed

    def search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self.index.ntotal == 0:
            return empty_result(len(q), k, self.metric)
        if len(q) <= FEW_QUERIES and self.index.ntotal > k:
            return self._search_few(q, k)
        dist, ids = self.index.search(q, k)
        if self.metric == "l2":
            dist = np.sqrt(np.maximum(dist, 0))
            dist[ids < 0] = np.inf
        return dist.astype(np.float32), ids.astype(np.int64)

    def _search_few(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """One BLAS pass over the stored vectors (read in place, no copy) and a partial sort.

        FAISS scans a single query on one thread; BLAS uses every core, which brings one
        query to within a few percent of the time a plain read of the vectors takes."""
        n = int(self.index.ntotal)
        flat = self._faiss.downcast_index(self.index.index)
        xb = self._faiss.rev_swig_ptr(flat.get_xb(), n * self.dim).reshape(n, self.dim)
        if self._cache is None:
            self._cache = (self.ids(), np.einsum("ij,ij->i", xb, xb))
        ids, norms = self._cache
        scores = xb @ q.T  # (n, nq)
        if self.metric == "l2":
            scores *= -2
            scores += norms[:, None]
            scores += np.einsum("ij,ij->i", q, q)[None, :]
            np.maximum(scores, 0, out=scores)
            key = scores
        else:
            key = -scores
        top = np.argpartition(key, k - 1, axis=0)[:k]
        order = np.take_along_axis(top, np.argsort(np.take_along_axis(key, top, 0), 0), 0)
        best = np.take_along_axis(scores, order, 0).T
        dist = np.sqrt(best) if self.metric == "l2" else best
        return dist.astype(np.float32), ids[order.T]

    def count(self) -> int:
        return int(self.index.ntotal)

    def ids(self) -> np.ndarray:
        return self._faiss.vector_to_array(self.index.id_map).astype(np.int64)

    def iter_live(self, chunk: int = 65536) -> Any:
        ids = self.ids()
        for start in range(0, len(ids), chunk):
            stop = min(start + chunk, len(ids))
            yield ids[start:stop], self.index.index.reconstruct_n(start, stop - start)

    def save(self) -> None:
        if not self.dirty and self.path.exists():
            return
        atomic_write(self.path, lambda tmp: self._faiss.write_index(self.index, str(tmp)))
        self.dirty = False
        log.debug("saved %d vectors to %s", self.index.ntotal, self.path)

    def ram_bytes(self) -> int:
        return int(self.index.ntotal) * (4 * self.dim + 8)

    def disk_bytes(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0
