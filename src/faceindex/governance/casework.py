"""An investigator's casework: 1:1 verification, review decisions on a search's candidates,
and the case view (a case's searches, verifications, candidates and decisions).

A search is identified by the ``search_id`` its audit entry carries (``Governance.search``
writes it; the HTTP answer and ``faceindex search --json`` show it). The audit log is the
record of which search belonged to which case and returned which faces, so a decision is
accepted only for a face the named search returned, and its case is that search's case.

Who may see and decide what (permissions from ``governance/roles.py``):

- verify: ``search`` (an investigator), with a case reference and a purpose, audited;
- review: ``search``, and the reviewer works on the case (has searched in it), unless the
  actor may also read the whole audit log (an administrator);
- case view: ``read-audit`` sees every case (auditors, privacy officers, administrators);
  ``search`` alone sees the cases the actor has searched in. Another case answers "no
  case", as another user's search does, and the refusal is audited.

The case view is read from the audit log (one pass over it; fine for a log of a few
hundred thousand entries, a candidate for an indexed query beyond that).
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from faceindex.catalog.base import NewReview
from faceindex.errors import InputError, NotFoundError
from faceindex.governance.roles import Permission
from faceindex.types import REVIEW_DECISIONS, Provenance, Review

if TYPE_CHECKING:
    from faceindex.engine import Engine
    from faceindex.governance.acting import Acting
    from faceindex.governance.audit import AuditEntry, AuditLog
    from faceindex.search.verify import Verification

__all__ = [
    "CaseCandidate",
    "CaseSearch",
    "CaseVerification",
    "CaseView",
    "Casework",
    "MAX_NOTE",
    "SEARCH_ID",
    "new_search_id",
]

log = logging.getLogger(__name__)
P = Permission

SEARCH_ID = re.compile(r"^[0-9a-f]{24}$")
MAX_NOTE = 2000
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def new_search_id() -> str:
    """A fresh search id (24 hex digits, the form the HTTP routes accept)."""
    return secrets.token_hex(12)


@dataclass(frozen=True)
class CaseSearch:
    search_id: str | None  # None for searches audited before search ids were
    seq: int  # its audit entry
    at: str
    actor: str
    role: str
    purpose: str
    sources: tuple[str, ...]
    candidates: int  # faces returned
    outcome: str  # "ok" | "error"


@dataclass(frozen=True)
class CaseVerification:
    seq: int
    at: str
    actor: str
    purpose: str
    decision: str  # the band, or "" when the verification failed
    distance: float | None
    outcome: str


@dataclass(frozen=True)
class CaseCandidate:
    face_id: int
    search_ids: tuple[str, ...]  # the searches that returned it (with ids), oldest first
    held: bool  # the face is still in the catalog (not erased since)
    locations: tuple[Provenance, ...]  # where its image is held now (none once erased)
    review: Review | None  # the latest decision in this case
    history: tuple[Review, ...]  # every decision in this case, oldest first


@dataclass(frozen=True)
class CaseView:
    case_reference: str
    searches: tuple[CaseSearch, ...]
    verifications: tuple[CaseVerification, ...]
    candidates: tuple[CaseCandidate, ...]


def latest(reviews: Sequence[Review]) -> dict[int, Review]:
    """face id -> its latest decision (reviews come oldest first)."""
    out: dict[int, Review] = {}
    for r in reviews:
        out[r.face_id] = r
    return out


class Casework:
    def __init__(
        self,
        engine: Engine,
        audit: AuditLog,
        acting: Acting,
        *,
        keep_probe: Callable[[bytes], object] = lambda _photo: None,
    ) -> None:
        self.engine = engine
        self.audit = audit
        self.acting = acting
        self.keep_probe = keep_probe  # keeps a probe photo where the settings say so

    # -- verification ---------------------------------------------------------------------

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
        sha_a = hashlib.sha256(photo_a).hexdigest()
        sha_b = hashlib.sha256(photo_b).hexdigest()
        self.acting.require(
            P.SEARCH, action="verify", case=case, purpose=purpose, probe_sha256=sha_a
        )
        if not case.strip() or not purpose.strip():
            raise InputError("a verification needs a case reference and a purpose")
        self.keep_probe(photo_a)
        self.keep_probe(photo_b)
        asked = {"probe_b_sha256": sha_b, "face_a": face_a, "face_b": face_b}
        try:
            v = self.engine.verify(
                photo_a, photo_b, face_a=face_a, face_b=face_b, match_bound=match_bound
            )
        except Exception as exc:
            self.acting.record(
                "verify",
                case=case,
                purpose=purpose,
                probe_sha256=sha_a,
                outcome="error",
                details={**asked, "error": type(exc).__name__},
            )
            raise
        self.acting.record(  # before the answer is shown; a failed write raises AuditError
            "verify",
            case=case,
            purpose=purpose,
            probe_sha256=sha_a,
            details={
                **asked,
                "face_a": v.faces[0].chosen,
                "face_b": v.faces[1].chosen,
                "distance": v.distance,
                "fmr": v.fmr,
                "decision": v.decision,
                "match_bound": v.match_bound,
            },
        )
        return v

    # -- review decisions -----------------------------------------------------------------

    def review(self, search_id: str, face_id: int, decision: str, *, note: str = "") -> Review:
        """Record a decision on one candidate of one search (audited first: fail closed)."""
        self.acting.require(P.SEARCH, action="review", face_ids=(int(face_id),))
        if decision not in REVIEW_DECISIONS:
            raise InputError(
                f"unknown decision {decision!r}; one of: {', '.join(REVIEW_DECISIONS)}"
            )
        note = note.strip()
        if len(note) > MAX_NOTE or _CONTROL.search(note):
            raise InputError(f"a note is one line of at most {MAX_NOTE} characters")
        search = self._search_entry(search_id)
        case, purpose = search.event.case, search.event.purpose
        if not self._may_see(case, self._searchers(case)):
            self._refuse("review", case, f"search {search_id}")
            raise NotFoundError(f"no search {search_id!r}")
        face = int(face_id)
        if face not in search.event.face_ids:
            raise NotFoundError(f"face {face} is not among the candidates of search {search_id}")
        details = {"search_id": search_id, "decision": decision, "note": note}
        self.acting.record("review", case=case, purpose=purpose, face_ids=(face,), details=details)
        actor = self.acting.actor
        try:
            return self.engine.catalog.add_review(
                NewReview(search_id, case, face, decision, note, actor.name, actor.role.value)
            )
        except Exception as exc:
            self.acting.record(
                "review",
                case=case,
                purpose=purpose,
                face_ids=(face,),
                outcome="error",
                details={**details, "error": type(exc).__name__},
            )
            raise

    def decisions(self, case: str, face_ids: Sequence[int]) -> dict[int, Review]:
        """The latest decision on each of these faces in this case (for a result view)."""
        self.acting.require(P.SEARCH, P.READ_AUDIT, action="case-view", case=case)
        if not face_ids:
            return {}
        return latest(self.engine.catalog.reviews(case, face_ids))

    # -- the case view --------------------------------------------------------------------

    def case(self, case: str) -> CaseView:
        self.acting.require(P.SEARCH, P.READ_AUDIT, action="case-view", case=case)
        if not case.strip():
            raise InputError("name a case reference")
        searches: list[CaseSearch] = []
        verifications: list[CaseVerification] = []
        returned: dict[int, list[str]] = {}
        for entry in self._entries(case=case):
            e = entry.event
            if e.action == "search":
                sid = e.details.get("search_id")
                searches.append(
                    CaseSearch(
                        sid if isinstance(sid, str) else None,
                        entry.seq,
                        entry.at,
                        e.actor,
                        e.role,
                        e.purpose,
                        tuple(e.sources),
                        len(e.face_ids),
                        e.outcome,
                    )  # fmt: skip
                )
                for f in e.face_ids:
                    ids = returned.setdefault(int(f), [])
                    if isinstance(sid, str) and sid not in ids:
                        ids.append(sid)
            elif e.action == "verify":
                distance = e.details.get("distance")
                verifications.append(
                    CaseVerification(
                        entry.seq,
                        entry.at,
                        e.actor,
                        e.purpose,
                        str(e.details.get("decision", "")),
                        float(distance) if isinstance(distance, int | float) else None,
                        e.outcome,
                    )  # fmt: skip
                )
        reviews = self.engine.catalog.reviews(case)
        actors = {s.actor for s in searches} | {v.actor for v in verifications}
        if not self._may_see(case, actors) or not (searches or verifications or reviews):
            if searches or verifications or reviews:
                self._refuse("case-view", case, "case")
            raise NotFoundError(f"no case {case!r}")
        history: dict[int, list[Review]] = {}
        for r in reviews:
            history.setdefault(r.face_id, []).append(r)
            returned.setdefault(r.face_id, [])
        rows = self.engine.catalog.faces(sorted(returned))
        candidates = tuple(
            CaseCandidate(
                face_id=f,
                search_ids=tuple(returned[f]),
                held=f in rows,
                locations=rows[f].locations if f in rows else (),
                review=history[f][-1] if f in history else None,
                history=tuple(history.get(f, ())),
            )
            for f in sorted(returned)
        )
        self.acting.record(
            "case-view",
            case=case,
            details={"searches": len(searches), "candidates": len(candidates)},
        )
        return CaseView(case, tuple(searches), tuple(verifications), candidates)

    # -- plumbing -------------------------------------------------------------------------

    def _entries(self, *, case: str | None = None) -> Iterator[AuditEntry]:
        for entry in self.audit.entries():
            if case is None or entry.event.case == case:
                yield entry

    def _search_entry(self, search_id: str) -> AuditEntry:
        if not SEARCH_ID.match(search_id):
            raise InputError(f"a search id is 24 hex digits, not {search_id!r}")
        for entry in self._entries():
            e = entry.event
            if (
                e.action == "search"
                and e.outcome == "ok"
                and e.details.get("search_id") == search_id
            ):
                return entry
        raise NotFoundError(f"no search {search_id!r}")

    def _searchers(self, case: str) -> set[str]:
        return {
            e.event.actor
            for e in self._entries(case=case)
            if e.event.action in ("search", "verify")
        }

    def _may_see(self, case: str, searchers: Collection[str]) -> bool:
        """Whether the actor works on ``case`` (has searched in it) or may read every case."""
        actor = self.acting.actor
        return actor.can(P.READ_AUDIT) or actor.name in searchers

    def _refuse(self, action: str, case: str, what: str) -> None:
        try:
            self.acting.record(
                "denied",
                case=case,
                outcome="denied",
                details={"action": action, "reason": f"{what}: not a case of this actor"},
            )
        except Exception:  # the refusal stands whether or not it could be logged
            log.exception("could not audit a refused %s", action)
