"""The audit log: append-only, keyed hash chain, kept in its own SQLite file in the engine home
(or in PostgreSQL with ``governance_url``: ``database.py``; there the signed head is a row
of the database, moved in the append's own transaction, and that row's lock orders every
writer of every node into one chain).

The chain (``audit_chain.py``) finds any edited, removed or reordered entry and names the
first bad one. Its entries are HMAC-SHA256 under a key kept outside the audit files
(``audit_key.py``), so rewriting the chain needs the key. Removing entries from the *end*
leaves a valid shorter chain, so each append also advances a signed head (``audit.head``:
last seq, hash and the keyed switch point, with the key's MAC, written atomically beside
the database), and ``audit anchor`` exports heads elsewhere: every head given is compared
with the entry it names whenever that entry exists.

No laundering: an append never moves the head off an entry that no longer matches it (the
entry is written, the head stays as evidence), and a failed verify appends nothing.
Triggers refuse UPDATE and DELETE on the table, which stops accidents, not a determined
administrator: the key and the anchors are what detect that.

A failed write raises :class:`~faceindex.errors.AuditError`; callers fail closed.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from faceindex.errors import AuditError, InputError, StorageError
from faceindex.governance.audit_chain import (
    GENESIS,
    AuditEntry,
    AuditEvent,
    AuditHead,
    VerifyReport,
    _loads,
    canonical,
    chain_hash,
    entry_from_dict,
    key_id,
    verify_entries,
    verify_jsonl,
)
from faceindex.governance.database import Database, SqliteDatabase, Tx

__all__ = [
    "GENESIS",
    "AuditEntry",
    "AuditEvent",
    "AuditHead",
    "AuditLog",
    "VerifyReport",
    "verify_entries",
    "verify_jsonl",
]

log = logging.getLogger(__name__)

ACTIONS = frozenset(
    {
        "search",
        "ingest",
        "deletion",
        "export",
        "opt-out",
        "subject-access",
        "source-add",
        "config-change",
        "retention",
        "receipt-verify",
        "audit-verify",
        "audit-export",
        "index-build",
        "index-compact",
        "reembed",
        "person-build",  # persons (governance/persons.py)
        "person-view",
        "person-change",
        "tombstones",
        "tombstone-lift",
        "audit-anchor",
        "denied",
        # watchlists (governance/watches.py)
        "watch-add",
        "watch-list",
        "watch-alerts",
        "watch-alert",
        "watch-remove",
        "watch-purge",
        # review: 1:1 verification, review decisions, case views (governance/casework.py)
        "verify",
        "review",
        "case-view",
    }
)


_TABLES = [
    "CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY, body TEXT NOT NULL,"
    " prev TEXT NOT NULL, hash TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS audit_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
]
_SQLITE_TRIGGERS = [
    f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table}"
    " BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
    for op in ("UPDATE", "DELETE")
    for table in ("audit", "audit_meta")
]
# PostgreSQL keeps the signed head in the database (every node appends), in one row that is
# also the append lock: SELECT ... FOR UPDATE on it puts every writer in one total order.
_PG_HEAD = [
    "CREATE TABLE IF NOT EXISTS audit_head (id INTEGER PRIMARY KEY CHECK (id = 1),"
    " line TEXT NOT NULL)",
    "INSERT INTO audit_head VALUES (1, '') ON CONFLICT DO NOTHING",
    "CREATE OR REPLACE FUNCTION faceindex_audit_append_only() RETURNS trigger"
    " LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$",
    *(
        f"CREATE OR REPLACE TRIGGER {table}_no_change BEFORE {ops} ON {table}"
        " FOR EACH ROW EXECUTE FUNCTION faceindex_audit_append_only()"
        for table, ops in (
            ("audit", "UPDATE OR DELETE"),
            ("audit_meta", "UPDATE OR DELETE"),
            ("audit_head", "DELETE"),
        )
    ),
    *(
        f"CREATE OR REPLACE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}"
        " FOR EACH STATEMENT EXECUTE FUNCTION faceindex_audit_append_only()"
        for table in ("audit", "audit_meta", "audit_head")
    ),
]


class AuditLog:
    """The append-only log at ``path`` (SQLite file, or a :class:`Database`: PostgreSQL).
    Safe to share between threads and processes; appends from any number of processes
    form one chain (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: the head row locked).

    With ``key`` every new entry is keyed; a log that had entries before its first key
    records the switch point (legacy entries before it stay verifiable, unkeyed). Without
    a key the chain is plain SHA-256 (library use and tests; Governance always has one)."""

    def __init__(
        self, path: Path | str | Database, key: bytes | None = None, key_origin: str = ""
    ) -> None:
        if isinstance(path, (str, Path)):
            sqlite = SqliteDatabase(path, secure_delete=False)  # append-only: nothing freed
            self._db = sqlite.connection  # the raw file, for tests that tamper with it
            self.db: Database = sqlite
        else:
            self.db = path
        self._head_in_db = self.db.dialect != "sqlite"
        self.path = Path(getattr(self.db, "path", "") or "audit")
        self.head_path = self.path.with_suffix(".head")
        self.head_where = "the audit_head row" if self._head_in_db else str(self.head_path)
        self.key = key
        self.key_origin = key_origin
        self.key_inside_home = False  # set by audit_key.open_audit; shown by audit verify
        self._lock = threading.Lock()
        try:
            self.db.ddl(_TABLES + (_PG_HEAD if self._head_in_db else _SQLITE_TRIGGERS))
            self.keyed_from = self._keyed_from() if key is not None else 0
            self._needs_key = key is None and bool(
                self.db.rows("SELECT 1 FROM audit_meta WHERE name = 'keyed_from'")
            )
        except (OSError, StorageError) + self.db.errors as exc:
            self.db.close()
            raise AuditError(f"cannot open the audit log {self.db.url}: {exc}") from exc
        except BaseException:  # a key mismatch, say: nothing stays open
            self.db.close()
            raise

    @property
    def url(self) -> str:
        return self.db.url

    def _serialise(self, tx: Tx) -> AuditHead | None:
        """Take the append lock (PostgreSQL: the head row; SQLite holds the file's write
        lock already) and return the head stored in the database, if it keeps one."""
        if not self._head_in_db:
            return None
        row = tx.execute("SELECT line FROM audit_head WHERE id = 1 FOR UPDATE").fetchone()
        if row is None:
            raise AuditError(f"the audit log {self.url} has lost its head row: tampered")
        return _parse_head(str(row[0]))

    def _keyed_from(self) -> int:
        """The first keyed seq; set (with a signed head) the first time a key is used."""
        if self.key is None:
            return 0
        with self._lock, self.db.tx() as tx:
            stored = self._serialise(tx)
            meta = {str(a): str(b) for a, b in tx.execute("SELECT name, value FROM audit_meta")}
            if "keyed_from" in meta:
                if meta.get("key_id") != key_id(self.key):
                    raise AuditError(
                        f"the audit log {self.url} is keyed with key {meta.get('key_id')}, not "
                        f"the configured key {key_id(self.key)} ({self.key_origin or 'given'})"
                    )
                return int(meta["keyed_from"])
            row = tx.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
            last, digest = (int(row[0]), str(row[1])) if row else (0, GENESIS)
            tx.executemany(
                "INSERT INTO audit_meta VALUES (?,?)",
                [("keyed_from", str(last + 1)), ("key_id", key_id(self.key))],
            )
            head = AuditHead(last, digest, last + 1).signed(self.key)
            if self._head_in_db:
                if stored is None or self._head_holds(stored, tx):
                    self._put_head(tx, head)
                else:
                    log.error(
                        "audit log %s: legacy head does not match; left as evidence", self.url
                    )
        if last:
            log.warning(
                "audit log %s: keyed from entry %d on; entries 1-%d stay unkeyed (legacy)",
                self.url, last + 1, last,
            )  # fmt: skip
        if not self._head_in_db:
            current = self._read_head()
            if current is None or self._head_holds(current):
                self._write_head(head, force=True)
            else:  # a legacy head that no longer matches: keep it, verify will name the damage
                log.error("audit log %s: legacy head does not match; left as evidence", self.url)
        return last + 1

    def close(self) -> None:
        with self._lock, contextlib.suppress(*self.db.errors):
            self.db.close()

    def append(self, event: AuditEvent) -> AuditEntry:
        """Write one entry durably; raises AuditError if it cannot (the caller fails closed)."""
        if event.action not in ACTIONS:
            raise InputError(f"unknown audit action {event.action!r}")
        if self._needs_key:
            raise AuditError(f"the audit log {self.url} is keyed: open it with its key")
        at = datetime.now(timezone.utc).isoformat(timespec="microseconds")
        with self._lock:
            try:
                with self.db.tx() as tx:
                    stored = self._serialise(tx)
                    row = tx.execute(
                        "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"
                    ).fetchone()
                    seq, prev = (int(row[0]) + 1, str(row[1])) if row else (1, GENESIS)
                    entry = AuditEntry(seq, at, event, prev, "")
                    own = chain_hash(prev, entry.body(), self._key_for(seq))
                    entry = AuditEntry(seq, at, event, prev, own)
                    tx.execute(
                        "INSERT INTO audit (seq, body, prev, hash) VALUES (?,?,?,?)",
                        (seq, canonical(entry.body()), prev, own),
                    )
                    if self._head_in_db:
                        self._advance_stored_head(tx, stored, seq, own)
                if not self._head_in_db:
                    self._advance_head(seq, own)
            except (OSError, TypeError, ValueError) + self.db.errors as exc:
                raise AuditError(f"cannot write the audit log {self.url}: {exc}") from exc
        return entry

    def _key_for(self, seq: int) -> bytes | None:
        return self.key if self.key is not None and seq >= self.keyed_from else None

    def _new_head(self, seq: int, digest: str) -> AuditHead:
        head = AuditHead(seq, digest, self.keyed_from)
        return head.signed(self.key) if self.key is not None else head

    def _advance_stored_head(
        self, tx: Tx, current: AuditHead | None, seq: int, digest: str
    ) -> None:
        """The database's head, moved in the append's own transaction (never off damage)."""
        if current is not None and not self._head_holds(current, tx):
            log.error("audit log %s: head entry %d does not match", self.url, current.seq)
            return
        self._put_head(tx, self._new_head(seq, digest))

    @staticmethod
    def _put_head(tx: Tx, head: AuditHead) -> None:
        tx.execute("UPDATE audit_head SET line = ? WHERE id = 1", (head.to_line(),))

    def _advance_head(self, seq: int, digest: str) -> None:
        self._write_head(self._new_head(seq, digest))

    def _write_head(self, head: AuditHead, *, force: bool = False) -> None:
        lock_path = self.head_path.with_suffix(".head.lock")
        with open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            current = self._read_head()
            if not force and current is not None:
                if current.seq >= head.seq:
                    return
                if not self._head_holds(current):
                    # The entry the head names is gone or changed: keep the head as the
                    # evidence rather than sign a new one over the damage.
                    log.error("audit log %s: head entry %d does not match", self.path, current.seq)
                    return
            tmp = self.head_path.with_suffix(".head.tmp")
            with open(tmp, "w") as fh:
                fh.write(head.to_line() + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.head_path)

    def _head_holds(self, head: AuditHead, tx: Tx | None = None) -> bool:
        if self.key is not None and head.mac and not head.valid(self.key):
            return False
        if head.seq == 0:
            return True
        sql, params = "SELECT hash FROM audit WHERE seq = ?", (head.seq,)
        rows = tx.execute(sql, params).fetchall() if tx is not None else self.db.rows(sql, params)
        return bool(rows) and str(rows[0][0]) == head.hash

    def _read_head(self) -> AuditHead | None:
        if self._head_in_db:
            rows = self.db.rows("SELECT line FROM audit_head WHERE id = 1")
            return _parse_head(str(rows[0][0])) if rows else None
        try:
            return AuditHead.parse(self.head_path.read_text())
        except (OSError, InputError):
            return None

    def head(self) -> AuditHead | None:
        """The log's own latest head (signed when the log is keyed)."""
        return self._read_head()

    def _rows(self) -> Iterator[tuple[int, str]]:
        last = 0
        while True:
            with self._lock:
                rows = self.db.rows(
                    "SELECT seq, body, prev, hash FROM audit WHERE seq > ? ORDER BY seq LIMIT 5000",
                    (last,),
                )
            if not rows:
                return
            for seq, body, prev, own in rows:
                last = int(seq)
                yield last, _merge(str(body), str(prev), str(own))

    def entries(self) -> Iterator[AuditEntry]:
        for seq, text in self._rows():
            data = _loads(text)
            if data is None:
                raise InputError(
                    f"audit entry {seq} is not valid JSON: run 'faceindex audit verify'"
                )
            yield entry_from_dict(data)

    def get(self, seq: int) -> AuditEntry | None:
        with self._lock:
            rows = self.db.rows("SELECT body, prev, hash FROM audit WHERE seq = ?", (seq,))
        data = None if not rows else _loads(_merge(*(str(v) for v in rows[0])))
        return None if data is None else entry_from_dict(data)

    def count(self) -> int:
        with self._lock:
            return int(self.db.rows("SELECT COUNT(*) FROM audit")[0][0])

    def newest(self, before: int | None = None, n: int = 500) -> list[AuditEntry]:
        """Up to ``n`` entries, newest first, with seq below ``before`` (all when None)."""
        with self._lock:
            rows = self.db.rows(
                "SELECT body, prev, hash FROM audit WHERE seq < ? ORDER BY seq DESC LIMIT ?",
                (before if before is not None else 2**62, int(n)),
            )
        out = []
        for row in rows:
            data = _loads(_merge(*(str(v) for v in row)))
            if data is not None:
                out.append(entry_from_dict(data))
        return out

    def verify(self, anchors: Sequence[AuditHead] = ()) -> VerifyReport:
        """Re-check the whole chain in stored order against the log's own head and any
        ``anchors`` (heads exported earlier): each must be signed with this log's key and
        match the entry it names."""
        total = self.count()
        head = self.head()
        heads = list(anchors)
        if head is None:
            if total or self.keyed_from > 1:
                return VerifyReport(False, total, None, f"head anchor {self.head_where} missing")
        else:
            heads.append(head)
        if self.key is not None:
            for h in heads:
                if not h.valid(self.key):
                    what = "the log's head" if h is head else f"the anchor naming entry {h.seq}"
                    return VerifyReport(False, total, None, f"{what} is not signed with this key")
                if h.keyed_from != self.keyed_from:
                    moved = f"switch point moved: {h.keyed_from} signed, {self.keyed_from} stored"
                    return VerifyReport(False, total, None, moved)
        elif self._needs_key or any(h.mac for h in heads):
            return VerifyReport(False, total, None, "the log is keyed: configure its audit key")
        return verify_entries(
            ((n, _loads(text)) for n, (_, text) in enumerate(self._rows(), 1)),
            heads,
            key=self.key,
            keyed_from=self.keyed_from,
        )

    def export(self, out: io.TextIOBase | Any, fmt: str = "jsonl") -> int:
        """Write every entry for auditors: ``jsonl`` (verifiable offline) or ``csv``."""
        n = 0
        if fmt == "jsonl":
            for _, text in self._rows():
                out.write(text + "\n")
                n += 1
            return n
        if fmt != "csv":
            raise InputError(f"unknown export format {fmt!r}: use jsonl or csv")
        columns = [
            "seq", "at", "action", "actor", "role", "case", "purpose", "probe_sha256",
            "sources", "face_ids", "outcome", "details", "prev", "hash",
        ]  # fmt: skip
        writer = csv.DictWriter(out, columns)
        writer.writeheader()
        for entry in self.entries():
            row = entry.as_dict()
            row["sources"] = ";".join(row["sources"])
            row["face_ids"] = ";".join(str(i) for i in row["face_ids"])
            row["details"] = canonical(row["details"])
            writer.writerow(row)
            n += 1
        return n


def _parse_head(line: str) -> AuditHead | None:
    try:
        return AuditHead.parse(line) if line.strip() else None
    except InputError:
        return None


def _merge(body: str, prev: str, own: str) -> str:
    data = _loads(body)
    if data is None:
        return body  # left unreadable on purpose: verify reports it at this position
    data["prev"], data["hash"] = prev, own
    return canonical(data)
