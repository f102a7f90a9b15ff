"""Watchlist queries (schema v4), mixed into ``SqlCatalog`` (catalog/sql.py) as the erasure
queries are.

Written once for SQLite and PostgreSQL. Watch writes touch no face, so they take no catalog
generation (``transaction(bump=False)``): an index following the change log has nothing to
do for them. An alert is unique per (watch, face), so two nodes screening the same new
faces at once record it once (``ON CONFLICT DO NOTHING``); the screening cursor only moves
forward (``WHERE generation < ?``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timezone
from typing import Any, Protocol

import numpy as np

from faceindex.catalog.watch_rows import (
    AlertRecord,
    NewAlert,
    NewWatch,
    WatchRecord,
    WatchTemplates,
)
from faceindex.errors import InputError, StorageError
from faceindex.types import Provenance

__all__ = ["WatchQueries"]

CHUNK = 500


class _Tx(Protocol):
    def execute(self, sql: str, params: Sequence[object] = ()) -> Any: ...
    def insert(self, sql: str, params: Sequence[object] = ()) -> int | None: ...


class _Host(Protocol):
    def query(self, sql: str, params: Sequence[object] = ()) -> list[Any]: ...
    def transaction(self, *, bump: bool = True) -> AbstractContextManager[Any]: ...
    def generation(self) -> int: ...


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _in(n: int) -> str:
    return ",".join("?" * n)


_WATCH_COLUMNS = (
    "w.id, w.owner, w.case_reference, w.purpose, w.kind, w.person_id, w.probe_sha256,"
    " w.sources, w.model, w.created_at, w.expires_at, w.from_generation, w.state, w.ended_at,"
    " (SELECT COUNT(*) FROM watch_templates t WHERE t.watch_id = w.id) AS templates"
)


def _watch(r: Any) -> WatchRecord:
    return WatchRecord(
        id=int(r["id"]),
        owner=r["owner"],
        case_reference=r["case_reference"],
        purpose=r["purpose"],
        kind=r["kind"],
        person_id=None if r["person_id"] is None else int(r["person_id"]),
        probe_sha256=r["probe_sha256"],
        sources=tuple(json.loads(r["sources"])),
        model=r["model"],
        created_at=r["created_at"],
        expires_at=r["expires_at"],
        from_generation=int(r["from_generation"]),
        state=r["state"],
        ended_at=r["ended_at"],
        templates=int(r["templates"]),
    )


def _alert(r: Any) -> AlertRecord:
    return AlertRecord(
        id=int(r["id"]),
        watch_id=int(r["watch_id"]),
        face_id=int(r["face_id"]),
        image_id=int(r["image_id"]),
        image_sha256=r["image_sha256"],
        locations=tuple(Provenance(*p) for p in json.loads(r["locations"])),
        distance=float(r["distance"]),
        band=r["band"],
        stranger_chance=float(r["stranger_chance"]),
        compared=int(r["compared"]),
        created_at=r["created_at"],
        audit_seq=None if r["audit_seq"] is None else int(r["audit_seq"]),
    )


class WatchQueries:
    """The watch half of the catalog (see :class:`faceindex.catalog.base.Catalog`)."""

    def add_watch(self: _Host, new: NewWatch) -> WatchRecord:
        vecs = np.ascontiguousarray(np.atleast_2d(new.templates), dtype=np.float32)
        if not len(vecs) or len(vecs) != len(new.qualities):
            raise InputError("a watch needs one quality per template, and at least one template")
        with self.transaction(bump=False) as tx:
            # Faces committed after this generation are the watch's "new" faces.
            row = tx.execute("SELECT generation FROM catalog_state WHERE id = 1").fetchone()
            wid = tx.insert(
                "INSERT INTO watches (owner, case_reference, purpose, kind, person_id,"
                " probe_sha256, sources, model, created_at, expires_at, from_generation, state)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    new.owner,
                    new.case_reference,
                    new.purpose,
                    new.kind,
                    new.person_id,
                    new.probe_sha256,
                    json.dumps(list(new.sources)),
                    new.model,
                    _now(),
                    new.expires_at,
                    int(row[0]) if row else 0,
                    "live",
                ),
            )
            if wid is None:
                raise StorageError("the catalog returned no id for a new watch")
            for vec, quality in zip(vecs, new.qualities, strict=True):
                tx.execute(
                    "INSERT INTO watch_templates (watch_id, embedding, quality) VALUES (?,?,?)",
                    (wid, vec.tobytes(), float(quality)),
                )
        return self.watches([wid])[0]  # type: ignore[attr-defined]

    def watches(
        self: _Host, ids: Sequence[int] | None = None, *, owner: str | None = None
    ) -> list[WatchRecord]:
        sql = f"SELECT {_WATCH_COLUMNS} FROM watches w"
        where: list[str] = []
        params: list[object] = []
        if ids is not None:
            wanted = sorted({int(i) for i in ids})
            if not wanted:
                return []
            where.append(f"w.id IN ({_in(len(wanted))})")
            params.extend(wanted)
        if owner is not None:
            where.append("w.owner = ?")
            params.append(owner)
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [_watch(r) for r in self.query(sql + " ORDER BY w.id", params)]

    def watch_templates(self: _Host, watch_ids: Sequence[int]) -> dict[int, WatchTemplates]:
        wanted = sorted({int(i) for i in watch_ids})
        found: dict[int, tuple[list[np.ndarray], list[float]]] = {}
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start : start + CHUNK]
            rows = self.query(
                "SELECT watch_id, embedding, quality FROM watch_templates"
                f" WHERE watch_id IN ({_in(len(chunk))}) ORDER BY watch_id",
                chunk,
            )
            for r in rows:
                vecs, quals = found.setdefault(int(r[0]), ([], []))
                vecs.append(np.frombuffer(bytes(r[1]), dtype=np.float32))
                quals.append(float(r[2]))
        return {
            wid: WatchTemplates(np.stack(v), np.asarray(q, dtype=np.float64))
            for wid, (v, q) in found.items()
        }

    def end_watch(self: _Host, watch_id: int, state: str) -> bool:
        """End a live watch (``removed`` or ``purged``): its templates are deleted in the
        same transaction, its row and alerts stay. False if it was not live."""
        if state not in ("removed", "purged"):
            raise InputError(f"a watch ends as removed or purged, not {state!r}")
        with self.transaction(bump=False) as tx:
            ended = tx.execute(
                "UPDATE watches SET state = ?, ended_at = ? WHERE id = ? AND state = 'live'",
                (state, _now(), int(watch_id)),
            ).rowcount
            tx.execute("DELETE FROM watch_templates WHERE watch_id = ?", (int(watch_id),))
        return bool(ended)

    # -- screening ------------------------------------------------------------------------

    def watch_cursor(self: _Host) -> int:
        rows = self.query("SELECT generation FROM watch_state WHERE id = 1")
        return int(rows[0][0]) if rows else 0

    def advance_watch_cursor(self: _Host, generation: int) -> None:
        with self.transaction(bump=False) as tx:
            tx.execute(
                "UPDATE watch_state SET generation = ? WHERE id = 1 AND generation < ?",
                (int(generation), int(generation)),
            )

    def faces_added_between(self: _Host, after: int, upto: int) -> list[tuple[int, int]]:
        """(face id, generation) of the live faces added after ``after`` up to ``upto``."""
        rows = self.query(
            "SELECT id, generation FROM faces WHERE generation > ? AND generation <= ? ORDER BY id",
            (int(after), int(upto)),
        )
        return [(int(r[0]), int(r[1])) for r in rows]

    # -- alerts ---------------------------------------------------------------------------

    def add_alerts(self: _Host, alerts: Sequence[NewAlert]) -> list[AlertRecord]:
        """Record alerts; returns those that were new (a (watch, face) pair alerts once)."""
        ids: list[int] = []
        now = _now()
        with self.transaction(bump=False) as tx:
            for a in alerts:
                aid = tx.insert(
                    "INSERT INTO watch_alerts (watch_id, face_id, image_id, image_sha256,"
                    " locations, distance, band, stranger_chance, compared, created_at)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT (watch_id, face_id) DO NOTHING",
                    (
                        int(a.watch_id),
                        int(a.face_id),
                        int(a.image_id),
                        a.image_sha256,
                        json.dumps([[p.source, p.locator, p.ingested_at] for p in a.locations]),
                        float(a.distance),
                        a.band,
                        float(a.stranger_chance),
                        int(a.compared),
                        now,
                    ),
                )
                if aid is not None:
                    ids.append(aid)
        return self.alerts(ids=ids) if ids else []  # type: ignore[attr-defined]

    def alerts(
        self: _Host,
        watch_ids: Sequence[int] | None = None,
        *,
        ids: Sequence[int] | None = None,
        unaudited: bool = False,
    ) -> list[AlertRecord]:
        sql = "SELECT * FROM watch_alerts"
        where: list[str] = []
        params: list[object] = []
        for column, values in (("watch_id", watch_ids), ("id", ids)):
            if values is None:
                continue
            wanted = sorted({int(i) for i in values})
            if not wanted:
                return []
            where.append(f"{column} IN ({_in(len(wanted))})")
            params.extend(wanted)
        if unaudited:
            where.append("audit_seq IS NULL")
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [_alert(r) for r in self.query(sql + " ORDER BY id", params)]

    def set_alert_audit(self: _Host, alert_id: int, seq: int) -> None:
        with self.transaction(bump=False) as tx:
            tx.execute(
                "UPDATE watch_alerts SET audit_seq = ? WHERE id = ?", (int(seq), int(alert_id))
            )
