"""Review decisions on search candidates, mixed into ``SqlCatalog`` (catalog/sql.py).

Written once for SQLite and PostgreSQL (``?`` placeholders, no dialect functions). A
decision is a row that is never updated: a later decision on the same face in the same case
is a new row, and the latest one (highest id) is the case's current view of that candidate,
so the history of who decided what stays readable.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timezone
from typing import Any, Protocol

from faceindex.catalog.base import NewReview
from faceindex.errors import InputError
from faceindex.types import REVIEW_DECISIONS, Review

__all__ = ["ReviewQueries"]

CHUNK = 500
_COLUMNS = "id, search_id, case_reference, face_id, decision, note, reviewer, role, at"


class _Tx(Protocol):
    def insert(self, sql: str, params: Sequence[object] = ()) -> int | None: ...


class _Host(Protocol):
    def query(self, sql: str, params: Sequence[object] = ()) -> list[Any]: ...
    def transaction(self, *, bump: bool = True) -> AbstractContextManager[Any]: ...


def _review(row: Any) -> Review:
    return Review(
        id=int(row[0]),
        search_id=str(row[1]),
        case_reference=str(row[2]),
        face_id=int(row[3]),
        decision=str(row[4]),
        note=str(row[5]),
        reviewer=str(row[6]),
        role=str(row[7]),
        at=str(row[8]),
    )


class ReviewQueries:
    """The review table's queries over the host catalog's ``query`` and ``transaction``."""

    def add_review(self: _Host, review: NewReview) -> Review:
        if review.decision not in REVIEW_DECISIONS:
            raise InputError(
                f"unknown decision {review.decision!r}; one of: {', '.join(REVIEW_DECISIONS)}"
            )
        at = datetime.now(timezone.utc).isoformat(timespec="microseconds")
        params = (
            review.search_id, review.case_reference, int(review.face_id), review.decision,
            review.note, review.reviewer, review.role, at,
        )  # fmt: skip
        # No generation bump: a decision changes no face, so no index needs to hear of it.
        with self.transaction(bump=False) as tx:
            new_id = tx.insert(
                "INSERT INTO reviews (search_id, case_reference, face_id, decision, note,"
                " reviewer, role, at) VALUES (?,?,?,?,?,?,?,?)",
                params,
            )
        if new_id is None:  # pragma: no cover - a plain INSERT always returns its id
            raise InputError("the review was not recorded")
        return Review(
            id=new_id,
            search_id=review.search_id,
            case_reference=review.case_reference,
            face_id=int(review.face_id),
            decision=review.decision,
            note=review.note,
            reviewer=review.reviewer,
            role=review.role,
            at=at,
        )

    def reviews(
        self: _Host, case_reference: str, face_ids: Sequence[int] | None = None
    ) -> list[Review]:
        base = f"SELECT {_COLUMNS} FROM reviews WHERE case_reference = ?"
        if face_ids is None:
            rows = self.query(base + " ORDER BY id", (case_reference,))
            return [_review(r) for r in rows]
        wanted = sorted({int(i) for i in face_ids})
        out: list[Review] = []
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start : start + CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self.query(base + f" AND face_id IN ({marks})", (case_reference, *chunk))
            out.extend(_review(r) for r in rows)
        return sorted(out, key=lambda r: r.id)
