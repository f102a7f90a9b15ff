"""The in-memory numpy brute-force index: the reference oracle for the contract tests."""

from __future__ import annotations

import numpy as np

from faceindex.index.base import Capabilities, Metric, as_ids, as_vectors, as_within

__all__ = ["MemoryIndex"]


class MemoryIndex:
    capabilities = Capabilities(
        exact=True, supports_delete=True, persistent=False, distributed=False
    )

    def __init__(self, dim: int, metric: Metric = "l2") -> None:
        self.dim = dim
        self.metric: Metric = metric
        self._ids = np.zeros(0, dtype=np.int64)
        self._vecs = np.zeros((0, dim), dtype=np.float32)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = as_ids(ids)
        vecs = as_vectors(vectors, self.dim)
        if len(ids) != len(vecs):
            raise ValueError("ids and vectors differ in length")
        self.remove(ids)
        self._ids = np.concatenate([self._ids, ids])
        self._vecs = np.concatenate([self._vecs, vecs])

    def remove(self, ids: np.ndarray) -> int:
        mask = np.isin(self._ids, as_ids(ids))
        removed = int(mask.sum())
        if removed:
            self._ids = self._ids[~mask]
            self._vecs = self._vecs[~mask]
        return removed

    def search(
        self, queries: np.ndarray, k: int, *, within: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        q = as_vectors(queries, self.dim)
        keep = as_within(within)
        all_ids, all_vecs = self._ids, self._vecs
        if keep is not None:
            mask = np.isin(all_ids, keep)
            all_ids, all_vecs = all_ids[mask], all_vecs[mask]
        n = len(all_ids)
        dist = np.full((len(q), k), np.inf if self.metric == "l2" else -np.inf, dtype=np.float32)
        ids = np.full((len(q), k), -1, dtype=np.int64)
        if n == 0:
            return dist, ids
        if self.metric == "l2":
            d2 = (q * q).sum(1)[:, None] - 2 * q @ all_vecs.T + (all_vecs * all_vecs).sum(1)[None]
            scores = np.sqrt(np.maximum(d2, 0))
            order = np.argsort(scores, axis=1, kind="stable")[:, :k]
        else:
            scores = q @ all_vecs.T
            order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        m = order.shape[1]
        dist[:, :m] = np.take_along_axis(scores, order, axis=1)
        ids[:, :m] = all_ids[order]
        return dist, ids

    def count(self) -> int:
        return len(self._ids)

    def ids(self) -> np.ndarray:
        return self._ids.copy()

    def save(self) -> None:
        return None

    def close(self) -> None:
        return None
