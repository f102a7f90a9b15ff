"""Re-checking a deletion receipt: ids, vectors, images, the source, the erased content
(sha256) and, while it is kept, the erased person's probe; and the receipt's audit entry."""

from __future__ import annotations

from typing import Any

import numpy as np

from faceindex.catalog.base import ErasedRows
from faceindex.engine import Engine
from faceindex.errors import NotFoundError
from faceindex.governance.base import Receipt, ReceiptCheck, digest_ids
from faceindex.governance.deletion import live_within
from faceindex.governance.store import GovernanceStore

__all__ = ["check_receipt", "receipt_fields", "receipt_matches_audit"]


def check_receipt(
    engine: Engine, store: GovernanceStore, receipt_id: str, threshold: float
) -> ReceiptCheck:
    """Re-check that nothing a receipt names remains."""
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
    digests = store.receipt_digests(receipt_id)
    again = engine.catalog.images_holding(digests)
    if again:
        lifted = sum(1 for sha in again if digests[sha] == "lifted")
        note = f" ({lifted} after their tombstone was lifted)" if lifted else ""
        problems.append(
            f"{len(again)} erased images are held again, same bytes, as image ids "
            f"{', '.join(str(i) for i in sorted(again.values()))}{note}"
        )
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
    return ReceiptCheck(
        receipt=receipt,
        ok=not problems,
        faces_remaining=faces_left,
        images_remaining=images_left,
        vectors_remaining=vectors_left,
        probe_matches=matches,
        probe_checked=probe is not None,
        digest_ok=digest_ok,
        content_held=tuple(sorted(again.values())),
        problems=tuple(problems),
    )


def receipt_fields(erased: ErasedRows) -> dict[str, Any]:
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
