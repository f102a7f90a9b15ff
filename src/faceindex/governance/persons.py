"""The persons collaborator of the Governance facade: build, list, name, merge, split and
remove-face, each permission-checked and audited.

Seeing persons needs ``search`` (a person is a result of comparing faces, as a search is);
changing them needs ``manage-persons``. Every call appends one entry: ``person-build``,
``person-view`` (list, show) or ``person-change`` (``details.op``: name, merge, split,
remove-face), with the face ids moved.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import asdict

from faceindex.engine import Engine
from faceindex.errors import InputError, NotFoundError
from faceindex.governance.acting import Acting
from faceindex.governance.roles import Permission
from faceindex.persons.base import Person, Placement
from faceindex.persons.build import plan, policy_for
from faceindex.persons.view import BuildReport, PersonView

__all__ = ["LABEL_MAX", "PersonBook"]

log = logging.getLogger(__name__)
P = Permission
LABEL_MAX = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # as the HTTP schema's LABEL_PATTERN


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: no catalog can store it
        return False
    return True


class PersonBook:
    def __init__(self, engine: Engine, acting: Acting) -> None:
        self.engine = engine
        self.acting = acting

    # -- building -------------------------------------------------------------------------

    def build(self, *, rebuild: bool = False) -> BuildReport:
        """Place the faces in no person (``rebuild``: every face no user placed)."""
        self.acting.require(P.MANAGE_PERSONS, action="person-build")
        s = self.engine.settings
        policy = policy_for(
            self.engine.calibration,
            s.persons_method,
            s.persons_neighbours,
            link_fmr=s.persons_link_fmr,
            gate_fmr=s.persons_gate_fmr,
        )
        catalog = self.engine.catalog
        before = {p.id for p in catalog.persons()}
        todo = plan(
            catalog,
            self.engine.index,
            policy,
            rebuild=rebuild,
            normalise=self.engine.pack.normalise,
        )
        ids = catalog.assign_persons(todo.placements, drop_unpinned=todo.drop_unpinned)
        after = catalog.persons()
        created = len({i for i in ids if i not in before})
        report = BuildReport(
            method=policy.method,
            rebuild=rebuild,
            faces_placed=todo.faces_considered,
            links=todo.links,
            persons_created=created,
            persons_joined=len({i for i in ids if i in before}),
            persons=len(after),
            edge=policy.edge,
            gate=policy.gate,
        )
        self.acting.record("person-build", details=asdict(report))
        log.info("persons build: %s", report)
        return report

    # -- reading --------------------------------------------------------------------------

    def _views(self, persons: Sequence[Person]) -> list[PersonView]:
        rows = self.engine.catalog.faces([f for p in persons for f in p.face_ids])
        return [PersonView(p, tuple(rows[f] for f in p.face_ids if f in rows)) for p in persons]

    def _one(self, person_id: int) -> Person:
        found = self.engine.catalog.persons([person_id])
        if not found:
            raise NotFoundError(f"no person {person_id}")
        return found[0]

    def list(self) -> list[PersonView]:
        self.acting.require(P.SEARCH, action="person-view")
        views = self._views(self.engine.catalog.persons())
        self.acting.record("person-view", details={"op": "list", "persons": len(views)})
        return views

    def show(self, person_id: int) -> PersonView:
        self.acting.require(P.SEARCH, action="person-view")
        view = self._views([self._one(person_id)])[0]
        self.acting.record(
            "person-view",
            face_ids=view.person.face_ids,
            details={"op": "show", "person": person_id},
        )
        return view

    def faces_of(self, person_id: int) -> tuple[int, ...]:
        """A person's face ids (for a search by person; the search audits itself)."""
        self.acting.require(P.SEARCH, action="search")
        return self._one(person_id).face_ids

    def thumbnail(self, person_id: int, face_id: int) -> bytes:
        """The thumbnail of one of a person's faces (the list or show that named it is the
        audited read)."""
        self.acting.require(P.SEARCH, action="person-view")
        if face_id not in self._one(person_id).face_ids:
            raise NotFoundError(f"face {face_id} is not in person {person_id}")
        return self.engine.catalog.thumbnail(face_id)

    # -- changing -------------------------------------------------------------------------

    def _change(self, op: str, face_ids: Sequence[int], **details: object) -> None:
        self.acting.record(
            "person-change", face_ids=tuple(sorted(face_ids)), details={"op": op, **details}
        )

    def name(self, person_id: int, label: str) -> PersonView:
        """Give a person a name or case label ("" clears it)."""
        self.acting.require(P.MANAGE_PERSONS, action="person-change")
        label = label.strip()
        if len(label) > LABEL_MAX or _CONTROL.search(label) or not _encodable(label):
            raise InputError(
                f"a person's label is one line of text of at most {LABEL_MAX} characters"
            )
        before = self._one(person_id)
        self.engine.catalog.label_person(person_id, label, self.acting.actor.name if label else "")
        self._change("name", (), person=person_id, label=label, previous_label=before.label)
        return self.show_quiet(person_id)

    def merge(self, into: int, other: int) -> PersonView:
        """Move every face of ``other`` into ``into``; ``other`` is gone. The merged person
        keeps ``into``'s label, or takes ``other``'s where ``into`` has none."""
        self.acting.require(P.MANAGE_PERSONS, action="person-change")
        if into == other:
            raise InputError("merge two different persons")
        a, b = self._one(into), self._one(other)
        catalog = self.engine.catalog
        # Both sides pinned: a later rebuild keeps the user's decision.
        catalog.assign_persons([Placement(into, a.face_ids + b.face_ids)], pinned=True)
        if not a.label and b.label:
            catalog.label_person(into, b.label, b.labelled_by)
        self._change("merge", b.face_ids, person=into, merged=other, label=a.label or b.label)
        return self.show_quiet(into)

    def split(self, person_id: int, face_ids: Sequence[int]) -> tuple[PersonView, PersonView]:
        """Move ``face_ids`` out of the person into a new one; returns (old, new)."""
        self.acting.require(P.MANAGE_PERSONS, action="person-change")
        person = self._one(person_id)
        moving = sorted({int(f) for f in face_ids})
        if not moving:
            raise InputError("name the faces to split off (--faces F1,F2)")
        strangers = [f for f in moving if f not in person.face_ids]
        if strangers:
            raise InputError(f"faces {strangers} are not in person {person_id}")
        staying = tuple(f for f in person.face_ids if f not in moving)
        if not staying:
            raise InputError("a split must leave the person at least one face")
        # Pinned on both sides, so neither a build nor a rebuild joins them again.
        ids = self.engine.catalog.assign_persons(
            [Placement(person_id, staying), Placement(None, tuple(moving))], pinned=True
        )
        self._change("split", moving, person=person_id, new_person=ids[1])
        return self.show_quiet(person_id), self.show_quiet(ids[1])

    def remove_face(self, person_id: int, face_id: int) -> tuple[PersonView | None, PersonView]:
        """Take a face out of a person: it becomes a person of its own, pinned, so no build
        puts it back. Returns (the person, None if it had no other face; the face's own)."""
        self.acting.require(P.MANAGE_PERSONS, action="person-change")
        person = self._one(person_id)
        if face_id not in person.face_ids:
            raise InputError(f"face {face_id} is not in person {person_id}")
        rest = tuple(f for f in person.face_ids if f != face_id)
        # The faces left are pinned too: else a rebuild could send them after the one removed.
        keep = [Placement(person_id, rest)] if rest else []
        ids = self.engine.catalog.assign_persons([*keep, Placement(None, (face_id,))], pinned=True)
        self._change("remove-face", (face_id,), person=person_id, new_person=ids[-1])
        left = self.engine.catalog.persons([person_id])
        return (self._views(left)[0] if left else None), self.show_quiet(ids[-1])

    def show_quiet(self, person_id: int) -> PersonView:
        """A person as a change left it (the change's own entry covers reading it back)."""
        return self._views([self._one(person_id)])[0]
