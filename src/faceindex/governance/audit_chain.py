"""The audit chain itself, pure: entries, their keyed hashes, signed heads, verification.

Every entry carries the hash of the one before it (``prev``) and its own hash over
``prev + "\\n" + canonical JSON of the entry``: HMAC-SHA256 under the audit key for every
entry from ``keyed_from`` on, plain SHA-256 for the entries written before the log had a
key (legacy, verified as such up to the switch point; the first keyed entry's HMAC covers
the last legacy hash, so the legacy part cannot be rewritten either once it is keyed).

A *head* (:class:`AuditHead`) names one entry (seq, hash) and the switch point, signed with
the key. The log keeps its own latest head beside the database; ``audit anchor`` copies it
elsewhere. :func:`verify_entries` checks every head it is given against the entry it names
whenever that entry exists, and a head naming an entry past the end means the log was cut.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from faceindex.errors import InputError

__all__ = [
    "GENESIS",
    "AuditEntry",
    "AuditEvent",
    "AuditHead",
    "VerifyReport",
    "canonical",
    "chain_hash",
    "entry_from_dict",
    "key_id",
    "verify_entries",
    "verify_jsonl",
]

GENESIS = "0" * 64


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
    legacy: int = 0  # entries hashed before the log had a key (checked unkeyed)
    keyed: bool = False  # entries from the switch point on were checked with the key
    anchors: int = 0  # heads compared with the entry they name


def canonical(body: dict[str, Any]) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(prev: str, body: dict[str, Any], key: bytes | None = None) -> str:
    data = (prev + "\n" + canonical(body)).encode()
    if key is None:
        return hashlib.sha256(data).hexdigest()
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def key_id(key: bytes) -> str:
    """A public name for a key (which key signed a head), never the key."""
    return hashlib.sha256(b"faceindex-audit-key-id\n" + key).hexdigest()[:16]


@dataclass(frozen=True)
class AuditHead:
    """One entry of the chain named and signed: what ``audit.head`` holds and what
    ``audit anchor`` exports. Unsigned (legacy) heads have an empty ``mac``."""

    seq: int
    hash: str
    keyed_from: int = 0  # first keyed entry's seq; 0: the log has no key
    key_id: str = ""
    mac: str = ""

    def _payload(self) -> bytes:
        fields = {"seq": self.seq, "hash": self.hash, "keyed_from": self.keyed_from}
        return canonical({**fields, "key_id": self.key_id}).encode()

    def signed(self, key: bytes) -> AuditHead:
        unsigned = replace(self, key_id=key_id(key), mac="")
        mac = hmac.new(key, unsigned._payload(), hashlib.sha256).hexdigest()
        return replace(unsigned, mac=mac)

    def valid(self, key: bytes) -> bool:
        if not self.mac or self.key_id != key_id(key):
            return False
        expected = hmac.new(key, self._payload(), hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, self.mac)

    def to_line(self) -> str:
        return canonical(asdict(self))

    @classmethod
    def parse(cls, text: str) -> AuditHead:
        """A JSON head, or the legacy ``"seq hash"`` line; InputError if neither."""
        text = text.strip()
        try:
            if text.startswith("{"):
                d = json.loads(text)
                return cls(
                    int(d["seq"]),
                    str(d["hash"]),
                    int(d.get("keyed_from", 0)),
                    str(d.get("key_id", "")),
                    str(d.get("mac", "")),
                )
            seq, digest = text.split()
            return cls(int(seq), digest)
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"malformed audit head: {text[:80]!r}") from exc


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
    rows: Iterable[tuple[int, dict[str, Any] | None]],
    heads: Sequence[AuditHead] = (),
    *,
    key: bytes | None = None,
    keyed_from: int | None = 0,
) -> VerifyReport:
    """Check a chain given as (position, entry dict or None if unreadable), in stored order.

    Entries from ``keyed_from`` on (0: none) are checked with ``key``; ``None`` infers the
    switch point as the first entry whose keyed hash matches (an export checked offline
    with no signed head), after which every entry must be keyed. Every head is compared
    with the entry it names."""
    prev, n = GENESIS, 0
    wanted = {h.seq: h for h in heads if h.seq > 0}
    seen = 0
    infer = keyed_from is None
    switch = 0 if keyed_from is None else keyed_from
    for position, data in rows:
        n = position
        bad = _check(position, data, prev, key, switch, infer)
        if isinstance(bad, str):
            return VerifyReport(False, n, position, bad, prev, _legacy(switch, n), bool(switch))
        entry, keyed = bad
        if infer and keyed and not switch:
            switch = position
        prev = entry.hash
        head = wanted.get(position)
        if head is not None:
            seen += 1
            if not hmac.compare_digest(head.hash, prev):
                reason = f"entry {position} differs from the anchored head: rewritten"
                return VerifyReport(False, n, position, reason, prev, _legacy(switch, n))
    for head in wanted.values():
        if head.seq > n:
            reason = f"an anchored head names entry {head.seq}: log truncated"
            return VerifyReport(False, n, n + 1, reason, prev, _legacy(switch, n))
    return VerifyReport(True, n, None, "", prev, _legacy(switch, n), bool(switch), seen)


def _legacy(switch: int, n: int) -> int:
    return n if not switch else min(n, switch - 1)


def _check(
    position: int,
    data: dict[str, Any] | None,
    prev: str,
    key: bytes | None,
    switch: int,
    infer: bool,
) -> tuple[AuditEntry, bool] | str:
    """The entry and whether it was keyed, or why it is bad."""
    if data is None:
        return "entry is not valid JSON"
    try:
        entry = entry_from_dict(data)
    except InputError as exc:
        return str(exc)
    if entry.seq != position:
        return f"entry claims seq {entry.seq}: removed or reordered"
    if entry.prev != prev:
        return "previous-hash link broken: removed or reordered"
    body = entry.body()
    must_key = bool(switch) and position >= switch
    if must_key or (infer and key is not None):
        if key is not None and hmac.compare_digest(chain_hash(prev, body, key), entry.hash):
            return entry, True
        if must_key:
            if key is None:
                return "entry is keyed: verify it with the audit key"
            return "content does not match its keyed hash: edited, or another key"
    if chain_hash(prev, body) != entry.hash:
        hint = " (or keyed: verify with the audit key)" if key is None else ""
        return f"content does not match its hash: edited{hint}"
    return entry, False


def verify_jsonl(
    lines: Sequence[str] | Iterable[str],
    heads: Sequence[AuditHead] = (),
    *,
    key: bytes | None = None,
) -> VerifyReport:
    """Verify an exported JSONL file (an auditor's offline check). With a signed head the
    switch point is known; without one it is inferred, which cannot tell a forger's
    unkeyed rewrite from a legacy log: the report's ``legacy`` count says how much that
    covers."""
    keyed_from: int | None = None
    for head in heads:
        if key is not None and head.valid(key):
            keyed_from = head.keyed_from
    return verify_entries(
        ((n, _loads(line)) for n, line in enumerate((ln for ln in lines if ln.strip()), 1)),
        heads,
        key=key,
        keyed_from=keyed_from,
    )


def _loads(text: str) -> dict[str, Any] | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
