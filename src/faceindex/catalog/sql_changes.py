"""The catalog's change log (schema v2): which faces came and went after a generation.

Every write transaction takes the next generation first (one ``UPDATE`` of the single
``catalog_state`` row, which also queues concurrent PostgreSQL writers so generations commit
in order). A face row carries the generation that added it; a removed face's id goes to
``face_removals`` with the generation that removed it. A process that holds a vector index
remembers the generation it reflects and asks for what happened after it: two indexed
queries, however large the gallery.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any, Protocol

import numpy as np

from faceindex.catalog.base import CatalogChanges

__all__ = ["changes_since", "log_removals", "next_generation", "read_generation"]

Query = Callable[[str, Sequence[object]], list[Any]]


class _Tx(Protocol):
    def execute(self, sql: str, params: Sequence[object] = ()) -> Any: ...


def next_generation(tx: _Tx) -> int:
    """Take this transaction's generation (the first statement of every write)."""
    row = tx.execute(
        "UPDATE catalog_state SET generation = generation + 1 WHERE id = 1 RETURNING generation"
    ).fetchone()
    return int(row[0])


def read_generation(query: Query) -> int:
    rows = query("SELECT generation FROM catalog_state WHERE id = 1", ())
    return int(rows[0][0]) if rows else 0


def log_removals(tx: _Tx, generation: int, where: str, params: Sequence[object]) -> None:
    """Log the ids of the faces ``where`` selects (``WHERE`` clause over ``faces``), just
    before the caller deletes them in the same transaction."""
    tx.execute(
        f"INSERT INTO face_removals (generation, face_id) SELECT ?, id FROM faces WHERE {where}",
        (generation, *params),
    )


def changes_since(
    query: Query, generation: int, own: Collection[int], *, include_own: bool
) -> CatalogChanges:
    now = read_generation(query)
    empty = np.zeros(0, dtype=np.int64)
    if generation > now or generation < 0:
        return CatalogChanges(now, empty, empty, complete=False)
    if generation == now:
        return CatalogChanges(now, empty, empty)
    skip = set() if include_own else {g for g in own if generation < g <= now}
    span = (generation, now)
    added = query(
        "SELECT id, generation FROM faces WHERE generation > ? AND generation <= ? ORDER BY id",
        span,
    )
    removed = query(
        "SELECT face_id, generation FROM face_removals WHERE generation > ? AND generation <= ?",
        span,
    )

    def ids(rows: list[Any]) -> np.ndarray:
        kept = [int(r[0]) for r in rows if int(r[1]) not in skip]
        return np.asarray(kept, dtype=np.int64)

    return CatalogChanges(now, ids(added), np.unique(ids(removed)))
