"""Physical erasure and its re-check.

Order matters: the catalog rows go first, in one transaction, and the catalog is the truth
for search, so an erased face stops being returned at that moment. Then the vectors leave
the index and the index is saved (FAISS rewrites its file; the old one is unlinked), then
the catalog is checkpointed (SQLite: ``secure_delete`` has zeroed the freed pages and the
WAL is folded in and truncated; PostgreSQL: VACUUM). A crash between the steps is repaired
by ``Engine.reconcile`` on the next open, which drops vectors the catalog no longer holds.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from faceindex.catalog.base import ErasedRows
from faceindex.engine import Engine
from faceindex.errors import NotFoundError
from faceindex.governance.base import Receipt, ReceiptCheck, digest_ids
from faceindex.governance.screen import min_distances
from faceindex.governance.store import GovernanceStore

__all__ = ["check_receipt", "compact", "erase_face_rows", "live_within"]

log = logging.getLogger(__name__)


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


def check_receipt(
    engine: Engine, store: GovernanceStore, receipt_id: str, threshold: float
) -> tuple[ReceiptCheck, str]:
    """Re-check that nothing a receipt names remains; returns (check, audited digest key)."""
    receipt, face_ids, image_ids = store.receipt(receipt_id)
    problems: list[str] = []
    digest_ok = digest_ids(face_ids) == receipt.faces_digest
    if not digest_ok:
        problems.append("the stored face list no longer matches the receipt's digest")
    faces_left = tuple(sorted(engine.catalog.faces(face_ids)))
    if faces_left:
        problems.append(f"{len(faces_left)} face rows remain in the catalog")
    held = engine.index.ids()
    vectors_left = tuple(int(i) for i in np.intersect1d(held, np.asarray(face_ids, np.int64)))
    if vectors_left:
        problems.append(f"{len(vectors_left)} vectors remain in the index")
    images_left = tuple(engine.catalog.existing_images(image_ids))
    if images_left:
        problems.append(f"{len(images_left)} images remain in the catalog")
    if receipt.kind == "source":
        try:
            engine.catalog.get_source(receipt.target)
            problems.append(f"source {receipt.target!r} is still registered")
        except NotFoundError:
            pass
    probe = store.receipt_probe(receipt_id)
    matches: tuple[int, ...] = ()
    if probe is not None:
        matches = tuple(live_within(engine, probe, threshold))
        if matches:
            problems.append(f"{len(matches)} live faces still match the erased person's probe")
    check = ReceiptCheck(
        receipt=receipt,
        ok=not problems,
        faces_remaining=faces_left,
        images_remaining=images_left,
        vectors_remaining=vectors_left,
        probe_matches=matches,
        probe_checked=probe is not None,
        digest_ok=digest_ok,
        problems=tuple(problems),
    )
    return check, receipt.faces_digest


def new_receipt_fields(erased: ErasedRows) -> dict[str, object]:
    return {
        "faces_deleted": len(erased.face_ids),
        "images_deleted": len(erased.image_ids),
        "faces_digest": digest_ids(erased.face_ids),
    }


def receipt_matches_audit(receipt: Receipt, details: dict[str, object]) -> bool:
    return (
        details.get("receipt") == receipt.id
        and details.get("faces_digest") == receipt.faces_digest
        and details.get("faces_deleted") == receipt.faces_deleted
    )
