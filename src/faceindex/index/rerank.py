"""Exact distances for candidate ids, and the exact scan used before an index is trained."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import numpy as np

from faceindex.index.base import Metric

__all__ = ["exact_scan", "rerank"]

QUERY_CHUNK = 256  # queries re-ranked together: bounds the (queries, candidates, dim) block


class VectorRows(Protocol):
    def lookup(self, ids: np.ndarray) -> np.ndarray: ...
    def vectors(self, slots: np.ndarray) -> np.ndarray: ...


def _scores(q: np.ndarray, vecs: np.ndarray, metric: Metric) -> np.ndarray:
    """(n, m) true L2 distances or inner products between q (n, d) and vecs (n, m, d)."""
    if metric == "l2":
        diff = vecs - q[:, None, :]
        return np.sqrt(np.einsum("nmd,nmd->nm", diff, diff))
    return np.einsum("nmd,nd->nm", vecs, q)


def _top(
    scores: np.ndarray, ids: np.ndarray, k: int, metric: Metric
) -> tuple[np.ndarray, np.ndarray]:
    """The k best per row, best first; ties broken by id for a stable order."""
    n, m = scores.shape
    key = scores if metric == "l2" else -scores
    order = np.lexsort((ids, key), axis=1)[:, :k]
    dist = np.take_along_axis(scores, order, axis=1)
    out_ids = np.take_along_axis(ids, order, axis=1)
    if m < k:
        pad = np.inf if metric == "l2" else -np.inf
        dist = np.hstack([dist, np.full((n, k - m), pad, dtype=dist.dtype)])
        out_ids = np.hstack([out_ids, np.full((n, k - m), -1, dtype=np.int64)])
    worst = np.isinf(dist)
    out_ids[worst] = -1
    return dist.astype(np.float32), out_ids.astype(np.int64)


def rerank(
    q: np.ndarray, cand: np.ndarray, rows: VectorRows, k: int, metric: Metric
) -> tuple[np.ndarray, np.ndarray]:
    """Replace approximate candidates (n, m) by the k best under exact distances.

    Candidates the id map no longer knows (deleted, or listed twice after a crash) are
    dropped, so a removed face can never come back even before its codes are gone."""
    worst = np.inf if metric == "l2" else -np.inf
    dists, idss = [], []
    for s in range(0, len(q), QUERY_CHUNK):
        qc, cc = q[s : s + QUERY_CHUNK], np.sort(cand[s : s + QUERY_CHUNK], axis=1)
        slots = rows.lookup(cc)
        dup = np.zeros(cc.shape, dtype=bool)
        dup[:, 1:] = cc[:, 1:] == cc[:, :-1]
        valid = (cc >= 0) & (slots >= 0) & ~dup
        scores = _scores(qc, rows.vectors(np.where(valid, slots, 0)), metric)
        scores[~valid] = worst
        d, i = _top(scores, np.where(valid, cc, -1), k, metric)
        dists.append(d)
        idss.append(i)
    return np.vstack(dists), np.vstack(idss)


def exact_scan(
    q: np.ndarray, chunks: Iterable[tuple[np.ndarray, np.ndarray]], k: int, metric: Metric
) -> tuple[np.ndarray, np.ndarray]:
    """Brute force over (ids, vectors) chunks, keeping a running top k."""
    best_d = np.full((len(q), 0), 0.0, dtype=np.float32)
    best_i = np.zeros((len(q), 0), dtype=np.int64)
    for ids, vecs in chunks:
        if metric == "l2":
            d2 = (q * q).sum(1)[:, None] - 2 * q @ vecs.T + (vecs * vecs).sum(1)[None]
            scores = np.sqrt(np.maximum(d2, 0))
        else:
            scores = q @ vecs.T
        all_d = np.hstack([best_d, scores.astype(np.float32)])
        all_i = np.hstack([best_i, np.broadcast_to(ids, scores.shape)])
        best_d, best_i = _top(all_d, all_i, k, metric)
        keep = best_i[0] >= 0 if len(q) else np.zeros(0, dtype=bool)
        if len(q) and not keep.all():
            best_d, best_i = best_d[:, keep], best_i[:, keep]
    return _top(best_d, best_i, k, metric)
