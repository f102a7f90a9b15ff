"""The governance store: suppressions, deletion receipts, registered exports, erasure
intents and content tombstones (the search records result links point to are beside
them: ``server/searches.py``).

By default it is its own SQLite file (``governance.db`` in the engine home), apart from the
gallery; with ``governance_url = "postgresql://..."`` its tables live in PostgreSQL, where
every node sees them (``database.py``). Suppression templates live only here, are read only
by the ingest screen and the search filter, and are never returned by any interface.
``secure_delete`` is on (SQLite) so a withdrawn suppression or an expired receipt probe
leaves no bytes behind.

An erasure writes its *intent* (what it will remove, and the sha256 of the images it will
remove as *pending* tombstones) before the catalog commit, and completes it after (receipt,
tombstones held, intent done) in one transaction; an intent left pending by a crash is
finished on the next open (see ``erasure.py``). Tombstones are read only by the ingest
screen, ``erase verify`` and the authorised ``erase tombstones`` / ``erase lift``.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from faceindex.errors import ConfigError, NotFoundError, StorageError
from faceindex.governance.base import ExportRecord, Receipt, Suppression
from faceindex.governance.database import Database, SqliteDatabase, Tx
from faceindex.vision import phash as ph

__all__ = ["GovernanceStore", "new_id"]

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS suppressions (
        id TEXT PRIMARY KEY, created_at TEXT NOT NULL, actor TEXT NOT NULL,
        reference TEXT NOT NULL, templates BLOB NOT NULL, count INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS receipts (
        id TEXT PRIMARY KEY, body TEXT NOT NULL, face_ids TEXT NOT NULL,
        image_ids TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS receipt_probes (
        receipt_id TEXT PRIMARY KEY, templates BLOB NOT NULL, expires_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS exports (
        id TEXT PRIMARY KEY, body TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS intents (
        id TEXT PRIMARY KEY, created_at TEXT NOT NULL, body TEXT NOT NULL,
        state TEXT NOT NULL, receipt_id TEXT NOT NULL, audit_seq INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS tombstones (
        sha256 TEXT NOT NULL, intent_id TEXT NOT NULL, receipt_id TEXT NOT NULL,
        state TEXT NOT NULL, created_at TEXT NOT NULL, PRIMARY KEY (sha256, intent_id))""",
    "CREATE INDEX IF NOT EXISTS tombstones_receipt ON tombstones (receipt_id)",
    # photo groups: the perceptual hash of a tombstoned sha256 (vision/phash.py), its bands
    # indexed for near-duplicate lookup, and the near-duplicate images the erasure kept
    # (held by other sources then): a tombstone's state stays in ``tombstones``.
    """CREATE TABLE IF NOT EXISTS tombstone_hashes (
        sha256 TEXT PRIMARY KEY, phash INTEGER NOT NULL, b0 INTEGER NOT NULL,
        b1 INTEGER NOT NULL, b2 INTEGER NOT NULL, b3 INTEGER NOT NULL, kept TEXT NOT NULL)""",
    *(
        f"CREATE INDEX IF NOT EXISTS tombstone_hashes_b{i} ON tombstone_hashes (b{i})"
        for i in range(4)
    ),
]

