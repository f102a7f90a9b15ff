"""The persons queries (schema v3), written once for SQLite and PostgreSQL.

``SqlCatalog`` delegates its person methods here. One rule holds after every write, in the
same transaction (:func:`settle_persons`): a person has at least one face (a person whose
last face was moved, removed or erased is deleted, label and all) and a representative
among its own faces (its best-quality face when none was chosen or the chosen one left).
Erasure paths call :func:`settle_persons` after deleting faces; the memberships of the
erased faces themselves go by ``ON DELETE CASCADE``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from faceindex.errors import InputError, NotFoundError, StorageError
from faceindex.persons.base import Membership, Person, Placement

__all__ = ["assign_persons", "label_person", "person_memberships", "persons", "settle_persons"]

CHUNK = 500
Query = Callable[[str, Sequence[object]], list[Any]]


class _Exec(Protocol):
    def execute(self, sql: str, params: Sequence[object] = ()) -> Any: ...


class _Tx(_Exec, Protocol):
    def insert(self, sql: str, params: Sequence[object] = ()) -> int | None: ...


Transaction = Callable[[], AbstractContextManager[Any]]


def _in(n: int) -> str:
    return ",".join("?" * n)


def settle_persons(tx: _Exec) -> int:
    """Delete persons with no face and give every person a representative of its own;
    returns how many persons were deleted."""
    gone = tx.execute(
        "DELETE FROM persons WHERE NOT EXISTS"
        " (SELECT 1 FROM person_faces pf WHERE pf.person_id = persons.id)"
    ).rowcount
    tx.execute(
        "UPDATE persons SET representative = (SELECT pf.face_id FROM person_faces pf"
        " JOIN faces f ON f.id = pf.face_id WHERE pf.person_id = persons.id"
        " ORDER BY f.quality DESC, f.id LIMIT 1)"
        " WHERE representative IS NULL OR NOT EXISTS (SELECT 1 FROM person_faces pf"
        " WHERE pf.person_id = persons.id AND pf.face_id = persons.representative)"
    )
    return int(gone or 0)


def persons(query: Query, ids: Sequence[int] | None = None) -> list[Person]:
    if ids is None:
        rows = query("SELECT * FROM persons ORDER BY id", ())
    else:
        wanted = sorted({int(i) for i in ids})
        rows = []
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start : start + CHUNK]
            rows += query(f"SELECT * FROM persons WHERE id IN ({_in(len(chunk))})", chunk)
        rows.sort(key=lambda r: int(r["id"]))
    faces: dict[int, list[int]] = {}
    person_ids = [int(r["id"]) for r in rows]
    for start in range(0, len(person_ids), CHUNK):
        chunk = person_ids[start : start + CHUNK]
        for r in query(
            f"SELECT person_id, face_id FROM person_faces WHERE person_id IN ({_in(len(chunk))})"
            " ORDER BY face_id",
            chunk,
        ):
            faces.setdefault(int(r[0]), []).append(int(r[1]))
    return [
        Person(
            id=int(r["id"]),
            label=str(r["label"]),
            labelled_by=str(r["labelled_by"]),
            representative=None if r["representative"] is None else int(r["representative"]),
            face_ids=tuple(faces.get(int(r["id"]), ())),
            created_at=str(r["created_at"]),
            updated_at=str(r["updated_at"]),
        )
        for r in rows
    ]


def person_memberships(query: Query) -> dict[int, Membership]:
    rows = query("SELECT face_id, person_id, pinned FROM person_faces", ())
    return {int(r[0]): Membership(int(r[1]), bool(r[2])) for r in rows}


def assign_persons(
    tx: _Tx,
    placements: Sequence[Placement],
    now: str,
    *,
    pinned: bool = False,
    drop_unpinned: bool = False,
) -> list[int]:
    """Put each placement's faces into its person (a new one where ``person_id`` is None),
    moving them from any person they were in; ``drop_unpinned`` first clears every
    membership no user made (a rebuild). Unknown faces are refused (InputError)."""
    if drop_unpinned:
        tx.execute("DELETE FROM person_faces WHERE pinned = 0")
    wanted = sorted({int(f) for p in placements for f in p.face_ids})
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        found = tx.execute(f"SELECT COUNT(*) FROM faces WHERE id IN ({_in(len(chunk))})", chunk)
        if int(found.fetchone()[0]) != len(chunk):
            raise InputError("some of those faces are not in the catalog (erased?)")
    out: list[int] = []
    for placement in placements:
        person = placement.person_id
        if person is None:
            person = tx.insert(
                "INSERT INTO persons (created_at, updated_at) VALUES (?, ?)", (now, now)
            )
            if person is None:
                raise StorageError("the catalog returned no id for a new person")
        else:
            touched = tx.execute(
                "UPDATE persons SET updated_at = ? WHERE id = ?", (now, int(person))
            ).rowcount
            if not touched:
                raise NotFoundError(f"no person {person}")
        for face_id in placement.face_ids:
            tx.execute(
                "INSERT INTO person_faces (face_id, person_id, pinned) VALUES (?, ?, ?)"
                " ON CONFLICT (face_id) DO UPDATE SET person_id = excluded.person_id,"
                " pinned = excluded.pinned",
                (int(face_id), int(person), int(pinned)),
            )
        out.append(int(person))
    settle_persons(tx)
    return out


def label_person(tx: _Tx, person_id: int, label: str, by: str, now: str) -> None:
    touched = tx.execute(
        "UPDATE persons SET label = ?, labelled_by = ?, updated_at = ? WHERE id = ?",
        (label, by, now, int(person_id)),
    ).rowcount
    if not touched:
        raise NotFoundError(f"no person {person_id}")
