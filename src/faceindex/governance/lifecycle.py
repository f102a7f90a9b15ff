"""The data-lifecycle collaborator of the Governance facade: opt-out, subject access and
retention. Erasing what they find goes through :class:`~faceindex.governance.erasure.Erasure`
(intent, commit, receipt), so they share its crash safety.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from faceindex.engine import Engine
from faceindex.errors import NoFaceError
from faceindex.governance.acting import Acting
from faceindex.governance.base import GcReport, Holding, Receipt, Suppression
from faceindex.governance.deletion import live_within
from faceindex.governance.erasure import Erasure
from faceindex.governance.roles import Permission
from faceindex.governance.screen import min_distances
from faceindex.governance.store import GovernanceStore

__all__ = ["Lifecycle", "OptOut"]

log = logging.getLogger(__name__)
P = Permission


@dataclass(frozen=True)
class OptOut:
    """The suppression registered (never its templates) and the receipt for what it erased."""

    suppression: Suppression
    receipt: Receipt


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


class Lifecycle:
    def __init__(
        self, engine: Engine, store: GovernanceStore, acting: Acting, erasure: Erasure
    ) -> None:
        self.engine = engine
        self.store = store
        self.acting = acting
        self.erasure = erasure

    def probe_templates(self, probes: Sequence[bytes]) -> tuple[np.ndarray, list[str]]:
        """One template per probe photo (its largest face); only their hashes are kept."""
        if not probes:
            raise NoFaceError("give at least one photo of the person")
        s = self.engine.settings
        vecs, shas = [], []
        for n, image in enumerate(probes, 1):
            shas.append(hashlib.sha256(image).hexdigest())
            # The server's analysis worker where there is one (dlib holds the GIL); the
            # probe path also answers "no face" for images too small to hold one.
            analyzer = self.engine.probe_analyzer or self.engine.analyzer
            faces = analyzer.analyze_image(
                image, max_pixels=s.max_pixels, max_bytes=s.max_bytes
            ).faces
            if not faces:
                raise NoFaceError(f"no face found in probe photo {n}")
            vecs.append(np.asarray(max(faces, key=lambda f: f.bbox.area).embedding, np.float32))
        return np.stack(vecs), shas

    def erase_person(
        self, probes: Sequence[bytes], *, reason: str = "", threshold: float | None = None
    ) -> Receipt:
        """Every face within ``threshold`` (default: erase_threshold) of the person's photos."""
        self.acting.require(P.DELETE, action="deletion")
        templates, shas = self.probe_templates(probes)
        limit = threshold or self.engine.thresholds.erase
        hits = live_within(self.engine, templates, limit)
        return self.erasure.erase_matching("person", " ".join(shas), hits, reason, probe=templates)

    # -- opt-out and subject access -------------------------------------------------------

    def opt_out(self, probes: Sequence[bytes], *, reference: str) -> OptOut:
        """Register a suppression from the person's photos and erase what matches it now;
        later ingests skip matching faces and searches never return them."""
        self.acting.require(P.OPT_OUT, action="opt-out", case=reference)
        templates, shas = self.probe_templates(probes)
        sup = self.store.add_suppression(
            templates, actor=self.acting.actor.name, reference=reference
        )
        self.acting.record(
            "opt-out",
            case=reference,
            probe_sha256=" ".join(shas),
            details={"suppression": sup.id, "templates": sup.templates},
        )
        limit = self.engine.thresholds.suppress
        hits = live_within(self.engine, templates, limit)
        receipt = self.erasure.erase_matching("opt-out", sup.id, hits, reference)
        return OptOut(sup, receipt)

    def subject_access(self, probes: Sequence[bytes], *, reference: str) -> list[Holding]:
        self.acting.require(P.SUBJECT_ACCESS, action="subject-access", case=reference)
        templates, shas = self.probe_templates(probes)
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
        self.acting.record(
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
        self.acting.require(P.RETENTION, action="retention")
        now = now or datetime.now(timezone.utc)
        expired = self.engine.catalog.expired_items(now)
        per_source: dict[str, int] = {}
        for _, src in expired:
            per_source[src] = per_source.get(src, 0) + 1
        templates = self.store.suppression_templates()
        hits = set(live_within(self.engine, templates, self.engine.thresholds.suppress))
        # Bytes an erasure tombstoned, held again: an ingest that screened its batch before
        # the erasure's intent and committed after it. Erased again here, daily.
        tombstoned = [sha for sha, _, _ in self.store.tombstones()]
        again = set(self.engine.catalog.images_holding(tombstoned).values())
        again_faces = set(self.engine.catalog.face_ids_of_images(sorted(again)))
        if again:
            log.warning("gc: %d images hold erased bytes again; erasing them", len(again))
        # A file replaced in place moved its location to the new bytes: the old image is
        # held for no source any more, so it goes too (on this receipt), untombstoned.
        # The ingest that replaced it retires it already; this catches engine-only ingests.
        unheld = set(self.engine.catalog.unheld_images()) - again
        unheld_faces = set(self.engine.catalog.face_ids_of_images(sorted(unheld)))
        receipt = None
        faces_by_age: list[int] = []
        images_by_age = 0
        suppressed = 0
        erased_again = 0
        unheld_deleted = 0
        if expired or hits or again or unheld:
            erased, rec = self.erasure.erase_retention(
                _iso(now),
                [i for i, _ in expired],
                sorted(hits),
                tuple(sorted(per_source)),
                sorted(again),
                retired=sorted(unheld),  # replaced, not erased: no tombstone
            )
            receipt = rec.id
            faces_by_age = [
                i for i in erased.face_ids if i not in hits | again_faces | unheld_faces
            ]
            suppressed = len(hits & set(erased.face_ids))
            erased_again = len(again & set(erased.image_ids))
            unheld_deleted = len(unheld & set(erased.image_ids))
            images_by_age = len(erased.image_ids) - erased_again - unheld_deleted
        dropped = self.store.drop_expired_probes(_iso(now))
        report = GcReport(
            len(expired),
            images_by_age,
            len(faces_by_age),
            suppressed,
            dropped,
            receipt,
            per_source,
            unheld_deleted,
            erased_again,
        )
        self.acting.record(
            "retention",
            sources=tuple(sorted(per_source)),
            details={
                "items_expired": report.items_expired,
                "faces_deleted": report.faces_deleted,
                "suppressed_faces_deleted": report.suppressed_faces_deleted,
                "probes_dropped": dropped,
                "unheld_images_deleted": report.unheld_images_deleted,
                "erased_again": erased_again,
                "receipt": receipt,
            },
        )
        return report
