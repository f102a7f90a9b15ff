"""The watchlist collaborator of the Governance facade: watches on new faces, their alerts,
their expiry.

A watch is one or more face descriptors (the largest face of each probe photo; a person's
faces once persons are catalog rows: :meth:`Watches.create` takes any list of them) with a
case reference, a purpose, an owner, an expiry and the sources it may watch. The photos are
not kept: their sha256s are in the watch row and its audit entry, the descriptors in the
catalog (``watch_templates``) until the watch ends.

Screening (:meth:`Watches.screen_new`) follows the catalog's change log: every face added
after the screening cursor is compared with the live watches, then the cursor moves on. The
ingest calls it after each committed batch (at most every ``SCREEN_EVERY_S``) and once at the
end; ``gc`` calls it too, so a face any node added is screened exactly once per watch, and a
crash between a commit and its screen only delays the alert. Opt-out outranks a watch: a
face matching a suppression never reaches the catalog, and one registered since is skipped
here and withheld from every alert listing.

Who sees what: the owner (permission ``watch``) sees and ends their own watches and reads
their alerts; ``read-audit`` (auditor, privacy officer, admin) sees every watch and alert;
ending another's watch takes both (admin). An expired watch is not screened; ``gc`` or
``watch purge`` purges it: its templates are deleted, its row and alerts stay (evidence for
the case, and the audit log names them anyway). Everything is audited: ``watch-add``,
``watch-list``, ``watch-alerts``, ``watch-remove``, ``watch-purge``, and one ``watch-alert``
per alert.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np

from faceindex.catalog.base import Catalog
from faceindex.catalog.watch_rows import AlertRecord, NewWatch, WatchRecord
from faceindex.engine import Engine
from faceindex.errors import InputError, NoFaceError, NotFoundError
from faceindex.governance.acting import Acting
from faceindex.governance.roles import Permission
from faceindex.governance.screen import within
from faceindex.governance.store import GovernanceStore
from faceindex.governance.watch_screen import NewFace, Screened, alerts_for, watch_compared
from faceindex.search.searcher import gallery_size
from faceindex.types import Provenance
from faceindex.vision.factory import model_tag

__all__ = ["SCREEN_EVERY_S", "Alert", "ScreenReport", "Watches"]

log = logging.getLogger(__name__)
P = Permission

SCREEN_EVERY_S = 5.0  # during an ingest, new faces are screened at most this often
PAGE = 1000  # new faces screened per step


@dataclass(frozen=True)
class Alert:
    """An alert as its reader sees it: the watch's case beside where the face was found."""

    id: int
    watch_id: int
    case_reference: str
    purpose: str
    owner: str
    face_id: int
    image_id: int
    image_sha256: str
    locations: tuple[Provenance, ...]
    distance: float
    band: str
    stranger_chance: float
    compared: int
    created_at: str
    held: bool  # the face is still in the gallery (False once erased)


@dataclass(frozen=True)
class ScreenReport:
    faces: int  # new faces screened
    alerts: int  # new alerts recorded


SourcesFor = Callable[[str, Sequence[str] | None], list[str]]


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _expired(w: WatchRecord, now: datetime) -> bool:
    return datetime.fromisoformat(w.expires_at) <= now


