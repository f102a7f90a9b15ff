"""The audit log: append-only, keyed hash chain, kept in its own SQLite file in the engine home.

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
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from faceindex.catalog.sqlite import connect
from faceindex.errors import AuditError, InputError
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
        # review: 1:1 verification, review decisions, case views (governance/casework.py)
        "verify",
        "review",
        "case-view",
    }
)


class AuditLog:
    """The append-only log at ``path`` (SQLite). Safe to share between threads and processes.

    With ``key`` every new entry is keyed; a log that had entries before its first key
    records the switch point (legacy entries before it stay verifiable, unkeyed). Without
    a key the chain is plain SHA-256 (library use and tests; Governance always has one)."""

    def __init__(self, path: Path | str, key: bytes | None = None, key_origin: str = "") -> None:
        self.path = Path(path)
        self.head_path = self.path.with_suffix(".head")
        self.key = key
        self.key_origin = key_origin
        self.key_inside_home = False  # set by audit_key.open_audit; shown by audit verify
        self._lock = threading.Lock()
        try:
            self._db = connect(self.path, secure_delete=False)  # append-only: nothing freed
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY, body TEXT NOT NULL,"
                " prev TEXT NOT NULL, hash TEXT NOT NULL)"
            )
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS audit_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)"
            )
            for op in ("UPDATE", "DELETE"):
                for table in ("audit", "audit_meta"):
                    self._db.execute(
                        f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op}"
                        f" ON {table} BEGIN SELECT RAISE(ABORT, 'the audit log is append-only');"
                        " END"
                    )
            self.keyed_from = self._keyed_from() if key is not None else 0
            self._needs_key = key is None and bool(
                self._db.execute("SELECT 1 FROM audit_meta WHERE name = 'keyed_from'").fetchone()
            )
        except (OSError, sqlite3.Error) as exc:
            raise AuditError(f"cannot open the audit log {self.path}: {exc}") from exc

    def _keyed_from(self) -> int:
        """The first keyed seq; set (with a signed head) the first time a key is used."""
        if self.key is None:
            return 0
        meta = dict(self._db.execute("SELECT name, value FROM audit_meta").fetchall())
        if "keyed_from" in meta:
            if meta.get("key_id") != key_id(self.key):
                raise AuditError(
                    f"the audit log {self.path} is keyed with key {meta.get('key_id')}, not the "
                    f"configured key {key_id(self.key)} ({self.key_origin or 'given'})"
                )
            return int(meta["keyed_from"])
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"
                ).fetchone()
                last, digest = (int(row[0]), str(row[1])) if row else (0, GENESIS)
                self._db.executemany(
                    "INSERT INTO audit_meta VALUES (?,?)",
                    [("keyed_from", str(last + 1)), ("key_id", key_id(self.key))],
                )
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
        if last:
            log.warning(
                "audit log %s: keyed from entry %d on; entries 1-%d stay unkeyed (legacy)",
                self.path, last + 1, last,
            )  # fmt: skip
        current = self._read_head()
        if current is None or self._head_holds(current):
            self._write_head(AuditHead(last, digest, last + 1).signed(self.key), force=True)
        else:  # a legacy head that no longer matches: keep it, verify will name the damage
            log.error("audit log %s: legacy head does not match; left as evidence", self.path)
        return last + 1

    def close(self) -> None:
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._db.close()

    def append(self, event: AuditEvent) -> AuditEntry:
        """Write one entry durably; raises AuditError if it cannot (the caller fails closed)."""
        if event.action not in ACTIONS:
            raise InputError(f"unknown audit action {event.action!r}")
        if self._needs_key:
            raise AuditError(f"the audit log {self.path} is keyed: open it with its key")
        at = datetime.now(timezone.utc).isoformat(timespec="microseconds")
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    row = self._db.execute(
                        "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"
                    ).fetchone()
                    seq, prev = (row[0] + 1, row[1]) if row else (1, GENESIS)
                    entry = AuditEntry(seq, at, event, prev, "")
                    own = chain_hash(prev, entry.body(), self._key_for(seq))
                    entry = AuditEntry(seq, at, event, prev, own)
                    self._db.execute(
                        "INSERT INTO audit (seq, body, prev, hash) VALUES (?,?,?,?)",
                        (seq, canonical(entry.body()), prev, own),
                    )
                    self._db.execute("COMMIT")
                except BaseException:
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise
                self._advance_head(seq, own)
            except (OSError, sqlite3.Error, TypeError, ValueError) as exc:
                raise AuditError(f"cannot write the audit log {self.path}: {exc}") from exc
        return entry

    def _key_for(self, seq: int) -> bytes | None:
        return self.key if self.key is not None and seq >= self.keyed_from else None

    def _advance_head(self, seq: int, digest: str) -> None:
        head = AuditHead(seq, digest, self.keyed_from)
        self._write_head(head.signed(self.key) if self.key is not None else head)

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

    def _head_holds(self, head: AuditHead) -> bool:
        if self.key is not None and head.mac and not head.valid(self.key):
            return False
        if head.seq == 0:
            return True
        row = self._db.execute("SELECT hash FROM audit WHERE seq = ?", (head.seq,)).fetchone()
        return row is not None and str(row[0]) == head.hash

    def _read_head(self) -> AuditHead | None:
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
                rows = self._db.execute(
                    "SELECT seq, body, prev, hash FROM audit WHERE seq > ? ORDER BY seq LIMIT 5000",
                    (last,),
                ).fetchall()
            if not rows:
                return
            for seq, body, prev, own in rows:
                last = seq
                yield seq, _merge(body, prev, own)

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
            row = self._db.execute(
                "SELECT body, prev, hash FROM audit WHERE seq = ?", (seq,)
            ).fetchone()
        data = None if row is None else _loads(_merge(*row))
        return None if data is None else entry_from_dict(data)

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM audit").fetchone()[0])

    def verify(self, anchors: Sequence[AuditHead] = ()) -> VerifyReport:
        """Re-check the whole chain in stored order against the log's own head and any
        ``anchors`` (heads exported earlier): each must be signed with this log's key and
        match the entry it names."""
        total = self.count()
        head = self.head()
        heads = list(anchors)
        if head is None:
            if total or self.keyed_from > 1:
                return VerifyReport(False, total, None, f"head anchor {self.head_path} missing")
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


def _merge(body: str, prev: str, own: str) -> str:
    data = _loads(body)
    if data is None:
        return body  # left unreadable on purpose: verify reports it at this position
    data["prev"], data["hash"] = prev, own
    return canonical(data)
