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
from faceindex.index.rerank import exact_scan

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

    def search_within(
        self, q: np.ndarray, k: int, within: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact over the vectors of ``within`` only (read in place)."""
        if self.index.ntotal == 0:
            return empty_result(len(q), k, self.metric)
        ids, xb = self.ids(), self._stored()
        pos = np.flatnonzero(np.isin(ids, within))
        return exact_scan(q, [(ids[pos], xb[pos])], k, self.metric)

    def _stored(self) -> np.ndarray:
        """The stored vectors, (n, dim), read in place (no copy)."""
        n = int(self.index.ntotal)
        flat = self._faiss.downcast_index(self.index.index)
        return self._faiss.rev_swig_ptr(flat.get_xb(), n * self.dim).reshape(n, self.dim)

    def _search_few(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """One BLAS pass over the stored vectors (read in place, no copy), then the top k.

        FAISS scans a single query on one thread; BLAS uses every core. The top k comes
        from a threshold: the k-th best of every 64th score bounds the k-th best overall
        (those k are scores too), so one comparison pass leaves a few hundred candidates
        to sort instead of a partial sort over all n."""
        n = int(self.index.ntotal)
        xb = self._stored()
        if self._cache is None:
            self._cache = (self.ids(), np.einsum("ij,ij->i", xb, xb))
        ids, norms = self._cache
        dots = q @ xb.T  # (nq, n)
        dist = np.empty((len(q), k), dtype=np.float32)
        out = np.empty((len(q), k), dtype=np.int64)
        for row, dot in enumerate(dots):
            if self.metric == "l2":
                dot *= -2
                dot += norms  # |x|^2 - 2 x.q: the ranking key; |q|^2 is added to the top k
            else:
                np.negative(dot, out=dot)
            bound = np.partition(dot[::64], k - 1)[k - 1] if n >= 64 * k else np.inf
            cand = np.flatnonzero(dot <= bound) if np.isfinite(bound) else np.arange(n)
            top = cand[np.argsort(dot[cand], kind="stable")[:k]]
            best = dot[top]
            if self.metric == "l2":
                dist[row] = np.sqrt(np.maximum(best + float(q[row] @ q[row]), 0))
            else:
                dist[row] = -best
            out[row] = ids[top]
        return dist, out

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