class Watches:
    def __init__(
        self,
        engine: Engine,
        store: GovernanceStore,
        acting: Acting,
        sources_for: SourcesFor,
    ) -> None:
        self.engine = engine
        self.store = store
        self.acting = acting
        self.sources_for = sources_for  # the search's purpose rule (Governance._sources_for)

    @property
    def _cat(self) -> Catalog:
        return self.engine.catalog

    # -- adding ---------------------------------------------------------------------------

    def add(
        self,
        probes: Sequence[bytes],
        *,
        case: str,
        purpose: str,
        expires_days: int | None = None,
        sources: Sequence[str] | None = None,
    ) -> WatchRecord:
        """A watch on the person in the photos (the largest face of each)."""
        shas = " ".join(hashlib.sha256(p).hexdigest() for p in probes)
        self.acting.require(P.WATCH, action="watch-add", case=case, purpose=purpose)
        templates, qualities = self._templates(probes)
        return self.create(
            templates,
            qualities,
            case=case,
            purpose=purpose,
            expires_days=expires_days,
            sources=sources,
            probe_sha256=shas,
        )

    def create(
        self,
        templates: np.ndarray,
        qualities: Sequence[float],
        *,
        case: str,
        purpose: str,
        expires_days: int | None = None,
        sources: Sequence[str] | None = None,
        kind: str = "photo",
        person_id: int | None = None,
        probe_sha256: str = "",
    ) -> WatchRecord:
        """A watch on any list of descriptors: a probe's faces, or (``kind="person"``) the
        best faces of a catalogued person (``Governance.add_watch(person=...)``)."""
        self.acting.require(P.WATCH, action="watch-add", case=case, purpose=purpose)
        if not case.strip() or not purpose.strip():
            raise InputError("a watch needs a case reference and a purpose")
        s = self.engine.settings
        days = s.watch_default_days if expires_days is None else int(expires_days)
        if not 1 <= days <= s.watch_max_days:
            raise InputError(f"a watch expires after 1 to {s.watch_max_days} days, not {days}")
        allowed = self.sources_for(purpose, sources or None)  # refuses what the purpose may not
        scope = tuple(allowed) if sources else ()
        expires = (_now() + timedelta(days=days)).isoformat(timespec="seconds")
        rec = self._cat.add_watch(
            NewWatch(
                owner=self.acting.actor.name,
                case_reference=case,
                purpose=purpose,
                kind=kind,
                model=model_tag(s, self.engine.pack),
                expires_at=expires,
                templates=np.asarray(templates, dtype=np.float32),
                qualities=tuple(float(q) for q in qualities),
                sources=scope,
                probe_sha256=probe_sha256,
                person_id=person_id,
            )
        )
        self.acting.record(
            "watch-add",
            case=case,
            purpose=purpose,
            probe_sha256=probe_sha256,
            sources=scope,
            details={
                "watch": rec.id,
                "kind": kind,
                "person": person_id,
                "templates": rec.templates,
                "expires_at": rec.expires_at,
            },
        )
        return rec

    def _templates(self, probes: Sequence[bytes]) -> tuple[np.ndarray, list[float]]:
        if not probes:
            raise NoFaceError("give at least one photo of the person to watch for")
        s = self.engine.settings
        analyzer = self.engine.probe_analyzer or self.engine.analyzer
        vecs, quals = [], []
        for n, image in enumerate(probes, 1):
            faces = analyzer.analyze_image(
                image, max_pixels=s.max_pixels, max_bytes=s.max_bytes
            ).faces
            if not faces:
                raise NoFaceError(f"no face found in photo {n}")
            best = max(faces, key=lambda f: f.bbox.area)
            vecs.append(np.asarray(best.embedding, dtype=np.float32))
            quals.append(float(best.quality.score))
        return np.stack(vecs), quals

    # -- reading --------------------------------------------------------------------------

    def _sees_all(self) -> bool:
        return self.acting.actor.can(P.READ_AUDIT)

    def _visible(self, ids: Sequence[int] | None = None) -> list[WatchRecord]:
        owner = None if self._sees_all() else self.acting.actor.name
        return list(self._cat.watches(ids, owner=owner))

    def listed(self) -> list[WatchRecord]:
        """The caller's watches (every watch for read-audit), never their templates."""
        self.acting.require(P.WATCH, P.READ_AUDIT, action="watch-list")
        rows = self._visible()
        self.acting.record("watch-list", details={"watches": [w.id for w in rows]})
        return rows

    def get(self, watch_id: int) -> WatchRecord:
        found = self._visible([watch_id])
        if not found:  # another owner's watch is as absent as a missing one
            raise NotFoundError(f"no watch {watch_id}")
        return found[0]

    def alerts(self, watch_id: int | None = None) -> list[Alert]:
        """Alerts of one watch, or of every watch the caller may see; an alert on a face
        that has since opted out is withheld (opt-out outranks a watch)."""
        self.acting.require(P.WATCH, P.READ_AUDIT, action="watch-alerts")
        seen = [self.get(watch_id)] if watch_id is not None else self._visible()
        watches = {w.id: w for w in seen}
        rows = self._cat.alerts(sorted(watches)) if watches else []
        rows = self._not_suppressed(rows)
        held = self._cat.faces(sorted({a.face_id for a in rows}))
        out = [_alert(a, watches[a.watch_id], a.face_id in held) for a in rows]
        self.acting.record(
            "watch-alerts",
            face_ids=tuple(sorted({a.face_id for a in out})),
            details={"watch": watch_id, "alerts": [a.id for a in out]},
        )
        return out

    def thumbnail(self, alert_id: int) -> bytes:
        """The face thumbnail of an alert the caller may see, while the face is held."""
        self.acting.require(P.WATCH, P.READ_AUDIT, action="watch-alerts")
        found = self._cat.alerts(ids=[alert_id])
        if not found or not self._visible([found[0].watch_id]) or not self._not_suppressed(found):
            raise NotFoundError(f"no alert {alert_id}")
        return bytes(self._cat.thumbnail(found[0].face_id))

    def _not_suppressed(self, rows: list[AlertRecord]) -> list[AlertRecord]:
        templates = self.store.suppression_templates()
        if not len(templates) or not rows:
            return rows
        vecs = self._cat.embeddings(sorted({a.face_id for a in rows}))
        order = sorted(vecs)
        hidden: set[int] = set()
        if order:
            mask = within(np.stack([vecs[i] for i in order]), templates, self._suppress_t)
            hidden = {i for i, m in zip(order, mask, strict=True) if m}
        return [a for a in rows if a.face_id not in hidden]

    @property
    def _suppress_t(self) -> float:
        return self.engine.thresholds.suppress

    # -- ending ---------------------------------------------------------------------------

    def remove(self, watch_id: int) -> WatchRecord:
        """End a watch now: templates deleted, row and alerts kept."""
        self.acting.require(P.WATCH, action="watch-remove")
        w = self.get(watch_id)  # another's watch only for read-audit too (admin)
        if not self._cat.end_watch(w.id, "removed"):
            raise InputError(f"watch {watch_id} has already ended ({w.state})")
        self.acting.record(
            "watch-remove",
            case=w.case_reference,
            purpose=w.purpose,
            details={"watch": w.id, "owner": w.owner},
        )
        return self._cat.watches([w.id])[0]

    def purge_expired(self, now: datetime | None = None) -> list[int]:
        """Purge every live watch past its expiry (templates deleted); audited."""
        self.acting.require(P.RETENTION, action="watch-purge")
        moment = now or _now()
        expired = [w for w in self._cat.watches() if w.state == "live" and _expired(w, moment)]
        purged = [w.id for w in expired if self._cat.end_watch(w.id, "purged")]
        self.acting.record(
            "watch-purge",
            details={"watches": purged, "at": moment.isoformat(timespec="seconds")},
        )
        return purged

    # -- screening ------------------------------------------------------------------------

    def screen_new(self, now: datetime | None = None) -> ScreenReport:
        """Screen every face added since the cursor against the live watches, record and
        audit the alerts, move the cursor. Needs no permission: part of ingest and gc."""
        cat = self._cat
        self._audit_unaudited()
        upto = cat.generation()
        after = cat.watch_cursor()
        if upto <= after:
            return ScreenReport(0, 0)
        live = self._screened(now or _now())
        faces = alerts = 0
        if live:
            added = cat.faces_added_between(after, upto)
            for start in range(0, len(added), PAGE):
                page = added[start : start + PAGE]
                new = self._new_faces(page)
                faces += len(new)
                made = cat.add_alerts(alerts_for(new, live, self.engine.decider()))
                for a in made:
                    self._audit(a, next(w.watch for w in live if w.watch.id == a.watch_id))
                alerts += len(made)
        cat.advance_watch_cursor(upto)
        if alerts:
            log.warning("watches: %d new alerts from %d new faces", alerts, faces)
        return ScreenReport(faces, alerts)

    def _screened(self, now: datetime) -> list[Screened]:
        cat = self._cat
        model = model_tag(self.engine.settings, self.engine.pack)
        watches = [w for w in cat.watches() if w.state == "live" and not _expired(w, now)]
        stale = [w.id for w in watches if w.model != model]
        if stale:
            log.warning("watches %s were made with another model: not screened", stale)
        watches = [w for w in watches if w.model == model]
        if not watches:
            return []
        templates = cat.watch_templates([w.id for w in watches])
        records = cat.list_sources()
        out = []
        for w in watches:
            held = templates.get(w.id)
            if held is None:
                continue
            wanted = w.purpose.strip().lower()
            allowed = {
                r.name
                for r in records
                if not r.purposes or wanted in {p.strip().lower() for p in r.purposes}
            }
            scope = allowed & set(w.sources) if w.sources else allowed
            if not scope:
                continue
            whole = scope == {r.name for r in records}
            gallery = gallery_size(cat, None if whole else scope)
            out.append(
                Screened(
                    w,
                    held,
                    None if whole else frozenset(scope),
                    watch_compared(len(held.vectors), gallery),
                )
            )
        return out

    def _new_faces(self, page: Sequence[tuple[int, int]]) -> list[NewFace]:
        """The page's faces still held and not matching an opt-out (screened first)."""
        ids = [fid for fid, _ in page]
        rows = self._cat.faces(ids)
        vecs = self._cat.embeddings(ids)
        faces = [NewFace(rows[f], g, vecs[f]) for f, g in page if f in rows and f in vecs]
        templates = self.store.suppression_templates()
        if faces and len(templates):
            mask = within(np.stack([f.vector for f in faces]), templates, self._suppress_t)
            faces = [f for f, hit in zip(faces, mask, strict=True) if not hit]
        return faces

    def _audit(self, a: AlertRecord, w: WatchRecord) -> None:
        seq = self.acting.record(
            "watch-alert",
            case=w.case_reference,
            purpose=w.purpose,
            sources=tuple(sorted({p.source for p in a.locations})),
            face_ids=(a.face_id,),
            details={
                "watch": w.id,
                "owner": w.owner,
                "alert": a.id,
                "image": a.image_id,
                "distance": a.distance,
                "band": a.band,
                "stranger_chance": a.stranger_chance,
                "compared": a.compared,
            },
        )
        self._cat.set_alert_audit(a.id, seq)

    def _audit_unaudited(self) -> None:
        """Alerts recorded by a screen that died before its audit entries were written."""
        pending = self._cat.alerts(unaudited=True)
        if not pending:
            return
        watches = {w.id: w for w in self._cat.watches(sorted({a.watch_id for a in pending}))}
        for a in pending:
            self._audit(a, watches[a.watch_id])


def _alert(a: AlertRecord, w: WatchRecord, held: bool) -> Alert:
    return Alert(
        id=a.id,
        watch_id=a.watch_id,
        case_reference=w.case_reference,
        purpose=w.purpose,
        owner=w.owner,
        face_id=a.face_id,
        image_id=a.image_id,
        image_sha256=a.image_sha256,
        locations=a.locations,
        distance=a.distance,
        band=a.band,
        stranger_chance=a.stranger_chance,
        compared=a.compared,
        created_at=a.created_at,
        held=held,
    )
