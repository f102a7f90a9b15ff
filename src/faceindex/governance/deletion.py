"""Physical deletion, in its order, and the lookup that decides what a person erasure takes.

The catalog rows go first, in one transaction, and the catalog is the truth for search, so
an erased face stops being returned at that moment. Then the vectors leave the index and
the index is saved (FAISS rewrites its file; the old one is unlinked), then the catalog is
checkpointed (SQLite: ``secure_delete`` has zeroed the freed pages and the WAL is folded in
and truncated; PostgreSQL: VACUUM). A crash between the steps is repaired by
``Engine.reconcile`` on the next open, which drops vectors the catalog no longer holds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from faceindex.catalog.base import ErasedRows
from faceindex.engine import Engine
from faceindex.governance.screen import min_distances

__all__ = ["compact", "erase_face_rows", "live_within", "merge"]


def compact(engine: Engine, face_ids: Sequence[int]) -> None:
    """After catalog rows are gone: drop the vectors, save the index, checkpoint."""
    ids = np.asarray(sorted({int(i) for i in face_ids}), dtype=np.int64)
    if len(ids):
        engine.index.remove(ids)
    engine.index.save()
    engine.catalog.checkpoint()


def erase_face_rows(engine: Engine, face_ids: Sequence[int]) -> ErasedRows:
    present = sorted(engine.catalog.faces([int(i) for i in face_ids]))
    engine.catalog.delete_faces(present)
    return ErasedRows((), tuple(present), 0)


def merge(*parts: ErasedRows) -> ErasedRows:
    return ErasedRows(
        tuple(sorted({i for p in parts for i in p.image_ids})),
        tuple(sorted({i for p in parts for i in p.face_ids})),
        sum(p.items for p in parts),
        tuple(sorted({g for p in parts for g in p.groups})),
        tuple(sorted({g for p in parts for g in p.groups_removed})),
    )


def live_within(engine: Engine, templates: np.ndarray, threshold: float) -> list[int]:
    """Live face ids within ``threshold`` of any template: nearest neighbours first, then
    the catalog's stored vectors decide (the index may be approximate)."""
    total = engine.index.count()
    if not len(templates) or total == 0:
        return []
    queries = np.atleast_2d(templates).astype(np.float32)
    k = min(total, 256)
    while True:
        dist, ids = engine.index.search(queries, k)
        # Widen while even the farthest neighbour returned is still inside the threshold.
        if k >= total or float(dist[:, -1].min()) >= threshold:
            break
        k = min(k * 4, total)
    found = {
        int(i) for d, i in zip(dist.ravel(), ids.ravel(), strict=True) if i >= 0 and d < threshold
    }
    if not found:
        return []
    vecs = engine.catalog.embeddings(sorted(found))
    if not vecs:
        return []
    ids_sorted = sorted(vecs)
    d = min_distances(np.stack([vecs[i] for i in ids_sorted]), templates)
    return [i for i, x in zip(ids_sorted, d, strict=True) if x < threshold]
