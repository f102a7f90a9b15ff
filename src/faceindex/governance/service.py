"""The Governance facade: every audited operation, as the CLI and the HTTP API call it.

``Governance(engine, audit, store, actor)``, or ``Governance.open(engine, actor)`` for the
engine home's own audit log (``audit.db``, keyed: ``audit_key.py``) and governance store
(``governance.db``); ``open`` also finishes any erasure a dead process left half done. The
HTTP API builds one per request with :meth:`Governance.acting_as`. The facade holds its
collaborators and delegates to them: :class:`Erasure` (erasures: intent, commit, receipt,
recovery), :class:`ReceiptBook` (receipts, their re-check, tombstones and lifts),
:class:`Lifecycle` (person erasure, opt-out, subject access, retention), :class:`Exports`
and :class:`Auditing` (verify, anchor, export the log), :class:`Watches` (watchlists, their
screening at ingest and gc, alerts, expiry); it keeps search, ingest and index upkeep
itself. Stable methods:

=========================  =========================================  ==================
method                     returns                                    permission
=========================  =========================================  ==================
search(image, case=, purpose=, top_k=, largest=, sources=)  list[SearchResult]  search
search_template(images= | person=, case=, purpose=, fusion=, ...)  SearchResult  search
persons.build(rebuild=), name, merge, split, remove_face  PersonView  manage-persons
persons.list() / persons.show(id)           list[PersonView] / PersonView    search
verify(photo_a, photo_b, case=, purpose=, face_a=, face_b=)  Verification     search
review(search_id, face_id, decision, note=)  Review                          search (on the case)
decisions(case, face_ids)                   dict[int, Review] (latest)       search/read-audit
case(case_reference)                        CaseView                         search (own)/read-audit
add_source(name, path=, owner=, legal_basis=, retention_days=, ...)  SourceRecord  manage-sources
ingest(source, progress=, in_process=)      IngestSummary                    ingest
erase_faces(ids, reason=)                   Receipt                          delete
erase_images(ids, reason=)                  Receipt                          delete
erase_source(name, reason=)                 Receipt                          delete
erase_person(probes, reason=, threshold=)   Receipt                          delete
verify_receipt(receipt_id)                  ReceiptCheck                     delete/read-audit
receipts()                                  list[Receipt]                    delete/read-audit
tombstones(receipt=)                        list[Tombstone]                  delete
lift_tombstone(sha256_or_receipt, reason=)  list[str] (sha256s lifted)       delete
opt_out(probes, reference=)                 OptOut (suppression + receipt)   opt-out
suppressions()                              list[Suppression] (no templates) opt-out
subject_access(probes, reference=)          list[Holding]                    subject-access
subject_thumbnail(face_id)                  bytes (JPEG)                     subject-access
gc(now=)                                    GcReport                         retention
export_results(results, path, case=, purpose=, fmt=)  ExportRecord           export
export_source(name, path, case=, purpose=, fmt=)  ExportRecord               export
exports(source=)                            list[ExportRecord]               export/read-audit
verify_audit(anchors=)                      VerifyReport                     read-audit
anchor_audit(out)                           AuditHead (the signed head)      read-audit
anchor_head()                               AuditHead (returned, not written) read-audit
audit_page(filter, limit=, before=)         AuditPage (newest first)         read-audit
export_source_served(name, case=, purpose=)  ExportRecord (home/exports/)    export
export_file(export_id)                      (ExportRecord, CSV bytes)        export
export_search_served(image, case=, purpose=, top_k=)  ExportRecord           search+export
export_audit(out, fmt=)                     int (entries)                    read-audit
record_config_change(changes)               None                             manage-users
rebuild_index(kind=)                        int (vectors indexed)            manage-index
reembed(model, progress=)                   ReembedReport                    manage-index
compact_index()                             int (vectors dropped)            manage-index
=========================  =========================================  ==================

Audit: every call above appends an entry (who, role, case, purpose, probe sha256, sources,
face ids); a refused call appends a ``denied`` entry; a failed audit verify appends nothing
(it would chain onto the broken log). A search's entry is written *before*
its results are returned and a failed write raises AuditError with no results (fail closed).

Purposes: a source that lists allowed purposes is searched only for one of them (compared
case-insensitively); a source with none is open to any stated purpose. Naming a source
whose purposes exclude the search's raises SourceRefused; with no sources named, the
search covers the sources that allow the purpose, and the audit entry lists them.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from faceindex.catalog.base import ImageOutcome
from faceindex.engine import Engine
from faceindex.errors import InputError, SourceRefused
from faceindex.governance.acting import Acting
from faceindex.governance.audit import AuditHead, AuditLog, VerifyReport
from faceindex.governance.auditing import AuditFilter, Auditing, AuditPage
from faceindex.governance.base import (
    ExportRecord,
    GcReport,
    Holding,
    Receipt,
    ReceiptCheck,
    Suppression,
    Tombstone,
)
from faceindex.governance.casework import CaseView, Casework, new_search_id
from faceindex.governance.database import open_database
from faceindex.governance.erasure import Erasure
from faceindex.governance.exports import Exports
from faceindex.governance.faults import NO_FAULTS, FaultPoints
from faceindex.governance.lifecycle import Lifecycle, OptOut
from faceindex.governance.persons import PersonBook
from faceindex.governance.receipts import ReceiptBook
from faceindex.governance.roles import Actor, Permission, Role
from faceindex.governance.store import GovernanceStore
from faceindex.governance.watches import SCREEN_EVERY_S, Alert, Watches
from faceindex.pipeline.runner import Progress, Progress_cb
from faceindex.search.template import Fusion, pick_template
from faceindex.search.verify import Verification
from faceindex.sources.base import SourceRecord
from faceindex.types import IngestSummary, Review, SearchResult

if TYPE_CHECKING:
    from faceindex.catalog.watch_rows import WatchRecord
    from faceindex.reembed import ReembedReport

__all__ = ["Governance", "OptOut", "actor_from_settings"]

log = logging.getLogger(__name__)
P = Permission


def actor_from_settings(engine: Engine) -> Actor:
    return Actor(engine.settings.actor, Role(engine.settings.actor_role))


class Governance:
    def __init__(
        self,
        engine: Engine,
        audit: AuditLog,
        store: GovernanceStore,
        actor: Actor,
        *,
        faults: FaultPoints = NO_FAULTS,
    ) -> None:
        self.engine = engine
        self.audit = audit
        self.store = store
        self.actor = actor
        self.faults = faults
        self.acting = Acting(audit, actor)
        self.erasure = Erasure(engine, store, self.acting, faults)
        self.receipt_book = ReceiptBook(engine, store, self.acting)
        self.lifecycle = Lifecycle(engine, store, self.acting, self.erasure)
        self.exporter = Exports(engine, store, self.acting)
        self.auditing = Auditing(audit, self.acting)
        self.persons = PersonBook(engine, self.acting)
        self.watchlist = Watches(engine, store, self.acting, self._sources_for)
        self._watch_alerts = 0  # alerts the ingest running now has raised so far
        self.casework = Casework(engine, audit, self.acting, keep_probe=self._probe_hash)
        self._owns = False

    @classmethod
    def open(
        cls, engine: Engine, actor: Actor | None = None, *, faults: FaultPoints = NO_FAULTS
    ) -> Governance:
        """The engine home's log and store; finishes erasures a dead process left pending."""
        from faceindex.governance.audit_key import open_audit

        settings = engine.settings
        audit = open_audit(settings)
        try:
            db = open_database(settings.governance_url, settings.home, "governance")
            store = GovernanceStore(db, dim=engine.pack.dim)
        except BaseException:
            audit.close()
            raise
        gov = cls(engine, audit, store, actor or actor_from_settings(engine), faults=faults)
        gov._owns = True
        try:
            gov.erasure.recover()
        except BaseException:
            gov.close()
            raise
        return gov

    def acting_as(self, actor: Actor) -> Governance:
        """The same log and store, another actor (one per HTTP request)."""
        return Governance(self.engine, self.audit, self.store, actor, faults=self.faults)

    def close(self) -> None:
        if self._owns:
            self.store.close()
            self.audit.close()

    def __enter__(self) -> Governance:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing -------------------------------------------------------------------------

    def _record(self, action: str, **fields: Any) -> int:
        return self.acting.record(action, **fields)

    def _require(self, *permissions: Permission, action: str, **fields: Any) -> None:
        self.acting.require(*permissions, action=action, **fields)

    def _probe_hash(self, image: bytes) -> str:
        sha = hashlib.sha256(image).hexdigest()
        if self.engine.settings.keep_probes:
            probes = self.engine.settings.home / "probes"
            probes.mkdir(parents=True, exist_ok=True)
            (probes / sha).write_bytes(image)
        return sha

    # -- search ---------------------------------------------------------------------------

    def _sources_for(self, purpose: str, requested: Sequence[str] | None) -> list[str]:
        wanted = purpose.strip().lower()
        records = {r.name: r for r in self.engine.catalog.list_sources()}

        def allows(r: SourceRecord) -> bool:
            return not r.purposes or wanted in {p.strip().lower() for p in r.purposes}

        if requested:
            for name in requested:
                rec = records.get(name)
                if rec is None:
                    raise InputError(f"no source named {name!r}")
                if not allows(rec):
                    raise SourceRefused(
                        f"source {name!r} may be searched only for: {', '.join(rec.purposes)}"
                    )
            return sorted(set(requested))
        allowed = sorted(n for n, r in records.items() if allows(r))
        if records and not allowed:
            raise SourceRefused(f"no registered source may be searched for purpose {purpose!r}")
        return allowed

    def search(
        self,
        image: bytes,
        *,
        case: str,
        purpose: str,
        top_k: int | None = None,
        largest: bool = False,
        sources: Sequence[str] | None = None,
        match_bound: float | None = None,
        name_search: Callable[[frozenset[int]], str] | None = None,
    ) -> list[SearchResult]:
        """``name_search`` gives the search its id once the faces it returns are known (the
        server remembers them under it); by default a fresh one. The audit entry keeps it:
        review decisions and the case view find the search by it."""
        sha = hashlib.sha256(image).hexdigest()
        self._require(P.SEARCH, action="search", case=case, purpose=purpose, probe_sha256=sha)
        if not case.strip() or not purpose.strip():
            raise InputError("a search needs a case reference and a purpose")
        scope = self._sources_for(purpose, sources)
        self._probe_hash(image)
        try:
            everything = not sources and len(scope) == len(self.engine.catalog.list_sources())
            results = self.engine.search(
                image,
                top_k=top_k,
                largest=largest,
                sources=None if everything else scope,
                match_bound=match_bound,
            )
        except Exception as exc:
            self._record(
                "search",
                case=case,
                purpose=purpose,
                probe_sha256=sha,
                sources=tuple(scope),
                outcome="error",
                details={"error": type(exc).__name__},
            )
            raise
        results = self._drop_suppressed(results)
        returned = frozenset(m.face_id for r in results for m in r.matches)
        search_id = name_search(returned) if name_search is not None else new_search_id()
        self._record(
            "search",
            case=case,
            purpose=purpose,
            probe_sha256=sha,
            sources=tuple(scope),
            face_ids=tuple(m.face_id for r in results for m in r.matches),
            details={
                "search_id": search_id,
                "probe_faces": len(results),
                "top_k": top_k or 0,
                "largest": largest,
                "match_bound": results[0].match_bound if results else match_bound,
            },
        )
        return results

    def search_template(
        self,
        images: Sequence[bytes] = (),
        *,
        person: int | None = None,
        case: str,
        purpose: str,
        fusion: Fusion | None = None,
        top_k: int | None = None,
        sources: Sequence[str] | None = None,
        match_bound: float | None = None,
        name_search: Callable[[frozenset[int]], str] | None = None,
    ) -> list[SearchResult]:
        """Several photos of one person (their largest faces), or a person's faces, searched
        as one template (search/template.py); a person's own faces are not returned. Audited
        as a ``search`` with every probe's sha256 (or the person) in its details."""
        if bool(images) == (person is not None):
            raise InputError("search by several photos or by one person, not both or neither")
        shas = [hashlib.sha256(i).hexdigest() for i in images]
        first = shas[0] if shas else ""
        fields: dict[str, Any] = {"case": case, "purpose": purpose, "probe_sha256": first}
        self._require(P.SEARCH, action="search", **fields)
        if not case.strip() or not purpose.strip():
            raise InputError("a search needs a case reference and a purpose")
        scope = self._sources_for(purpose, sources)
        fusion = fusion or self.engine.settings.template_fusion
        about: dict[str, Any] = {"fusion": fusion, "probes": shas, "person": person}
        try:
            exclude: tuple[int, ...] = ()
            if person is not None:
                exclude, template, qualities = self._person_template(person)
            else:
                for image in images:
                    self._probe_hash(image)
                template, qualities = self.engine.probe_template(images)
            everything = not sources and len(scope) == len(self.engine.catalog.list_sources())
            result = self.engine.search_template(
                template,
                qualities,
                fusion=fusion,
                top_k=top_k,
                sources=None if everything else scope,
                exclude=exclude,
                match_bound=match_bound,
            )
        except Exception as exc:
            self._record(
                "search",
                **fields,
                sources=tuple(scope),
                outcome="error",
                details={**about, "error": type(exc).__name__},
            )
            raise
        results = self._drop_suppressed([result])
        returned = frozenset(m.face_id for r in results for m in r.matches)
        search_id = name_search(returned) if name_search is not None else new_search_id()
        self._record(
            "search",
            **fields,
            sources=tuple(scope),
            face_ids=tuple(m.face_id for r in results for m in r.matches),
            details={
                **about,
                "search_id": search_id,  # as search(): reviews and the case view use it
                "template_faces": len(template),
                "top_k": top_k or 0,
            },
        )
        return results

    def verify(
        self,
        photo_a: bytes,
        photo_b: bytes,
        *,
        case: str,
        purpose: str,
        face_a: int | None = None,
        face_b: int | None = None,
        match_bound: float | None = None,
    ) -> Verification:
        """1:1: the same person or not, decided with the calibration at N = 1; audited."""
        return self.casework.verify(
            photo_a,
            photo_b,
            case=case,
            purpose=purpose,
            face_a=face_a,
            face_b=face_b,
            match_bound=match_bound,
        )

    def review(self, search_id: str, face_id: int, decision: str, *, note: str = "") -> Review:
        """Confirm, reject or call inconclusive one candidate of one search; audited."""
        return self.casework.review(search_id, face_id, decision, note=note)

    def decisions(self, case: str, face_ids: Sequence[int]) -> dict[int, Review]:
        """The latest decision on each of these faces in this case."""
        return self.casework.decisions(case, face_ids)

    def case(self, case_reference: str) -> CaseView:
        """A case's searches, verifications, candidates and decisions (audited)."""
        return self.casework.case(case_reference)

    def _drop_suppressed(self, results: list[SearchResult]) -> list[SearchResult]:
        from dataclasses import replace

        from faceindex.governance.screen import within

        templates = self.store.suppression_templates()
        ids = [m.face_id for r in results for m in r.matches]
        if not len(templates) or not ids:
            return results
        vecs = self.engine.catalog.embeddings(ids)
        order = sorted(vecs)
        hidden = set()
        if order:
            mask = within(np.stack([vecs[i] for i in order]), templates, self._suppress_t)
            hidden = {i for i, m in zip(order, mask, strict=True) if m}
        if not hidden:
            return results
        log.warning("search: %d suppressed faces withheld (gc will erase them)", len(hidden))
        return [
            replace(r, matches=tuple(m for m in r.matches if m.face_id not in hidden))
            for r in results
        ]

    @property
    def _suppress_t(self) -> float:
        return self.engine.thresholds.suppress

    # -- sources and ingest ---------------------------------------------------------------

    def add_source(self, name: str, **fields: Any) -> SourceRecord:
        """Register a folder, zip/tar archive or URL list (see Engine.add_source's fields)."""
        self._require(P.MANAGE_SOURCES, action="source-add", sources=(name,))
        rec = self.engine.add_source(name, **fields)
        self._record(
            "source-add",
            sources=(rec.name,),
            details={
                "kind": rec.kind,
                "uri": rec.uri,
                "owner": rec.owner,
                "legal_basis": rec.legal_basis,
                "legal_reference": rec.legal_reference,
                "purposes": list(rec.purposes),
                "retention_days": rec.retention_days,
                "jurisdiction": rec.jurisdiction,
            },
        )
        return rec

    def ingest(
        self, source: str, *, progress: Progress_cb | None = None, in_process: bool = False
    ) -> IngestSummary:
        """Ingest a registered source; faces matching an opt-out are never indexed."""
        from faceindex.governance.screen import screen_for, tombstone_screen

        self._require(P.INGEST, action="ingest", sources=(source,))
        self.engine.catalog.get_source(source)  # refuses an unregistered source
        self._record("ingest", sources=(source,), details={"phase": "start"})
        screen = screen_for(self.store.suppression_templates(), self._suppress_t)
        tombstoned = tombstone_screen(self.store, self.engine.catalog)

        def image_screen(outcomes: Sequence[ImageOutcome]) -> dict[str, str]:
            refused = tombstoned(outcomes)
            self.faults.reached("ingest-screened")
            return refused

        try:
            summary = self.engine.ingest(
                source,
                progress=self._screening(progress),
                screen=screen,
                image_screen=image_screen,
                in_process=in_process,
                # Screens and commit under the erasure lock: an erasure of these bytes
                # ends before the batch is screened, or starts after it is committed.
                guard=self.store.erasure_lock,
                # Erased bytes are refused by their sha256 before any decode.
                refuse={sha: f"erased (receipt {rid})" for sha, rid, _ in self.store.tombstones()},
            )
        except Exception as exc:
            self._record(
                "ingest", sources=(source,), outcome="error", details={"error": str(exc)[:200]}
            )
            raise
        if summary.images_unheld:  # replaced in place: no stale face outlives this ingest
            retired = self.erasure.retire_unheld(source)
            if retired is not None:
                summary.images_retired = retired.images_deleted
                summary.retired_receipt = retired.id
                summary.images_unheld = len(self.engine.catalog.unheld_images())
        summary.watch_alerts = self._watch_alerts + self.watchlist.screen_new().alerts
        self._record(
            "ingest",
            sources=(source,),
            details={
                "phase": "end",
                "images_retired": summary.images_retired,
                "images_new": summary.images_new,
                "faces_indexed": summary.faces_indexed,
                "faces_suppressed": summary.faces_suppressed,
                "watch_alerts": summary.watch_alerts,
                "images_erased_before": len(summary.skipped),
                "failed": len(summary.failed),
            },
        )
        return summary

    def _screening(self, progress: Progress_cb | None) -> Progress_cb:
        """The runner reports progress after each committed batch: the new faces are
        screened against the watches then (at most every SCREEN_EVERY_S), so an alert does
        not wait for a long ingest's end. A failure here is logged, not raised: the
        ingest's closing screen (and gc) screen from the same cursor again."""
        self._watch_alerts = 0
        last = time.monotonic()

        def report(p: Progress) -> None:
            nonlocal last
            if time.monotonic() - last >= SCREEN_EVERY_S:
                try:
                    self._watch_alerts += self.watchlist.screen_new().alerts
                except Exception:
                    log.exception("watch screening during ingest failed; retried at its end")
                last = time.monotonic()
            if progress is not None:
                progress(p)

        return report

    # -- erasure, opt-out, subject access, retention, exports (collaborators) -------------

    def erase_faces(self, face_ids: Sequence[int], *, reason: str = "") -> Receipt:
        return self.erasure.erase_faces(face_ids, reason=reason)

    def erase_images(self, image_ids: Sequence[int], *, reason: str = "") -> Receipt:
        return self.erasure.erase_images(image_ids, reason=reason)

    def erase_source(self, name: str, *, reason: str = "") -> Receipt:
        return self.erasure.erase_source(name, reason=reason)

    def erase_person(
        self, probes: Sequence[bytes], *, reason: str = "", threshold: float | None = None
    ) -> Receipt:
        return self.lifecycle.erase_person(probes, reason=reason, threshold=threshold)

    def verify_receipt(self, receipt_id: str) -> ReceiptCheck:
        """Re-check that nothing of a deletion remains (rows, vectors, images, the erased
        bytes, the source, faces matching a person's probe while it is kept) and that it
        matches its audit entry."""
        return self.receipt_book.verify_receipt(receipt_id)

    def receipts(self) -> list[Receipt]:
        return self.receipt_book.receipts()

    def tombstones(self, receipt: str | None = None) -> list[Tombstone]:
        return self.receipt_book.tombstones(receipt)

    def lift_tombstone(self, target: str, *, reason: str) -> list[str]:
        return self.receipt_book.lift_tombstone(target, reason=reason)

    def opt_out(self, probes: Sequence[bytes], *, reference: str) -> OptOut:
        return self.lifecycle.opt_out(probes, reference=reference)

    def suppressions(self) -> list[Suppression]:
        self._require(P.OPT_OUT, action="opt-out")
        return self.store.suppressions()

    def subject_access(self, probes: Sequence[bytes], *, reference: str) -> list[Holding]:
        """Everything held that matches the person's photos: source, item, date, box."""
        return self.lifecycle.subject_access(probes, reference=reference)

    def subject_thumbnail(self, face_id: int) -> bytes:
        """A face's thumbnail for a subject access answer (the HTTP edge checks that the
        caller's own answer listed the face; the access itself was audited)."""
        self._require(P.SUBJECT_ACCESS, action="subject-access")
        return self.engine.catalog.thumbnail(face_id)

    def gc(self, now: datetime | None = None) -> GcReport:
        """Retention (Lifecycle.gc); then new faces are screened against the watches and
        the expired watches purged."""
        from dataclasses import replace

        report = self.lifecycle.gc(now)
        self.watchlist.screen_new(now)
        return replace(report, watches_purged=len(self.watchlist.purge_expired(now)))

    # -- watchlists (governance/watches.py) -----------------------------------------------

    def _person_template(self, person: int) -> tuple[tuple[int, ...], np.ndarray, list[float]]:
        """A person's face ids, and the descriptors and qualities of its best faces
        (search/template.py: at most TEMPLATE_MAX): the template a search or watch uses."""
        faces = self.persons.faces_of(person)
        rows = self.engine.catalog.faces(faces)
        chosen = pick_template({f: r.quality for f, r in rows.items()})
        stored = self.engine.catalog.embeddings(chosen)
        return faces, np.stack([stored[f] for f in chosen]), [rows[f].quality for f in chosen]

    def add_watch(
        self,
        probes: Sequence[bytes] = (),
        *,
        case: str,
        purpose: str,
        expires_days: int | None = None,
        sources: Sequence[str] | None = None,
        person: int | None = None,
    ) -> WatchRecord:
        """A watch on the person in ``probes`` (the largest face of each), or on a
        catalogued ``person`` (its best faces' descriptors, as a search by person)."""
        if bool(probes) == (person is not None):
            raise InputError("watch for photos of a person or for a person id, not both or neither")
        if person is None:
            return self.watchlist.add(
                probes, case=case, purpose=purpose, expires_days=expires_days, sources=sources
            )
        self._require(P.WATCH, action="watch-add", case=case, purpose=purpose)
        _, template, qualities = self._person_template(person)
        return self.watchlist.create(
            template,
            qualities,
            case=case,
            purpose=purpose,
            expires_days=expires_days,
            sources=sources,
            kind="person",
            person_id=person,
        )

    def watches(self) -> list[WatchRecord]:
        return self.watchlist.listed()

    def watch_alerts(self, watch_id: int | None = None) -> list[Alert]:
        return self.watchlist.alerts(watch_id)

    def alert_thumbnail(self, alert_id: int) -> bytes:
        return self.watchlist.thumbnail(alert_id)

    def remove_watch(self, watch_id: int) -> WatchRecord:
        return self.watchlist.remove(watch_id)

    def purge_watches(self, now: datetime | None = None) -> list[int]:
        return self.watchlist.purge_expired(now)

    def export_results(
        self,
        results: Sequence[SearchResult],
        path: Path | str,
        *,
        case: str,
        purpose: str,
        fmt: str = "csv",
    ) -> ExportRecord:
        return self.exporter.export_results(results, path, case=case, purpose=purpose, fmt=fmt)

    def export_source(
        self, name: str, path: Path | str, *, case: str = "", purpose: str = "", fmt: str = "csv"
    ) -> ExportRecord:
        return self.exporter.export_source(name, path, case=case, purpose=purpose, fmt=fmt)

    def exports(self, source: str | None = None) -> list[ExportRecord]:
        return self.exporter.exports(source)

    # -- audit ----------------------------------------------------------------------------

    def export_file(self, export_id: str) -> tuple[ExportRecord, bytes]:
        return self.exporter.export_file(export_id)

    def export_search_served(
        self, image: bytes, *, case: str, purpose: str, top_k: int | None = None
    ) -> ExportRecord:
        """Search (audited) and export the results into the home's exports folder."""
        self._require(P.EXPORT, action="export", case=case, purpose=purpose)
        results = self.search(image, case=case, purpose=purpose, top_k=top_k)
        path = self.exporter.served_path()
        return self.exporter.export_results(results, path, case=case, purpose=purpose)

    def export_source_served(self, name: str, *, case: str, purpose: str) -> ExportRecord:
        """A source export into the home's exports folder, for :meth:`export_file`."""
        path = self.exporter.served_path()
        return self.exporter.export_source(name, path, case=case, purpose=purpose)

    def verify_audit(self, anchors: Sequence[AuditHead] = ()) -> VerifyReport:
        return self.auditing.verify(anchors)

    def anchor_audit(self, out: Path | str) -> AuditHead:
        return self.auditing.anchor(out)

    def anchor_head(self) -> AuditHead:
        """The signed head, for the caller to keep elsewhere (HTTP ``POST /v1/audit/anchors``)."""
        return self.auditing.anchor_head(f"returned to {self.actor.name}")

    def audit_page(
        self, wanted: AuditFilter, *, limit: int, before: int | None = None
    ) -> AuditPage:
        return self.auditing.page(wanted, limit=limit, before=before)

    def export_audit(self, out: TextIO, fmt: str = "jsonl") -> int:
        return self.auditing.export(out, fmt)

    def record_config_change(self, changes: dict[str, Any]) -> None:
        """Audit a settings or account change made by another module (server, CLI)."""
        self._require(P.MANAGE_USERS, action="config-change")
        self._record("config-change", details={"changes": changes})

    def rebuild_index(self, kind: str | None = None) -> int:
        """Rebuild the vector index from the catalog (see :meth:`Engine.rebuild_index`)."""
        self._require(P.MANAGE_INDEX, action="index-build")
        started = time.perf_counter()
        n = self.engine.rebuild_index(kind)
        seconds = round(time.perf_counter() - started, 2)
        self._record("index-build", details={"kind": kind, "vectors": n, "seconds": seconds})
        return n

    def compact_index(self) -> int:
        """Physically drop removed and replaced vectors and rewrite the index files."""
        self._require(P.MANAGE_INDEX, action="index-compact")
        dropped = self.engine.compact_index()
        self._record("index-compact", details={"dropped": dropped})
        return dropped

    def reembed(
        self, model: str, *, progress: Progress_cb | None = None, in_process: bool = False
    ) -> ReembedReport:
        """Re-read every held image through its source with another model pack, build a new
        catalog and index beside the old ones and switch to them when complete (resumable;
        see ``faceindex.reembed``). Audited at start and end; needs manage-index."""
        from faceindex.reembed import reembed
        from faceindex.vision.pack import resolve_pack

        self._require(P.MANAGE_INDEX, action="reembed")
        pack = resolve_pack(model)
        before = self.engine.pack.identity.describe()
        to = pack.identity.describe()
        self._record("reembed", details={"phase": "start", "from": before, "to": to})
        report = reembed(
            self.engine,
            pack,
            suppressions=len(self.store.suppressions()),
            drop_probes=self.store.drop_probes,
            progress=progress,
            in_process=in_process,
        )
        self.store.dim = pack.dim
        self._record("reembed", details={"phase": "done", **asdict(report)})
        return report
