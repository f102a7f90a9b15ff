"""Erasure with receipts, made so that no erasure completes unaudited and none is undone.

Every erasure runs one :class:`Plan` under the engine home's erasure lock:

1. the plan is written as an audited *intent* (a ``deletion`` entry with phase ``intent``,
   and the plan itself in ``governance.db`` with the sha256 of the images it will remove
   as pending tombstones), before anything is deleted;
2. the catalog commit (one transaction; search stops returning the faces at once);
3. the vectors leave the index, the index is saved, the catalog is checkpointed
   (``deletion.py``), a source's provenance file is removed;
4. the ``deletion`` entry carrying the receipt's digest is appended, and the receipt, the
   tombstones of the images really removed and the intent's completion are stored in one
   transaction.

An intent left pending (the process died anywhere after step 1) is finished on the next
open of Governance, or by the next erasure: the plan's commit is redone (each is
idempotent: ids are never reused) and the receipt is issued with ``recovered=True`` and the
receipt id the intent announced. So a receipt is always obtainable, and rerunning the
command that died returns it. :mod:`faults` names the points a crash test can stop at.

Tombstones: an erased image's bytes (sha256) are refused by every later ingest (the
runner's image screen) until a privacy officer or admin lifts them, audited. Image and
source erasures leave tombstones; face and person erasures keep the image row (so the same
bytes only gain a location) and use the receipt probe; retention leaves none (the data may
be collected again under the source's basis), and neither does retiring an image whose file
was replaced in place (nobody asked for it to be erased: the bytes may be held again). An
erased image's perceptual hash is kept with its tombstone, so re-encoded and resized copies
are refused too (``near_copies.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from faceindex.catalog.base import ErasedRows
from faceindex.engine import Engine
from faceindex.errors import NotFoundError
from faceindex.governance.acting import Acting
from faceindex.governance.audit import AuditEvent
from faceindex.governance.base import Receipt
from faceindex.governance.deletion import compact, erase_face_rows, merge
from faceindex.governance.faults import NO_FAULTS, FaultPoints
from faceindex.governance.near_copies import hashes_of, keep_copies
from faceindex.governance.receipts import receipt_fields
from faceindex.governance.roles import Permission
from faceindex.governance.store import GovernanceStore, new_id

__all__ = ["Erasure", "Plan"]

log = logging.getLogger(__name__)
P = Permission


@dataclass(frozen=True)
class Plan:
    """What one erasure removes, as written in its intent before the catalog commit.

    ``faces``, ``images``, ``items`` and ``source_id`` are what the commit deletes; the
    ``watch_*`` ids are everything that may go with them (a source's images and faces),
    from which a recovered receipt is computed; ``digests`` (image id -> sha256) are the
    tombstones to keep for the images that really went."""

    kind: str  # "face" | "image" | "source" | "person" | "opt-out" | "retention"
    target: str
    reason: str
    actor: str
    role: str
    faces: tuple[int, ...] = ()
    images: tuple[int, ...] = ()
    items: tuple[int, ...] = ()
    source_id: int = 0
    watch_faces: tuple[int, ...] = ()
    watch_images: tuple[int, ...] = ()
    digests: dict[str, str] = field(default_factory=dict)
    sources: tuple[str, ...] = ()
    exports: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        d = dict(data)
        for key in ("faces", "images", "items", "watch_faces", "watch_images"):
            d[key] = tuple(int(i) for i in d.get(key, ()))
        for key in ("sources", "exports"):
            d[key] = tuple(str(i) for i in d.get(key, ()))
        d["digests"] = {str(k): str(v) for k, v in d.get("digests", {}).items()}
        return cls(**d)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


class Erasure:
    """The erasures, for one actor: plans, intents, commits, receipts, recovery. Reading
    receipts and tombstones back is :class:`~faceindex.governance.receipts.ReceiptBook`."""

    def __init__(
        self,
        engine: Engine,
        store: GovernanceStore,
        acting: Acting,
        faults: FaultPoints = NO_FAULTS,
    ) -> None:
        self.engine = engine
        self.store = store
        self.acting = acting
        self.faults = faults

    # -- the erasures ---------------------------------------------------------------------

    def erase_faces(self, face_ids: Sequence[int], *, reason: str = "") -> Receipt:
        self.acting.require(P.DELETE, action="deletion")
        target = " ".join(str(i) for i in face_ids)
        with self._locked():
            present = tuple(sorted(self.engine.catalog.faces([int(i) for i in face_ids])))
            if not present and (earlier := self._earlier("face", target)) is not None:
                return self._repeat(earlier)
            plan = self._plan("face", target, reason, faces=present, watch_faces=present)
            return self.execute(plan)

    def erase_images(self, image_ids: Sequence[int], *, reason: str = "") -> Receipt:
        self.acting.require(P.DELETE, action="deletion")
        target = " ".join(str(i) for i in image_ids)
        cat = self.engine.catalog
        with self._locked():
            images = tuple(sorted(cat.existing_images([int(i) for i in image_ids])))
            if not images and (earlier := self._earlier("image", target)) is not None:
                return self._repeat(earlier)
            plan = self._plan(
                "image",
                target,
                reason,
                images=images,
                watch_images=images,
                watch_faces=tuple(sorted(cat.face_ids_of_images(images))),
                digests={str(k): v for k, v in cat.image_digests(images).items()},
            )
            return self.execute(plan)

    def erase_source(self, name: str, *, reason: str = "") -> Receipt:
        """The source, its locations, and images no other source holds. The receipt lists
        the registered exports that copied its data (they are outside our reach). Erasing
        a source already erased returns its receipt."""
        self.acting.require(P.DELETE, action="deletion", sources=(name,))
        cat = self.engine.catalog
        with self._locked():
            try:
                rec = cat.get_source(name)
            except NotFoundError:
                earlier = self._earlier("source", name)
                if earlier is None:
                    raise
                return self._repeat(earlier)
            images = tuple(cat.image_ids_of_source(rec.id))
            plan = self._plan(
                "source",
                name,
                reason,
                source_id=rec.id,
                watch_images=images,
                watch_faces=tuple(sorted(cat.face_ids_of_images(images))),
                digests={str(k): v for k, v in cat.image_digests(images).items()},
                sources=(name,),
                exports=tuple(e.path for e in self.store.exports(name)),
            )
            return self.execute(plan)

    def erase_matching(
        self, kind: str, target: str, face_ids: Sequence[int], reason: str, *,
        probe: np.ndarray | None = None,
    ) -> Receipt:  # fmt: skip
        """Erase the faces a probe matched (person, opt-out); the caller checked the
        permission and chose the faces."""
        with self._locked():
            present = tuple(sorted(self.engine.catalog.faces([int(i) for i in face_ids])))
            plan = self._plan(kind, target, reason, faces=present, watch_faces=present)
            return self.execute(plan, probe=probe)

    def erase_retention(
        self,
        target: str,
        item_ids: Sequence[int],
        face_ids: Sequence[int],
        sources: tuple[str, ...],
        image_ids: Sequence[int] = (),
        retired: Sequence[int] = (),
    ) -> tuple[ErasedRows, Receipt]:
        """Retention: expired locations (and what only they held), opt-out matches,
        images holding erased bytes again (``image_ids``: tombstoned anew) and images no
        location holds (``retired``: no tombstone)."""
        cat = self.engine.catalog
        with self._locked():
            faces = tuple(sorted(int(i) for i in face_ids))
            again = cat.existing_images([int(i) for i in image_ids])
            images = tuple(sorted(set(again) | set(cat.existing_images(list(retired)))))
            plan = self._plan(
                "retention",
                target,
                "retention",
                items=tuple(sorted(int(i) for i in item_ids)),
                faces=faces,
                images=images,
                watch_faces=faces + tuple(cat.face_ids_of_images(images)),
                watch_images=images,
                digests={str(k): v for k, v in cat.image_digests(again).items()},
                sources=sources,
            )
            receipt, erased = self._execute(plan, None)
        return erased, receipt

    def retire_unheld(self, target: str) -> Receipt | None:
        """Erase the images no location holds any more (their file was replaced in place,
        or no longer decodes), with a receipt and no tombstone; None when there are none.
        Called by the ingest that displaced them (its permission suffices: nothing a
        source still holds is touched, and governed ingests commit under this lock)."""
        cat = self.engine.catalog
        with self._locked():
            images = tuple(cat.unheld_images())
            if not images:
                return None
            plan = self._plan(
                "replaced",
                target,
                "replaced in place",
                images=images,
                watch_images=images,
                watch_faces=tuple(sorted(cat.face_ids_of_images(images))),
                sources=(target,),
            )
            return self.execute(plan)

    # -- the protocol: intent, commit, completion -----------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self.store.erasure_lock():
            self._recover_locked()
            yield

    def _plan(self, kind: str, target: str, reason: str, **parts: Any) -> Plan:
        actor = self.acting.actor
        return Plan(kind, target, reason, actor.name, actor.role.value, **parts)

    def execute(self, plan: Plan, *, probe: np.ndarray | None = None) -> Receipt:
        """Run a plan: the audited intent, the commit, the completion (lock held)."""
        return self._execute(plan, probe)[0]

    def _execute(self, plan: Plan, probe: np.ndarray | None) -> tuple[Receipt, ErasedRows]:
        intent, rid = new_id("int"), new_id("rcp")
        seq = self.acting.record(
            "deletion",
            sources=plan.sources,
            details={
                "phase": "intent",
                "intent": intent,
                "receipt": rid,
                "kind": plan.kind,
                "target": plan.target[:200],
                "reason": plan.reason,
                "faces": len(plan.watch_faces),
                "images": len(plan.watch_images),
                "items": len(plan.items),
            },
        )
        self.store.add_content_hashes(hashes_of(self.engine.catalog, plan.digests))
        self.store.add_intent(intent, plan.as_dict(), rid, seq, list(plan.digests.values()))
        self.faults.reached("erasure-intent")
        try:
            erased = self._commit(plan)
        except Exception as exc:
            self.store.abort_intent(intent)
            self.acting.record(
                "deletion",
                sources=plan.sources,
                outcome="error",
                details={"phase": "aborted", "intent": intent, "error": type(exc).__name__},
            )
            raise
        self.faults.reached("erasure-committed")
        return self._complete(intent, rid, plan, erased, probe=probe, recovered=False), erased

    def _commit(self, plan: Plan) -> ErasedRows:
        """The catalog deletions of a plan. Idempotent, so recovery can simply redo it."""
        cat = self.engine.catalog
        parts: list[ErasedRows] = []
        if plan.items:
            parts.append(cat.delete_items(plan.items))
        if plan.images:
            parts.append(cat.delete_images(plan.images))
        if plan.source_id:
            try:
                still = cat.get_source(plan.target).id == plan.source_id
            except NotFoundError:
                still = False
            if still:
                parts.append(cat.delete_source(plan.source_id))
        if plan.faces:
            parts.append(erase_face_rows(self.engine, plan.faces))
        return merge(*parts)

    def _complete(
        self,
        intent: str,
        rid: str,
        plan: Plan,
        erased: ErasedRows,
        *,
        probe: np.ndarray | None,
        recovered: bool,
    ) -> Receipt:
        compact(self.engine, erased.face_ids)
        if plan.kind == "source":
            provenance = self.engine.settings.home / "provenance" / f"{plan.target}.jsonl"
            provenance.unlink(missing_ok=True)
        self.faults.reached("erasure-compacted")
        now = datetime.now(timezone.utc)
        fields = receipt_fields(erased)
        details: dict[str, Any] = {
            "phase": "done",
            "receipt": rid,
            "intent": intent,
            "kind": plan.kind,
            "reason": plan.reason,
            **fields,
            "photo_groups": list(erased.groups),
        }
        if recovered:
            details |= {"recovered": True, "completed_by": self.acting.actor.name}
        seq = self.acting.audit.append(
            AuditEvent("deletion", plan.actor, plan.role, sources=plan.sources, details=details)
        ).seq
        receipt = Receipt(
            rid,
            plan.kind,
            plan.target,
            fields["faces_deleted"],
            fields["images_deleted"],
            plan.actor,
            plan.role,
            _iso(now),
            fields["faces_digest"],
            plan.reason,
            plan.exports,
            seq,
            recovered,
            erased.groups,
            erased.groups_removed,
        )
        days = self.engine.settings.receipt_probe_days
        keep = probe if probe is not None and days > 0 else None
        tombs = [plan.digests[str(i)] for i in erased.image_ids if str(i) in plan.digests]
        keep_copies(self.engine.catalog, self.store, tombs)
        self.store.complete_intent(
            intent,
            receipt,
            erased.face_ids,
            erased.image_ids,
            tombs,
            keep,
            _iso(now + timedelta(days=days)),
        )
        return receipt

    # -- recovery -------------------------------------------------------------------------

    def recover(self) -> list[Receipt]:
        """Finish every intent a dead process left pending; returns their receipts. Does
        nothing while another process is erasing (its intent is alive, not dead)."""
        with self.store.erasure_lock(blocking=False) as held:
            return self._recover_locked() if held else []

    def _recover_locked(self) -> list[Receipt]:
        done = []
        for intent, body, rid, _ in self.store.pending_intents():
            plan = Plan.from_dict(body)
            try:
                erased = merge(self._commit(plan), self._gone(plan))
                receipt = self._complete(intent, rid, plan, erased, probe=None, recovered=True)
            except Exception:
                log.exception("could not finish the interrupted erasure %s (%s)", rid, plan.kind)
                continue
            log.warning(
                "finished an interrupted %s erasure of %s: receipt %s",
                plan.kind,
                plan.target[:80],
                receipt.id,
            )
            done.append(receipt)
        return done

    def _gone(self, plan: Plan) -> ErasedRows:
        """What of the plan's watched ids the catalog no longer holds (the dead process's
        commit result is lost with it; ids are never reused, so absence is exact)."""
        cat = self.engine.catalog
        live = set(cat.faces(list(plan.watch_faces)))
        held = set(cat.existing_images(list(plan.watch_images)))
        return ErasedRows(
            tuple(i for i in plan.watch_images if i not in held),
            tuple(i for i in plan.watch_faces if i not in live),
            0,
        )

    def _earlier(self, kind: str, target: str) -> Receipt | None:
        same = [r for r in self.store.receipts() if r.kind == kind and r.target == target]
        return same[-1] if same else None

    def _repeat(self, receipt: Receipt) -> Receipt:
        """A rerun of an erasure already done (e.g. after its process died): its receipt."""
        self.acting.record(
            "deletion",
            sources=(receipt.target,) if receipt.kind == "source" else (),
            details={"phase": "repeat", "receipt": receipt.id, "kind": receipt.kind},
        )
        return receipt