PENDING, DONE, ABORTED = "pending", "done", "aborted"


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class GovernanceStore:
    """The store over one :class:`~faceindex.governance.database.Database`: a path opens
    the SQLite file there (as before), a ``Database`` is used as given (PostgreSQL)."""

    def __init__(self, path: Path | str | Database, *, dim: int) -> None:
        self.dim = dim  # the home's model's embedding dimension (its pack's)
        self._lock = threading.RLock()
        if isinstance(path, (str, Path)):
            self.path: Path | None = Path(path)
            self.db: Database = SqliteDatabase(self.path, secure_delete=True)
        else:
            self.db = path
            self.path = getattr(path, "path", None)
        try:
            self.db.ddl(_SCHEMA)
        except self.db.errors as exc:
            self.db.close()
            raise StorageError(f"cannot open the governance store {self.db.url}: {exc}") from exc

    @contextmanager
    def _tx(self) -> Iterator[Tx]:
        with self._lock:
            try:
                with self.db.tx() as tx:
                    yield tx
            except self.db.errors as exc:
                raise StorageError(f"governance store: {exc}") from exc

    def _rows(self, sql: str, params: Sequence[object] = ()) -> list[Any]:
        with self._lock:
            try:
                return self.db.rows(sql, params)
            except self.db.errors as exc:
                raise StorageError(f"governance store: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self.db.close()

    def checkpoint(self) -> None:
        with self._lock:
            self.db.checkpoint()

    # -- suppressions (opt-out templates) -------------------------------------------------

    def add_suppression(self, templates: np.ndarray, *, actor: str, reference: str) -> Suppression:
        vecs = np.ascontiguousarray(np.atleast_2d(templates), dtype=np.float32)
        sup = Suppression(new_id("sup"), _now(), actor, reference, len(vecs))
        with self._tx() as db:
            db.execute(
                "INSERT INTO suppressions VALUES (?,?,?,?,?,?)",
                (sup.id, sup.created_at, actor, reference, vecs.tobytes(), sup.templates),
            )
        return sup

    def suppressions(self) -> list[Suppression]:
        rows = self._rows(
            "SELECT id, created_at, actor, reference, count FROM suppressions ORDER BY created_at"
        )
        return [Suppression(str(a), str(b), str(c), str(d), int(e)) for a, b, c, d, e in rows]

    def suppression_templates(self) -> np.ndarray:
        """Every suppression template, (n, dim) float32. Internal: for screening only."""
        rows = self._rows("SELECT id, templates, count FROM suppressions")
        parts = [self._templates(bytes(r[1]), int(r[2]), f"suppression {r[0]}") for r in rows]
        if not parts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.concatenate(parts)

    def _templates(self, blob: bytes, count: int, what: str) -> np.ndarray:
        """Stored templates, refused (fail closed) if another model made them."""
        vecs = np.frombuffer(blob, dtype=np.float32)
        if count <= 0 or len(vecs) != count * self.dim:
            made = len(vecs) // count if count > 0 else 0
            raise ConfigError(
                f"{what} holds {made}-d templates but this home's model makes {self.dim}-d "
                "ones: it was made with another model"
            )
        return vecs.reshape(count, self.dim)

    # -- receipts -------------------------------------------------------------------------

    def add_receipt(
        self,
        receipt: Receipt,
        face_ids: Sequence[int],
        image_ids: Sequence[int],
        probe: np.ndarray | None = None,
        probe_expires_at: str = "",
    ) -> None:
        with self._tx() as db:
            self._insert_receipt(db, receipt, face_ids, image_ids, probe, probe_expires_at)

    @staticmethod
    def _insert_receipt(
        db: Tx,
        receipt: Receipt,
        face_ids: Sequence[int],
        image_ids: Sequence[int],
        probe: np.ndarray | None,
        probe_expires_at: str,
    ) -> None:
        db.execute(
            "INSERT INTO receipts VALUES (?,?,?,?)",
            (
                receipt.id,
                json.dumps(receipt.as_dict()),
                json.dumps(sorted(int(i) for i in face_ids)),
                json.dumps(sorted(int(i) for i in image_ids)),
            ),
        )
        if probe is not None and len(probe):
            vecs = np.ascontiguousarray(np.atleast_2d(probe), dtype=np.float32)
            db.execute(
                "INSERT INTO receipt_probes VALUES (?,?,?)",
                (receipt.id, vecs.tobytes(), probe_expires_at),
            )

    def receipt(self, receipt_id: str) -> tuple[Receipt, list[int], list[int]]:
        rows = self._rows(
            "SELECT body, face_ids, image_ids FROM receipts WHERE id = ?", (receipt_id,)
        )
        if not rows:
            raise NotFoundError(f"no deletion receipt {receipt_id!r}")
        body, faces, images = rows[0]
        return (
            Receipt.from_dict(json.loads(str(body))),
            json.loads(str(faces)),
            json.loads(str(images)),
        )

    def receipts(self) -> list[Receipt]:
        rows = self._rows("SELECT body FROM receipts")
        out = [Receipt.from_dict(json.loads(str(r[0]))) for r in rows]
        return sorted(out, key=lambda r: r.at)

    def receipt_probe(self, receipt_id: str) -> np.ndarray | None:
        rows = self._rows(
            "SELECT templates FROM receipt_probes WHERE receipt_id = ?", (receipt_id,)
        )
        if not rows:
            return None
        blob = bytes(rows[0][0])
        return self._templates(blob, len(blob) // (4 * self.dim) or 1, f"receipt {receipt_id}")

    def drop_probes(self) -> int:
        """Drop every kept person probe (after a model change: they are the old model's)."""
        with self._tx() as db:
            n = db.execute("DELETE FROM receipt_probes").rowcount
        if n:
            self.checkpoint()
        return int(n)

    def drop_expired_probes(self, now: str) -> int:
        with self._tx() as db:
            n = db.execute("DELETE FROM receipt_probes WHERE expires_at <= ?", (now,)).rowcount
        if n:
            self.checkpoint()
        return int(n)

    # -- exports --------------------------------------------------------------------------

    def add_export(self, record: ExportRecord) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO exports VALUES (?,?)", (record.id, json.dumps(record.as_dict()))
            )

    def exports(self, source: str | None = None) -> list[ExportRecord]:
        rows = self._rows("SELECT body FROM exports")
        out = [ExportRecord.from_dict(json.loads(str(r[0]))) for r in rows]
        if source is not None:
            out = [e for e in out if source in e.sources]
        return sorted(out, key=lambda e: e.at)

    # -- erasure intents and tombstones ---------------------------------------------------

    @contextmanager
    def erasure_lock(self, *, blocking: bool = True) -> Iterator[bool]:
        """One erasure at a time per engine home, across threads and processes. Yields
        False (and holds nothing) when ``blocking`` is off and another erasure is running;
        a killed process's lock is dropped (the kernel's flock; PostgreSQL ends its session),
        so a dead intent is never held."""
        with self.db.lock("lock", blocking=blocking) as held:
            yield held

    def add_intent(
        self,
        intent_id: str,
        body: dict[str, Any],
        receipt_id: str,
        audit_seq: int,
        tombstones: Sequence[str],
    ) -> None:
        now = _now()
        with self._tx() as db:
            db.execute(
                "INSERT INTO intents VALUES (?,?,?,?,?,?)",
                (intent_id, now, json.dumps(body), PENDING, receipt_id, int(audit_seq)),
            )
            db.executemany(
                "INSERT INTO tombstones VALUES (?,?,?,?,?) ON CONFLICT DO NOTHING",
                [(sha, intent_id, receipt_id, PENDING, now) for sha in sorted(set(tombstones))],
            )

    def pending_intents(self) -> list[tuple[str, dict[str, Any], str, int]]:
        """(intent id, body, receipt id, audit seq of the intent entry), oldest first."""
        rows = self._rows(
            "SELECT id, body, receipt_id, audit_seq FROM intents WHERE state = ?"
            " ORDER BY created_at, audit_seq",  # erasures run one at a time: seq orders them
            (PENDING,),
        )
        return [(str(a), json.loads(str(b)), str(c), int(d)) for a, b, c, d in rows]

    def complete_intent(
        self,
        intent_id: str,
        receipt: Receipt,
        face_ids: Sequence[int],
        image_ids: Sequence[int],
        tombstones: Sequence[str],
        probe: np.ndarray | None = None,
        probe_expires_at: str = "",
    ) -> None:
        """Receipt stored, the tombstones of images really removed held, the rest of the
        intent's pending ones dropped, the intent done: all or nothing."""
        now = _now()
        with self._tx() as db:
            self._insert_receipt(db, receipt, face_ids, image_ids, probe, probe_expires_at)
            db.execute("DELETE FROM tombstones WHERE intent_id = ?", (intent_id,))
            db.executemany(
                "INSERT INTO tombstones VALUES (?,?,?,'held',?) ON CONFLICT DO NOTHING",
                [(sha, intent_id, receipt.id, now) for sha in sorted(set(tombstones))],
            )
            # The receipt now holds the ids: the plan's copy of them is not kept twice.
            db.execute("UPDATE intents SET state = ?, body = '{}' WHERE id = ?", (DONE, intent_id))

    def abort_intent(self, intent_id: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM tombstones WHERE intent_id = ?", (intent_id,))
            db.execute("UPDATE intents SET state = ? WHERE id = ?", (ABORTED, intent_id))

    def tombstoned(self, shas: Sequence[str]) -> dict[str, tuple[str, str]]:
        """sha256 -> (receipt id, "held" | "pending") for those of ``shas`` that are
        tombstoned (not lifted). Internal: for the ingest screen."""
        out: dict[str, tuple[str, str]] = {}
        wanted = sorted(set(shas))
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            for sha, rid, state in self._rows(
                "SELECT sha256, receipt_id, state FROM tombstones"
                f" WHERE state != 'lifted' AND sha256 IN ({_marks(chunk)})"
                " ORDER BY state",  # "held" sorts before "pending": a held one wins
                chunk,
            ):
                out.setdefault(str(sha), (str(rid), str(state)))
        return out

    def tombstones(self, receipt_id: str | None = None) -> list[tuple[str, str, str]]:
        """(sha256, receipt id, since) of every held tombstone, or one receipt's."""
        sql = "SELECT sha256, receipt_id, created_at FROM tombstones WHERE state = 'held'"
        params: tuple[str, ...] = ()
        if receipt_id is not None:
            sql, params = sql + " AND receipt_id = ?", (receipt_id,)
        return [(str(a), str(b), str(c)) for a, b, c in self._rows(sql + " ORDER BY 3, 1", params)]

    def receipt_digests(self, receipt_id: str) -> dict[str, str]:
        """sha256 -> "held" | "lifted" for every image a completed receipt erased."""
        rows = self._rows(
            "SELECT sha256, state FROM tombstones WHERE receipt_id = ? AND state != 'pending'",
            (receipt_id,),
        )
        return {str(a): str(b) for a, b in rows}

    def lift_tombstones(
        self, *, sha256: str | None = None, receipt_id: str | None = None
    ) -> list[str]:
        """Lift held tombstones by content or by receipt (kept, marked lifted, so the
        receipt still knows what it erased); returns the sha256s lifted."""
        column, value = ("sha256", sha256) if sha256 is not None else ("receipt_id", receipt_id)
        with self._tx() as db:
            rows = db.execute(
                f"SELECT DISTINCT sha256 FROM tombstones WHERE {column} = ? AND state = 'held'",
                (value,),
            ).fetchall()
            db.execute(
                f"UPDATE tombstones SET state = 'lifted' WHERE {column} = ? AND state = 'held'",
                (value,),
            )
        return sorted(str(r[0]) for r in rows)

    # -- near-duplicate tombstones (photo groups) -----------------------------------------

    def add_content_hashes(self, hashes: dict[str, int]) -> None:
        """sha256 -> perceptual hash of the images an erasure is about to remove. Written
        before its intent: inert until a tombstone of the sha256 exists; a later erasure of
        the same bytes replaces the row."""
        rows = [(sha, ph.to_signed(h), *ph.bands(h), "[]") for sha, h in sorted(hashes.items())]
        if rows:
            with self._tx() as db:
                db.executemany(
                    "INSERT INTO tombstone_hashes VALUES (?,?,?,?,?,?,?) ON CONFLICT (sha256)"
                    " DO UPDATE SET phash = excluded.phash, b0 = excluded.b0, b1 = excluded.b1,"
                    " b2 = excluded.b2, b3 = excluded.b3, kept = excluded.kept",
                    rows,
                )

    def keep_near_copies(self, kept: dict[str, Sequence[int]]) -> None:
        """sha256 -> the near-duplicate images an erasure left held (other sources' copies):
        erase verify does not count them as erased content held again."""
        rows = [(json.dumps(sorted(int(i) for i in ids)), sha) for sha, ids in kept.items()]
        if rows:
            with self._tx() as db:
                db.executemany("UPDATE tombstone_hashes SET kept = ? WHERE sha256 = ?", rows)

    def content_hashes(self, shas: Sequence[str]) -> dict[str, tuple[int, list[int]]]:
        """sha256 -> (perceptual hash, image ids kept at the erasure) (erase verify)."""
        out: dict[str, tuple[int, list[int]]] = {}
        wanted = sorted(set(shas))
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            for sha, h, kept in self._rows(
                "SELECT sha256, phash, kept FROM tombstone_hashes"
                f" WHERE sha256 IN ({_marks(chunk)})",
                chunk,
            ):
                out[str(sha)] = (ph.from_signed(int(h)), [int(i) for i in json.loads(str(kept))])
        return out

    def near_tombstoned(
        self, hashes: Sequence[int], max_bits: int = ph.NEAR_BITS
    ) -> dict[int, tuple[str, str, int]]:
        """perceptual hash -> (receipt id, "held" | "pending", bits) of the nearest
        tombstone (not lifted) within ``max_bits`` of each hash that has one. Internal:
        for the ingest screen."""
        out: dict[int, tuple[str, str, int]] = {}
        for h in sorted(set(hashes)):
            best: tuple[int, str, str] | None = None
            for band, values in enumerate(ph.band_probes(h, max_bits)):
                for start in range(0, len(values), 500):
                    chunk = values[start : start + 500]
                    for stored, rid, state in self._rows(
                        "SELECT th.phash, t.receipt_id, t.state FROM tombstone_hashes th"
                        " JOIN tombstones t ON t.sha256 = th.sha256"
                        f" WHERE t.state != 'lifted' AND th.b{band} IN ({_marks(chunk)})",
                        chunk,
                    ):
                        d = ph.hamming(h, ph.from_signed(int(stored)))
                        cand = (d, str(state), str(rid))  # "held" sorts before "pending"
                        if d <= max_bits and (best is None or cand < best):
                            best = cand
            if best is not None:
                out[h] = (best[2], best[1], best[0])
        return out


def _marks(values: Sequence[object]) -> str:
    return ",".join("?" * len(values)) or "NULL"
