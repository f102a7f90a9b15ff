"""The data-lifecycle half of the Governance facade: erasure with receipts, opt-out, subject
access and retention. Mixed into :class:`faceindex.governance.service.Governance`, which
supplies the engine, the store, the actor and the audit plumbing.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from faceindex.catalog.base import ErasedRows
from faceindex.engine import Engine
from faceindex.errors import NoFaceError
from faceindex.governance.base import GcReport, Holding, Receipt, ReceiptCheck, Suppression
from faceindex.governance.erasure import (
    check_receipt,
    compact,
    erase_face_rows,
    live_within,
    new_receipt_fields,
    receipt_matches_audit,
)
from faceindex.governance.roles import Actor, Permission
from faceindex.governance.screen import min_distances
from faceindex.governance.store import GovernanceStore, new_id
from faceindex.vision.decode import decode_image

__all__ = ["LifecycleOps", "OptOut"]

log = logging.getLogger(__name__)
P = Permission


@dataclass(frozen=True)
class OptOut:
    """The suppression registered (never its templates) and the receipt for what it erased."""

    suppression: Suppression
    receipt: Receipt


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _merge(*parts: ErasedRows) -> ErasedRows:
    return ErasedRows(
        tuple(sorted({i for p in parts for i in p.image_ids})),
        tuple(sorted({i for p in parts for i in p.face_ids})),
        sum(p.items for p in parts),
    )


class LifecycleOps:
    engine: Engine
    store: GovernanceStore
    actor: Actor

    def _record(self, action: str, **fields: Any) -> int:
        raise NotImplementedError

    def _require(self, *permissions: Permission, action: str, **fields: Any) -> None:
        raise NotImplementedError

    # -- helpers --------------------------------------------------------------------------

    def _probe_templates(self, probes: Sequence[bytes]) -> tuple[np.ndarray, list[str]]:
        """One template per probe photo (its largest face); only their hashes are kept."""
        if not probes:
            raise NoFaceError("give at least one photo of the person")
        s = self.engine.settings
        vecs, shas = [], []
        for n, image in enumerate(probes, 1):
            shas.append(hashlib.sha256(image).hexdigest())
            faces = self.engine.analyzer.analyze(
                decode_image(image, max_pixels=s.max_pixels, max_bytes=s.max_bytes)
            )
            if not faces:
                raise NoFaceError(f"no face found in probe photo {n}")
            vecs.append(np.asarray(max(faces, key=lambda f: f.bbox.area).embedding, np.float32))
        return np.stack(vecs), shas

    def _issue(
        self,
        kind: str,
        target: str,
        erased: ErasedRows,
        reason: str,
        *,
        exports: tuple[str, ...] = (),
        sources: tuple[str, ...] = (),
        probe: np.ndarray | None = None,
    ) -> Receipt:
        now = datetime.now(timezone.utc)
        fields = new_receipt_fields(erased)
        rid = new_id("rcp")
        seq = self._record(
            "deletion",
            sources=sources,
            details={"receipt": rid, "kind": kind, "reason": reason, **fields},
        )
        receipt = Receipt(
            rid,
            kind,
            target,
            int(str(fields["faces_deleted"])),
            int(str(fields["images_deleted"])),
            self.actor.name,
            self.actor.role.value,
            _iso(now),
            str(fields["faces_digest"]),
            reason,
            exports,
            seq,
        )
        days = self.engine.settings.receipt_probe_days
        keep = probe if probe is not None and days > 0 else None
        self.store.add_receipt(
            receipt,
            erased.face_ids,
            erased.image_ids,
            keep,
            _iso(now + timedelta(days=days)),
        )
        return receipt

    # -- erasure --------------------------------------------------------------------------

    def erase_faces(self, face_ids: Sequence[int], *, reason: str = "") -> Receipt:
        self._require(P.DELETE, action="deletion")
        erased = erase_face_rows(self.engine, face_ids)
        compact(self.engine, erased.face_ids)
        return self._issue("face", " ".join(str(i) for i in face_ids), erased, reason)

    def erase_images(self, image_ids: Sequence[int], *, reason: str = "") -> Receipt:
        self._require(P.DELETE, action="deletion")
        erased = self.engine.catalog.delete_images([int(i) for i in image_ids])
        compact(self.engine, erased.face_ids)
        return self._issue("image", " ".join(str(i) for i in image_ids), erased, reason)

    def erase_source(self, name: str, *, reason: str = "") -> Receipt:
        """The source, its locations, and images no other source holds. The receipt lists
        the registered exports that copied its data (they are outside our reach)."""
        self._require(P.DELETE, action="deletion", sources=(name,))
        rec = self.engine.catalog.get_source(name)
        exports = tuple(e.path for e in self.store.exports(name))
        erased = self.engine.catalog.delete_source(rec.id)
        compact(self.engine, erased.face_ids)
        provenance = self.engine.settings.home / "provenance" / f"{name}.jsonl"
        provenance.unlink(missing_ok=True)
        return self._issue("source", name, erased, reason, exports=exports, sources=(name,))

    def erase_person(
        self, probes: Sequence[bytes], *, reason: str = "", threshold: float | None = None
    ) -> Receipt:
        """Every face within ``threshold`` (default: erase_threshold) of the person's photos."""
        self._require(P.DELETE, action="deletion")
        templates, shas = self._probe_templates(probes)
        limit = threshold or self.engine.thresholds.erase
        erased = erase_face_rows(self.engine, live_within(self.engine, templates, limit))
        compact(self.engine, erased.face_ids)
        return self._issue("person", " ".join(shas), erased, reason, probe=templates)

    def _verify_receipt(self, receipt_id: str) -> ReceiptCheck:
        self._require(P.DELETE, P.READ_AUDIT, action="receipt-verify")
        check, _ = check_receipt(self.engine, self.store, receipt_id, self.engine.thresholds.erase)
        entry = self._audit_entry(check.receipt.audit_seq)
        if entry is None or not receipt_matches_audit(check.receipt, entry):
            from dataclasses import replace

            problem = "the receipt does not match its audit entry"
            check = replace(check, ok=False, problems=(*check.problems, problem))
        self._record(
            "receipt-verify",
            outcome="ok" if check.ok else "error",
            details={"receipt": receipt_id, "problems": list(check.problems)},
        )
        return check

    def _audit_entry(self, seq: int) -> dict[str, Any] | None:
        raise NotImplementedError

    # -- opt-out and subject access -------------------------------------------------------

    def opt_out(self, probes: Sequence[bytes], *, reference: str) -> OptOut:
        """Register a suppression from the person's photos and erase what matches it now;
        later ingests skip matching faces and searches never return them."""
        self._require(P.OPT_OUT, action="opt-out", case=reference)
        templates, shas = self._probe_templates(probes)
        sup = self.store.add_suppression(templates, actor=self.actor.name, reference=reference)
        limit = self.engine.thresholds.suppress
        erased = erase_face_rows(self.engine, live_within(self.engine, templates, limit))
        compact(self.engine, erased.face_ids)
        self._record(
            "opt-out",
            case=reference,
            probe_sha256=" ".join(shas),
            details={"suppression": sup.id, "templates": sup.templates},
        )
        receipt = self._issue("opt-out", sup.id, erased, reference)
        return OptOut(sup, receipt)

    def _subject_access(self, probes: Sequence[bytes], *, reference: str) -> list[Holding]:
        self._require(P.SUBJECT_ACCESS, action="subject-access", case=reference)
        templates, shas = self._probe_templates(probes)
        cat = self.engine.catalog
        ids = live_within(self.engine, templates, self.engine.thresholds.match)
        vecs = cat.embeddings(ids)
        rows = cat.faces(ids)
        out: list[Holding] = []
        for fid in sorted(rows):
            dist = float(min_distances(vecs[fid][None, :], templates)[0])
            row = rows[fid]
            for loc in row.locations:
                out.append(
                    Holding(
                        fid,
                        row.image_id,
                        round(dist, 4),
                        (row.bbox.left, row.bbox.top, row.bbox.right, row.bbox.bottom),
                        loc.source,
                        loc.locator,
                        loc.ingested_at,
                        row.image_sha256,
                    )
                )
        self._record(
            "subject-access",
            case=reference,
            purpose="subject access request",
            probe_sha256=" ".join(shas),
            sources=tuple(sorted({h.source for h in out})),
            face_ids=tuple(sorted(rows)),
        )
        return out

    # -- retention ------------------------------------------------------------------------

    def gc(self, now: datetime | None = None) -> GcReport:
        """Erase what is past its source's retention, sweep the gallery against opt-outs
        (e.g. after a threshold change), and drop expired receipt probes."""
        self._require(P.RETENTION, action="retention")
        now = now or datetime.now(timezone.utc)
        expired = self.engine.catalog.expired_items(now)
        per_source: dict[str, int] = {}
        for _, src in expired:
            per_source[src] = per_source.get(src, 0) + 1
        by_age = self.engine.catalog.delete_items([i for i, _ in expired])
        # A file replaced in place moved its location to the new bytes: the old image is
        # held for no source any more, so it goes too (on this receipt).
        unheld = self.engine.catalog.delete_images(self.engine.catalog.unheld_images())
        templates = self.store.suppression_templates()
        hits = live_within(self.engine, templates, self.engine.thresholds.suppress)
        by_opt_out = erase_face_rows(self.engine, hits)
        erased = _merge(by_age, by_opt_out, unheld)
        compact(self.engine, erased.face_ids)
        dropped = self.store.drop_expired_probes(_iso(now))
        receipt = None
        if erased.face_ids or erased.image_ids or erased.items:
            receipt = self._issue(
                "retention", _iso(now), erased, "retention", sources=tuple(sorted(per_source))
            ).id
        report = GcReport(
            len(expired),
            len(by_age.image_ids),
            len(by_age.face_ids),
            len(by_opt_out.face_ids),
            dropped,
            receipt,
            per_source,
            len(unheld.image_ids),
        )
        self._record(
            "retention",
            sources=tuple(sorted(per_source)),
            details={
                "items_expired": report.items_expired,
                "faces_deleted": report.faces_deleted,
                "suppressed_faces_deleted": report.suppressed_faces_deleted,
                "probes_dropped": dropped,
                "unheld_images_deleted": report.unheld_images_deleted,
                "receipt": receipt,
            },
        )
        return report
