"""The audit log: append-only, hash-chained, kept in its own SQLite file in the engine home.

Every entry carries the hash of the one before it (``prev``) and its own hash over
``prev + canonical JSON of the entry``, so :func:`verify_entries` finds any edited, removed or
reordered entry and names the first bad one. Removing entries from the *end* leaves a valid
shorter chain, so each append also advances a head anchor (``audit.head``: last seq and hash,
written atomically beside the database); an auditor can also keep exported heads elsewhere.
Triggers refuse UPDATE and DELETE on the table, which stops accidents (not a determined
administrator: the chain and the anchor are what detect that).

A failed write raises :class:`~faceindex.errors.AuditError`; callers fail closed.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import hashlib
import io
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from faceindex.catalog.sqlite import connect
from faceindex.errors import AuditError, InputError

__all__ = [
    "GENESIS",
    "AuditEntry",
    "AuditEvent",
    "AuditLog",
    "VerifyReport",
    "verify_entries",
    "verify_jsonl",
]

log = logging.getLogger(__name__)

GENESIS = "0" * 64
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
        "denied",
    }
)


@dataclass(frozen=True)
class AuditEvent:
    """What happened, as the caller describes it (the log adds seq, time and hashes)."""

    action: str
    actor: str
    role: str
    case: str = ""
    purpose: str = ""
    probe_sha256: str = ""
    sources: tuple[str, ...] = ()
    face_ids: tuple[int, ...] = ()
    outcome: str = "ok"  # "ok" | "denied" | "error"
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: str
    event: AuditEvent
    prev: str
    hash: str

    def body(self) -> dict[str, Any]:
        """The hashed content: everything but the entry's own hash."""
        data = asdict(self.event)
        data["sources"] = list(self.event.sources)
        data["face_ids"] = list(self.event.face_ids)
        return {"seq": self.seq, "at": self.at, **data}

    def as_dict(self) -> dict[str, Any]:
        return {**self.body(), "prev": self.prev, "hash": self.hash}


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    entries: int
    first_bad: int | None = None  # seq (1-based position) of the first bad entry
    reason: str = ""
    head_hash: str = GENESIS


def canonical(body: dict[str, Any]) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(prev: str, body: dict[str, Any]) -> str:
    return hashlib.sha256((prev + "\n" + canonical(body)).encode()).hexdigest()


def entry_from_dict(data: dict[str, Any]) -> AuditEntry:
    """Rebuild an entry from its stored or exported form; malformed input raises InputError."""
    try:
        d = dict(data)
        seq, at, prev, own = int(d.pop("seq")), str(d.pop("at")), d.pop("prev"), d.pop("hash")
        d["sources"] = tuple(d.get("sources", ()))
        d["face_ids"] = tuple(int(i) for i in d.get("face_ids", ()))
        return AuditEntry(seq, at, AuditEvent(**d), str(prev), str(own))
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"malformed audit entry: {exc}") from exc


def verify_entries(
    rows: Iterable[tuple[int, dict[str, Any] | None]], head: tuple[int, str] | None = None
) -> VerifyReport:
    """Check a chain given as (position, entry dict or None if unreadable), in stored order."""
    prev, n = GENESIS, 0
    for position, data in rows:
        n = position
        if data is None:
            return VerifyReport(False, n, position, "entry is not valid JSON")
        try:
            entry = entry_from_dict(data)
        except InputError as exc:
            return VerifyReport(False, n, position, str(exc))
        if entry.seq != position:
            return VerifyReport(
                False, n, position, f"entry claims seq {entry.seq}: removed or reordered"
            )
        if entry.prev != prev:
            return VerifyReport(
                False, n, position, "previous-hash link broken: removed or reordered"
            )
        if chain_hash(prev, entry.body()) != entry.hash:
            return VerifyReport(False, n, position, "content does not match its hash: edited")
        prev = entry.hash
    if head is not None:
        head_seq, head_hash = head
        if head_seq > n:
            return VerifyReport(
                False, n, n + 1, f"head anchor names entry {head_seq}: log truncated"
            )
        # The anchor may lag by a concurrent writer, but the entry it names must be unchanged.
        if head_seq == n and head_hash != prev:
            return VerifyReport(False, n, n, "last entry differs from the head anchor")
    return VerifyReport(True, n, None, "", prev)


class AuditLog:
    """The append-only log at ``path`` (SQLite). Safe to share between threads and processes."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.head_path = self.path.with_suffix(".head")
        self._lock = threading.Lock()
        try:
            self._db = connect(self.path, secure_delete=False)  # append-only: nothing freed
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY, body TEXT NOT NULL,"
                " prev TEXT NOT NULL, hash TEXT NOT NULL)"
            )
            for op in ("UPDATE", "DELETE"):
                self._db.execute(
                    f"CREATE TRIGGER IF NOT EXISTS audit_no_{op.lower()} BEFORE {op} ON audit"
                    " BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
                )
        except (OSError, sqlite3.Error) as exc:
            raise AuditError(f"cannot open the audit log {self.path}: {exc}") from exc

    def close(self) -> None:
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._db.close()

    def append(self, event: AuditEvent) -> AuditEntry:
        """Write one entry durably; raises AuditError if it cannot (the caller fails closed)."""
        if event.action not in ACTIONS:
            raise InputError(f"unknown audit action {event.action!r}")
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
                    own = chain_hash(prev, entry.body())
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

    def _advance_head(self, seq: int, digest: str) -> None:
        lock_path = self.head_path.with_suffix(".head.lock")
        with open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            current = self.head()
            if current is not None and current[0] >= seq:
                return
            tmp = self.head_path.with_suffix(".head.tmp")
            with open(tmp, "w") as fh:
                fh.write(f"{seq} {digest}\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.head_path)

    def head(self) -> tuple[int, str] | None:
        try:
            seq, digest = self.head_path.read_text().split()
            return int(seq), digest
        except (OSError, ValueError):
            return None

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

    def verify(self) -> VerifyReport:
        """Re-hash the whole chain in stored order; also check the head anchor."""
        head = self.head()
        if head is None and self.count():
            return VerifyReport(False, self.count(), None, f"head anchor {self.head_path} missing")
        return verify_entries(
            ((n, _loads(text)) for n, (_, text) in enumerate(self._rows(), 1)), head
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


def verify_jsonl(lines: Sequence[str] | Iterable[str]) -> VerifyReport:
    """Verify an exported JSONL file (an auditor's offline check)."""
    return verify_entries(
        (n, _loads(line)) for n, line in enumerate((ln for ln in lines if ln.strip()), 1)
    )


def _merge(body: str, prev: str, own: str) -> str:
    data = _loads(body)
    if data is None:
        return body  # left unreadable on purpose: verify reports it at this position
    data["prev"], data["hash"] = prev, own
    return canonical(data)


def _loads(text: str) -> dict[str, Any] | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
