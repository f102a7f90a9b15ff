"""The VectorIndex seam: every vector store (memory oracle, FAISS, Milvus) implements it.

Ids are the catalog's face ids (int64); the catalog is the source of truth and an index can
always be rebuilt from it. Distances come back in the embedder's own metric: for ``l2`` the
true (not squared) Euclidean distance, smaller is closer; for ``ip`` the inner product,
larger is closer. Missing results are padded with id -1.
"""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import numpy as np

__all__ = [
    "Capabilities",
    "Metric",
    "VectorIndex",
    "as_ids",
    "as_vectors",
    "as_within",
    "ascending",
]

ASCENDING_CHUNK = 1 << 16  # ids compared at a time (a 64 KB buffer)
ASCENDING_SPLIT = 1 << 20  # from this many ids the check is split over two threads

Metric = Literal["l2", "ip"]


@dataclass(frozen=True)
class Capabilities:
    exact: bool  # results equal brute force
    supports_delete: bool
    persistent: bool
    distributed: bool


@runtime_checkable
class VectorIndex(Protocol):
    dim: int
    metric: Metric
    capabilities: Capabilities

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors under ids; re-adding an id replaces its vector (idempotent)."""
        ...

    def remove(self, ids: np.ndarray) -> int:
        """Remove ids; returns how many were present."""
        ...

    def search(
        self, queries: np.ndarray, k: int, *, within: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(distances, ids), each (n_queries, k); ids are -1 where fewer than k exist.

        ``within``: only these ids may be returned (a case restricted to some sources). Where
        it is small the search is exact over just those vectors; else the index filters as
        it scans, with its usual recall."""
        ...

    def count(self) -> int: ...

    def ids(self) -> np.ndarray:
        """Every id held, int64, any order (used to reconcile with the catalog)."""
        ...

    def save(self) -> None:
        """Make everything added so far durable (atomic for file-based indexes)."""
        ...

    def close(self) -> None: ...


def as_vectors(vectors: np.ndarray, dim: int) -> np.ndarray:
    arr = np.ascontiguousarray(vectors, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise ValueError(f"expected vectors of shape (n, {dim}), got {arr.shape}")
    return arr


def as_ids(ids: np.ndarray | list[int]) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(ids, dtype=np.int64).reshape(-1))


def as_within(
    within: np.ndarray | list[int] | None, pool: Executor | None = None
) -> np.ndarray | None:
    """A ``within`` argument as sorted unique int64 ids (None: no restriction). The
    catalog's come sorted, so they are only checked: with ``pool``, a large set's halves on
    two threads."""
    if within is None:
        return None
    ids = as_ids(within)
    if len(ids) > 1 and not ascending(ids, pool):
        ids = np.unique(ids)
    return ids


def ascending(ids: np.ndarray, pool: Executor | None = None) -> bool:
    """Whether 1-d ``ids`` strictly ascend. Checked a chunk at a time into one small buffer
    (no temporary as large as the ids), and where ``pool`` is given and the ids are many,
    the second half on another thread (numpy compares without the GIL): 10M ids, 6.5 ms
    against 10 for ``np.all(ids[1:] > ids[:-1])``; a restricted search at 100M faces pays
    it per call (docs/BENCHMARKS.md)."""
    n = len(ids)
    if pool is None or n < ASCENDING_SPLIT:
        return _ascending_in(ids, 0, n)
    mid = n // 2
    upper = pool.submit(_ascending_in, ids, mid, n)  # pairs from (mid, mid+1) on
    lower = _ascending_in(ids, 0, mid + 1)
    return upper.result() and lower


def _ascending_in(ids: np.ndarray, lo: int, hi: int) -> bool:
    """Whether ``ids[lo:hi]`` strictly ascend."""
    buf = np.empty(min(ASCENDING_CHUNK, max(hi - lo - 1, 0)), dtype=bool)
    for start in range(lo, hi - 1, ASCENDING_CHUNK):
        end = min(start + ASCENDING_CHUNK, hi - 1)
        out = buf[: end - start]
        np.greater(ids[start + 1 : end + 1], ids[start:end], out=out)
        if not out.all():
            return False
    return True
