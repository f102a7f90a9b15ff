"""What erasures leave behind, read back: receipts and their re-check (ids, vectors, images,
the source, the erased content by sha256 and, while it is kept, the erased person's probe;
and the receipt's audit entry), and the tombstones with their audited lift.
:class:`ReceiptBook` is the Governance collaborator for these."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import numpy as np

from faceindex.catalog.base import ErasedRows
from faceindex.engine import Engine
from faceindex.errors import InputError, NotFoundError
from faceindex.governance.acting import Acting
from faceindex.governance.base import Receipt, ReceiptCheck, Tombstone, digest_ids
from faceindex.governance.deletion import live_within
from faceindex.governance.near_copies import near_held
from faceindex.governance.roles import Permission
from faceindex.governance.store import GovernanceStore

__all__ = ["ReceiptBook", "check_receipt", "receipt_fields", "receipt_matches_audit"]

P = Permission
SHA256 = re.compile(r"^[0-9a-f]{64}$")


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
    near = near_held(engine.catalog, store, digests)
    if near:
        problems.append(
            f"{len(near)} near-duplicates of erased images (re-encoded or resized copies) are "
            f"held again, as image ids {', '.join(str(i) for i in near)}"
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
        near_duplicates_held=tuple(near),
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


class ReceiptBook:
    """Receipts and tombstones, for one actor (the erasures themselves: ``erasure.py``)."""

    def __init__(self, engine: Engine, store: GovernanceStore, acting: Acting) -> None:
        self.engine = engine
        self.store = store
        self.acting = acting

    def verify_receipt(self, receipt_id: str) -> ReceiptCheck:
        self.acting.require(P.DELETE, P.READ_AUDIT, action="receipt-verify")
        check = check_receipt(self.engine, self.store, receipt_id, self.engine.thresholds.erase)
        seq = check.receipt.audit_seq
        entry = self.acting.audit.get(seq) if seq else None
        if entry is None or not receipt_matches_audit(check.receipt, dict(entry.event.details)):
            problem = "the receipt does not match its audit entry"
            check = replace(check, ok=False, problems=(*check.problems, problem))
        self.acting.record(
            "receipt-verify",
            outcome="ok" if check.ok else "error",
            details={"receipt": receipt_id, "problems": list(check.problems)},
        )
        return check

    def receipts(self) -> list[Receipt]:
        self.acting.require(P.DELETE, P.READ_AUDIT, action="receipt-verify")
        return self.store.receipts()

    def tombstones(self, receipt_id: str | None = None) -> list[Tombstone]:
        self.acting.require(P.DELETE, action="tombstones")
        self.acting.record("tombstones", details={"receipt": receipt_id or ""})
        return [Tombstone(*row) for row in self.store.tombstones(receipt_id)]

    def lift_tombstone(self, target: str, *, reason: str) -> list[str]:
        """Let an erased image's bytes (or every image of a receipt) be ingested again."""
        self.acting.require(P.DELETE, action="tombstone-lift")
        target = target.strip().lower()
        if not reason.strip():
            raise InputError("lifting a tombstone needs a reason (ruling, request reference)")
        if SHA256.match(target):
            lifted = self.store.lift_tombstones(sha256=target)
        elif target.startswith("rcp-"):
            lifted = self.store.lift_tombstones(receipt_id=target)
        else:
            raise InputError("give an image's sha256 (64 hex digits) or a receipt id (rcp-...)")
        if not lifted:
            raise NotFoundError(f"no held tombstone for {target}")
        self.acting.record(
            "tombstone-lift",
            details={"target": target, "reason": reason, "lifted": len(lifted)},
        )
        return lifted
