"""SQLite catalog: WAL mode, one writer, secure_delete, schema versioned with migrations."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from faceindex.catalog.base import SCHEMA_VERSION, FaceRow, ImageOutcome, NewSource
from faceindex.catalog.schema import MIGRATIONS
from faceindex.errors import InputError, NotFoundError, StorageError
from faceindex.sources.base import SourceRecord
from faceindex.types import BBox, Provenance

__all__ = ["SqliteCatalog", "utcnow"]


def utcnow() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class SqliteCatalog:
    """The embedded catalog. Safe to share between threads (one connection, one lock)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            # Deleted rows are overwritten with zeros, so erased faces leave no bytes behind.
            self._db.execute("PRAGMA secure_delete=ON")
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open catalog {self.path}: {exc}") from exc
        self._lock = threading.RLock()
        self._migrate()

    # -- plumbing -------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    def query(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        with self._lock:
            cur = self._db.execute(sql, params)
            cur.row_factory = sqlite3.Row
            return cur.fetchall()

    def _migrate(self) -> None:
        with self.transaction() as db:
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = db.execute("SELECT version FROM schema_version").fetchone()
            current = row[0] if row else 0
            if current > SCHEMA_VERSION:
                raise StorageError(
                    f"catalog schema v{current} is newer than this faceindex (v{SCHEMA_VERSION})"
                )
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[version]:
                    db.execute(statement)
            if row is None:
                db.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
            else:
                db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))

    def schema_version(self) -> int:
        return int(self.query("SELECT version FROM schema_version")[0][0])

    def close(self) -> None:
        with self._lock:
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass
            self._db.close()

    def checkpoint(self) -> None:
        """Fold the WAL into the main file and truncate it (after physical deletes)."""
        with self._lock:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # -- sources --------------------------------------------------------------------------

    def add_source(self, src: NewSource) -> SourceRecord:
        if not src.name or not src.name.replace("-", "").replace("_", "").isalnum():
            raise InputError(f"source name {src.name!r}: use letters, digits, '-' and '_'")
        try:
            with self.transaction() as db:
                db.execute(
                    "INSERT INTO sources (name, kind, uri, owner, legal_basis, legal_reference,"
                    " purposes, retention_days, jurisdiction, created_at)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (
                        src.name,
                        src.kind,
                        src.uri,
                        src.owner,
                        src.legal_basis,
                        src.legal_reference,
                        json.dumps(list(src.purposes)),
                        src.retention_days,
                        src.jurisdiction,
                        utcnow(),
                    ),
                )
        except sqlite3.IntegrityError as exc:
            raise InputError(f"a source named {src.name!r} already exists") from exc
        return self.get_source(src.name)

    def get_source(self, name: str) -> SourceRecord:
        rows = self.query("SELECT * FROM sources WHERE name = ?", (name,))
        if not rows:
            raise NotFoundError(f"no source named {name!r}")
        return _source(rows[0])

    def list_sources(self) -> list[SourceRecord]:
        return [_source(r) for r in self.query("SELECT * FROM sources ORDER BY name")]

    # -- ingest ---------------------------------------------------------------------------

    def seen_items(self, source_id: int) -> dict[str, tuple[int | None, float | None]]:
        rows = self.query(
            "SELECT locator, size, mtime FROM items WHERE source_id = ?", (source_id,)
        )
        return {r["locator"]: (r["size"], r["mtime"]) for r in rows}

    def record(self, outcomes: Sequence[ImageOutcome], model: str) -> list[tuple[int, np.ndarray]]:
        new: list[tuple[int, np.ndarray]] = []
        now = utcnow()
        with self.transaction() as db:
            for out in outcomes:
                image_id = None
                if out.error is None and out.sha256 is not None:
                    row = db.execute(
                        "SELECT id FROM images WHERE sha256 = ?", (out.sha256,)
                    ).fetchone()
                    if row is not None:
                        image_id = row[0]
                    else:
                        image_id = db.execute(
                            "INSERT INTO images (sha256, width, height, created_at) VALUES (?,?,?,?)",
                            (out.sha256, out.width, out.height, now),
                        ).lastrowid
                        for face in out.faces:
                            vec = np.asarray(face.embedding, dtype=np.float32)
                            fid = db.execute(
                                "INSERT INTO faces (image_id, box_left, box_top, box_right,"
                                " box_bottom, landmarks, detector, detector_score, quality, size,"
                                " sharpness, pose, model, embedding, thumbnail, created_at)"
                                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                                (
                                    image_id,
                                    *face.bbox.as_list(),
                                    json.dumps(face.landmarks),
                                    face.detector,
                                    face.detector_score,
                                    face.quality.score,
                                    face.quality.size,
                                    face.quality.sharpness,
                                    face.quality.pose,
                                    model,
                                    vec.tobytes(),
                                    face.thumbnail,
                                    now,
                                ),
                            ).lastrowid
                            assert fid is not None  # sqlite always returns a rowid here
                            new.append((int(fid), vec))
                db.execute(
                    "INSERT INTO items (source_id, locator, image_id, sha256, status, reason,"
                    " size, mtime, ingested_at) VALUES (?,?,?,?,?,?,?,?,?)"
                    " ON CONFLICT (source_id, locator) DO UPDATE SET image_id = excluded.image_id,"
                    " sha256 = excluded.sha256, status = excluded.status, reason = excluded.reason,"
                    " size = excluded.size, mtime = excluded.mtime, ingested_at = excluded.ingested_at",
                    (
                        out.source_id,
                        out.locator,
                        image_id,
                        out.sha256,
                        "failed" if out.error else "ok",
                        out.error,
                        out.size,
                        out.mtime,
                        now,
                    ),
                )
        return new

    # -- reads ----------------------------------------------------------------------------

    def faces(self, ids: Sequence[int]) -> dict[int, FaceRow]:
        ids = [int(i) for i in ids]
        if not ids:
            return {}
        out: dict[int, FaceRow] = {}
        for chunk_start in range(0, len(ids), 500):
            chunk = ids[chunk_start : chunk_start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.query(
                "SELECT f.id, f.image_id, i.sha256, f.box_left, f.box_top, f.box_right,"
                " f.box_bottom, f.quality, f.model, f.created_at FROM faces f"
                f" JOIN images i ON i.id = f.image_id WHERE f.id IN ({marks})",
                chunk,
            )
            image_ids = sorted({r["image_id"] for r in rows})
            locs = self._locations(image_ids)
            for r in rows:
                out[r["id"]] = FaceRow(
                    id=r["id"],
                    image_id=r["image_id"],
                    image_sha256=r["sha256"],
                    bbox=BBox(r["box_left"], r["box_top"], r["box_right"], r["box_bottom"]),
                    quality=r["quality"],
                    model=r["model"],
                    created_at=r["created_at"],
                    deleted=False,
                    locations=tuple(locs.get(r["image_id"], ())),
                )
        return out

    def _locations(self, image_ids: Sequence[int]) -> dict[int, list[Provenance]]:
        if not image_ids:
            return {}
        marks = ",".join("?" * len(image_ids))
        rows = self.query(
            "SELECT it.image_id, s.name, it.locator, it.ingested_at FROM items it"
            f" JOIN sources s ON s.id = it.source_id WHERE it.image_id IN ({marks})"
            " ORDER BY it.id",
            list(image_ids),
        )
        out: dict[int, list[Provenance]] = {}
        for r in rows:
            out.setdefault(r["image_id"], []).append(
                Provenance(r["name"], r["locator"], r["ingested_at"])
            )
        return out

    def thumbnail(self, face_id: int) -> bytes:
        rows = self.query("SELECT thumbnail FROM faces WHERE id = ?", (face_id,))
        if not rows or rows[0][0] is None:
            raise NotFoundError(f"no face {face_id}")
        return bytes(rows[0][0])

    def iter_embeddings(self, batch: int = 10000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        last = 0
        while True:
            rows = self.query(
                "SELECT id, embedding FROM faces WHERE id > ? ORDER BY id LIMIT ?", (last, batch)
            )
            if not rows:
                return
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(
                len(rows), -1
            )
            last = int(ids[-1])
            yield ids, vecs

    def live_face_ids(self) -> np.ndarray:
        rows = self.query("SELECT id FROM faces ORDER BY id")
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def count_faces(self) -> int:
        return int(self.query("SELECT COUNT(*) FROM faces")[0][0])

    def stats(self) -> dict[str, int]:
        row = self.query(
            "SELECT (SELECT COUNT(*) FROM sources), (SELECT COUNT(*) FROM images),"
            " (SELECT COUNT(*) FROM items WHERE status = 'ok'),"
            " (SELECT COUNT(*) FROM items WHERE status = 'failed'),"
            " (SELECT COUNT(*) FROM faces)"
        )[0]
        return {
            "sources": row[0],
            "images": row[1],
            "locations": row[2],
            "failed": row[3],
            "faces": row[4],
        }

    def failures(self, source_id: int | None = None) -> list[tuple[str, str, str]]:
        sql = (
            "SELECT s.name, it.locator, it.reason FROM items it JOIN sources s"
            " ON s.id = it.source_id WHERE it.status = 'failed'"
        )
        params: tuple[object, ...] = ()
        if source_id is not None:
            sql += " AND it.source_id = ?"
            params = (source_id,)
        return [(r[0], r[1], r[2]) for r in self.query(sql + " ORDER BY it.id", params)]

    # -- deletion -------------------------------------------------------------------------

    def delete_faces(self, ids: Sequence[int]) -> int:
        ids = [int(i) for i in ids]
        removed = 0
        with self.transaction() as db:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                removed += db.execute(f"DELETE FROM faces WHERE id IN ({marks})", chunk).rowcount
        return removed


def _source(r: sqlite3.Row) -> SourceRecord:
    return SourceRecord(
        id=r["id"],
        name=r["name"],
        kind=r["kind"],
        uri=r["uri"],
        owner=r["owner"],
        legal_basis=r["legal_basis"],
        legal_reference=r["legal_reference"],
        purposes=tuple(json.loads(r["purposes"])),
        retention_days=r["retention_days"],
        jurisdiction=r["jurisdiction"],
        created_at=r["created_at"],
    )
